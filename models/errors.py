"""Errors a user can cause. Each message names the input and says what to do.

The CLI prints these without a traceback and exits with code 2; anything else is a bug.
"""


class CrosscamError(Exception):
    """Base class of every error caused by user input (a path, a file, a flag, a config key)."""


class ModelFileError(CrosscamError):
    """A model file is missing, unreadable, corrupt, or lacks crosscam's metadata."""


class ClipError(CrosscamError):
    """A clip handed to the network or an embedder has the wrong shape, dtype or frame count."""


class BackendUnavailableError(CrosscamError):
    """A runtime (onnxruntime, TensorRT, CUDA) is not installed or not usable on this machine."""


class ConfigError(CrosscamError):
    """A configuration file or override is malformed or names an unknown key."""
