"""The config schema and the typed settings read from it."""
