"""Devices and torch builds: which GPU a job uses and which torch build has kernels for it."""
