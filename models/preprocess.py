"""The one place where crops become network input (pure NumPy/OpenCV functions)."""

from __future__ import annotations

import numpy as np

from models.errors import ClipError
from models.spec import InputSpec


def check_clips(clips: object, frames: int | None = None) -> np.ndarray:
    """Validate ``uint8[B,T,H,W,3]`` RGB clips; ``frames`` fixes T when the runtime needs it."""
    if not isinstance(clips, np.ndarray):
        raise ClipError(f"clips must be a NumPy array uint8[B,T,H,W,3], got {type(clips).__name__}")
    if clips.dtype != np.uint8:
        raise ClipError(f"clips must have dtype uint8 (RGB pixels 0..255), got {clips.dtype}")
    if clips.ndim != 5 or clips.shape[-1] != 3 or min(clips.shape[1:4]) < 1:
        raise ClipError(f"clips must have shape [B,T,H,W,3] with T,H,W >= 1, got {clips.shape}")
    if frames is not None and clips.shape[1] != frames:
        raise ClipError(
            f"this model artifact was exported for T={frames} frames per clip, got T={clips.shape[1]}; "
            f"sample {frames} frames from each tracklet or export again with --frames {clips.shape[1]}"
        )
    return clips


def resize_clips(clips: np.ndarray, spec: InputSpec) -> np.ndarray:
    """``uint8[B,T,H,W,3]`` at the model's input size (bilinear; area when shrinking by 2x or more)."""
    b, t, h, w, _ = clips.shape
    if (h, w) == (spec.height, spec.width):
        return clips
    import cv2

    interp = cv2.INTER_AREA if h >= 2 * spec.height else cv2.INTER_LINEAR
    flat = clips.reshape(b * t, h, w, 3)
    out = np.empty((b * t, spec.height, spec.width, 3), dtype=np.uint8)
    for i in range(b * t):
        out[i] = cv2.resize(flat[i], (spec.width, spec.height), interpolation=interp)
    return out.reshape(b, t, spec.height, spec.width, 3)


def model_pixels(clips: np.ndarray, spec: InputSpec) -> np.ndarray:
    """RGB ``uint8[B,T,H,W,3]`` -> ``uint8[B,T,spec.height,spec.width,3]`` in the model's channel order
    (``spec.channels``); every runtime's input starts here."""
    pixels = resize_clips(clips, spec)
    return pixels[..., ::-1] if spec.channels == "bgr" else pixels


def normalization(spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(scale, shift)`` with ``input = pixel * scale - shift`` (mean/std on 0..1 pixels, in the
    model's channel order)."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return 1.0 / (255.0 * std), mean / std


def preprocess(clips: np.ndarray, spec: InputSpec) -> np.ndarray:
    """``uint8[B,T,H,W,3]`` RGB -> ``float32[B,T,3,spec.height,spec.width]`` in the model's channel order,
    normalised by mean/std.

    Frames of another size are resized (``resize_clips``)."""
    scale, shift = normalization(spec)
    x = model_pixels(clips, spec).astype(np.float32) * scale - shift
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3))


def l2_normalize(features: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Vectors along the last axis divided by their Euclidean norm (zero vectors stay zero)."""
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return (features / np.maximum(norms, eps)).astype(np.float32)
