"""ONNX export of a whole ReIDNet (temporal pooling included), its metadata, and its verification."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from models.checkpoint import load_checkpoint, read_checkpoint
from models.errors import ModelFileError
from models.formats import METADATA_KEY, no_spec_error
from models.preprocess import l2_normalize
from models.reidnet import ReIDNet
from models.spec import ModelSpec

INPUT_NAME = "clips"
OUTPUT_NAMES = ("feature", "attention")
DEFAULT_OPSET = 18
# Bump when the exported graph changes for the same weights (a head's implementation, the exporter's
# options): cached exports are keyed by it, so a stale graph is never reused.
EXPORT_REVISION = 3


def default_cache_dir() -> Path:
    """``$CROSSCAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/crosscam``, else ``~/.cache/crosscam``."""
    if os.environ.get("CROSSCAM_CACHE_DIR"):
        return Path(os.environ["CROSSCAM_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crosscam"


@contextlib.contextmanager
def _quiet_exporter():
    """Keep stdout clean for ``--json``: the exporter's chatter goes to stderr, its warnings away."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _forget_rnn_dispatch() -> None:
    """Clear the dispatcher's cached kernels of the recurrent ops before an export. After one export, PyTorch
    caches ``aten.gru``'s Python decomposition, which unrolls the time steps, so a later export in the same
    process would give the clip length a fixed size instead of the GRU op a dynamic one."""
    import torch

    for op in (torch.ops.aten.gru.input, torch.ops.aten.lstm.input, torch.ops.aten.rnn_tanh.input):
        cache = getattr(op, "_dispatch_cache", None)  # a private attribute: absent in other releases
        if isinstance(cache, dict):
            cache.clear()


def export_onnx(model: ReIDNet, spec: ModelSpec, out: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model`` as ONNX: input ``clips float[batch,frames,3,H,W]``, outputs ``feature
    float[batch,D]`` and ``attention float[batch,frames]``; batch and frames are dynamic. The spec
    goes into ``metadata_props['crosscam']`` as JSON. Written atomically."""
    import onnx
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    example = torch.randn(2, spec.input.frames, 3, spec.input.height, spec.input.width)
    batch, frames = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("frames", min=1, max=256)
    tmp = out.with_name(out.name + ".tmp")
    _forget_rnn_dispatch()
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=({0: batch, 1: frames},),
                verbose=False,
            )
            program.save(str(tmp))
        proto = onnx.load(str(tmp))
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(f"ONNX export of {spec.arch.name} failed: {type(e).__name__}: {e}") from e
    meta = {p.key: p.value for p in proto.metadata_props}
    meta[METADATA_KEY] = json.dumps(spec.to_dict())
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "crosscam"
    onnx.save(proto, str(tmp))
    os.replace(tmp, out)
    return out


def onnx_spec_from_metadata(meta: dict[str, str], source: str) -> ModelSpec:
    if METADATA_KEY not in meta:
        raise no_spec_error(source, "ONNX file")
    try:
        return ModelSpec.from_dict(json.loads(meta[METADATA_KEY]), source=source)
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{source}: corrupt crosscam metadata in ONNX file ({e})") from e


def read_onnx_spec(path: str | Path) -> ModelSpec:
    """The spec stored in a crosscam ONNX file (reads only the header, not the weights)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: ONNX file not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ModelFileError(f"{path}: not a readable ONNX file ({e})") from e
    return onnx_spec_from_metadata({p.key: p.value for p in proto.metadata_props}, source=str(path))


def cached_onnx(checkpoint: str | Path, cache_dir: str | Path | None = None, opset: int = DEFAULT_OPSET) -> Path:
    """The ONNX export of a checkpoint, made once and kept under ``cache_dir``.

    Keyed by model id (the weights), opset, ``EXPORT_REVISION`` and the torch version (the exporter)."""
    import torch

    spec, _ = read_checkpoint(checkpoint)
    name = f"{spec.model_id}-op{opset}-r{EXPORT_REVISION}-torch{torch.__version__.split('+')[0]}.onnx"
    path = Path(cache_dir or default_cache_dir()) / "onnx" / name
    if not path.is_file():
        model, _ = load_checkpoint(checkpoint)
        export_onnx(model, spec, path, opset=opset)
    return path


def random_clips(batch: int, frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Random but image-like ``uint8[B,T,H,W,3]`` clips: smooth colour blobs plus noise."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, size=(batch, frames, 4, 2, 3)).astype(np.float32)
    import cv2

    out = np.empty((batch, frames, height, width, 3), np.uint8)
    for b in range(batch):
        for t in range(frames):
            img = cv2.resize(low[b, t], (width, height), interpolation=cv2.INTER_CUBIC)
            img += rng.normal(0, 12, img.shape)
            out[b, t] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest row-wise cosine similarity of two ``float[B,D]`` arrays."""
    return float((l2_normalize(a) * l2_normalize(b)).sum(axis=1).min())
