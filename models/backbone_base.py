"""What every frame backbone shares: the ``Backbone`` interface, reading a state dict, and loading one
exactly (every tensor accounted for, or an error that names the mismatches)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from crosscam.errors import CrosscamError
from models.errors import ModelFileError
from models.zoo import missing_file_error


class WeightsUnavailableError(CrosscamError):
    """Pre-trained weights could not be downloaded or read."""


class Backbone(nn.Module):
    """A CNN trunk: ``forward(float[N,3,H,W]) -> float[N,out_channels,h,w]``.

    ``frame_vectors`` turns those maps into one ``vector_dim``-d vector per frame: global average pooling,
    unless the backbone has a frame head of its own (OSNet's fc). Temporal heads pool these vectors and
    may score frames on the maps.
    """

    name: str = ""
    out_channels: int
    stride: int

    @property
    def vector_dim(self) -> int:
        return self.out_channels

    def map_size(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` of the maps of a ``height`` x ``width`` input (every strided layer here rounds up)."""
        return -(-height // self.stride), -(-width // self.stride)

    def frame_vectors(self, maps: torch.Tensor) -> torch.Tensor:
        """``float[N,C,h,w] -> float[N,vector_dim]``: global average pooling."""
        return maps.mean(dim=(2, 3))

    def load_pretrained(self, source: str) -> None:
        """Load pre-trained weights: ``source`` is ``"imagenet"`` or a local weights file."""
        raise ModelFileError(f"backbone {self.name!r} has no pre-trained weights; drop --pretrained")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch weights file: a plain state dict, or a training checkpoint holding one under
    ``state_dict`` (torchreid, BoxMOT); a ``module.`` prefix (``DataParallel``) is removed."""
    if not path.is_file():
        raise missing_file_error(path) or ModelFileError(
            f"{path}: pre-trained weights file not found; pass an existing .pth file"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(
            f"{path}: cannot read as a PyTorch state dict ({type(e).__name__}: {e}); "
            "the file may be truncated, download it again"
        ) from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(
            f"{path}: expected a state dict of tensors, found {type(state).__name__}; pass a PyTorch weights file "
            "(torch.save of a model's state_dict)"
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def _shape(t: torch.Tensor | torch.Size) -> str:
    return "[" + ",".join(str(s) for s in (t.shape if isinstance(t, torch.Tensor) else t)) + "]"


def _listed(keys: list[str], limit: int = 3) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_exact(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    source: str,
    expected: str,
    hint: str = "",
    optional: tuple[str, ...] = (),
) -> list[str]:
    """Load ``state`` into ``module``: every key present with its shape, nothing extra.

    A missing ``num_batches_tracked`` is allowed (files from before PyTorch 0.4.1 lack it), and so are missing
    keys under an ``optional`` prefix: those keep their initialisation and are returned. Anything else is a
    ``ModelFileError`` naming ``source``, the first mismatches, ``expected`` (the architecture) and ``hint``
    (what the file seems to hold, when the caller can tell).
    """
    problems, absent = mismatches(module, state, expected, optional)
    if problems:
        advice = hint or "choose the architecture these weights belong to"
        raise ModelFileError(
            f"{source}: weights for another architecture: {'; '.join(problems)}; pass weights of {expected} or {advice}"
        )
    module.load_state_dict(state, strict=False)
    return absent


def mismatches(
    module: nn.Module, state: dict[str, torch.Tensor], expected: str, optional: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """``(problems, absent)``: what keeps ``state`` from loading exactly into ``module`` (shapes that differ, keys
    missing or unexpected), and the missing keys under an ``optional`` prefix."""
    own = module.state_dict()
    mismatched = [k for k in own if k in state and state[k].shape != own[k].shape]
    not_in_file = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    absent = [k for k in not_in_file if k.startswith(optional)]
    missing = [k for k in not_in_file if k not in absent]
    unexpected = [k for k in state if k not in own]
    problems = [f"{k} has shape {_shape(state[k])}, {expected} expects {_shape(own[k])}" for k in mismatched[:3]]
    if len(mismatched) > 3:
        problems.append(f"{len(mismatched) - 3} more shapes differ")
    if missing:
        problems.append(f"missing {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listed(unexpected)}")
    return problems, absent
