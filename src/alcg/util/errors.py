"""Exception types with one-line, user-facing messages."""


class AlcgError(Exception):
    """Base class for errors caused by bad input or a failed stage."""


class ConfigError(AlcgError):
    """The configuration is invalid; the message names the offending key and value."""


class StructureError(AlcgError):
    """A sequence or PDB file cannot be turned into a simulation-ready structure."""


class SimulationError(AlcgError):
    """An all-atom or CG simulation produced non-finite or exploding values."""


class TrainingError(AlcgError):
    """Training could not continue (e.g. a NaN loss)."""


class DataError(AlcgError):
    """A data file does not match what the stage expects (shape, topology, version)."""
