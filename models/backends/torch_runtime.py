"""PyTorch runtime: CPU (fp32) or CUDA (fp16 and channels_last by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.artifacts import ArtifactKind
from models.checkpoint import load_checkpoint
from models.devices import resolve_torch_device
from models.embedder import Embedder
from models.errors import BackendUnavailableError
from models.reidnet import ReIDNet
from models.spec import ModelSpec


class TorchEmbedder(Embedder):
    backend = "torch"

    def __init__(
        self,
        model: ReIDNet,
        spec: ModelSpec,
        device: str = "auto",
        fp16: bool | None = None,
        max_batch: int | None = None,
    ) -> None:
        device = resolve_torch_device(device)
        super().__init__(spec, device, frames=None, max_batch=max_batch)
        on_cuda = device.startswith("cuda")
        self.fp16 = on_cuda if fp16 is None else fp16
        if self.fp16 and not on_cuda:
            raise BackendUnavailableError("fp16 needs a CUDA device; use fp32 on the CPU")
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self.precision = "fp16" if self.fp16 else "fp32"
        model = model.eval().to(device=device, dtype=self.dtype)
        if on_cuda:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    @torch.inference_mode()
    def _forward(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(clips).to(self.device, self.dtype, non_blocking=True)
        out = self.model(x)
        return out.feature.float().cpu().numpy(), out.attention.float().cpu().numpy()


def open_torch(
    path: Path, kind: ArtifactKind, device: str, fp16: bool | None = None, max_batch: int | None = None, **_: object
) -> TorchEmbedder:
    if kind is not ArtifactKind.CHECKPOINT:
        raise BackendUnavailableError(
            f"{path}: the torch backend needs a crosscam checkpoint, this is a {kind.value} file; use --backend auto"
        )
    model, spec = load_checkpoint(path)
    return TorchEmbedder(model, spec, device=device, fp16=fp16, max_batch=max_batch)
