"""Errors of model files and runtimes (subclasses of ``crosscam.errors.CrosscamError``)."""

from crosscam.errors import CrosscamError


class ModelFileError(CrosscamError):
    """A model file is missing, unreadable, corrupt, or lacks crosscam's metadata."""


class ClipError(CrosscamError):
    """A clip handed to the network or an embedder has the wrong shape, dtype or frame count."""


class BackendUnavailableError(CrosscamError):
    """A runtime (onnxruntime, TensorRT, CUDA) is not installed or not usable on this machine."""
