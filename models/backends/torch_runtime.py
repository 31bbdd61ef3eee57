"""PyTorch runtime: CPU (fp32) or CUDA (fp16 by default); the backbone runs channels_last on both.

Channels-last feature maps let oneDNN (CPU) and cuDNN run the convolutions without converting every layer's
input and output: OSNet-x0.25 and MobileNetV2 embed about 1.4x faster on the CPU. The temporal head keeps
its own layout: its frame-sized kernel is flattened for a matrix multiply, a copy of all its weights at
every call if they were channels_last (ResNet-50's: 268 MB).

On CUDA the clips travel as uint8 pixels and are normalised on the GPU (``to_input``): a quarter of the
bytes over PCIe, and none of the host's per-pixel float work, which makes a batch of 32 ResNet-50 clips
take 155 ms where the network needs a few (docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.artifacts import ArtifactKind
from models.checkpoint import load_checkpoint
from models.devices import resolve_torch_device
from models.embedder import Embedder
from models.errors import BackendUnavailableError
from models.preprocess import model_pixels, normalization, preprocess
from models.reidnet import ReIDNet
from models.spec import InputSpec, ModelSpec


def to_input(pixels: torch.Tensor, spec: InputSpec, dtype: torch.dtype) -> torch.Tensor:
    """``uint8[B,T,H,W,3]`` pixels (on any device) -> normalised ``dtype[B,T,3,H,W]`` network input, as
    ``models.preprocess.preprocess`` makes it (the arithmetic in float32, then cast)."""
    scale, shift = (torch.from_numpy(v).to(pixels.device)[:, None, None] for v in normalization(spec))
    x = pixels.permute(0, 1, 4, 2, 3).float()
    return (x * scale - shift).to(dtype).contiguous()


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
        model.backbone.to(memory_format=torch.channels_last)
        self.model = model
        self.on_cuda = on_cuda

    def _prepare(self, clips: np.ndarray) -> np.ndarray:
        """On CUDA: uint8 pixels at the model's size (normalised on the GPU by ``_forward``), contiguous (a
        BGR-to-RGB view ``[..., ::-1]`` has negative strides, which ``torch.from_numpy`` refuses)."""
        if not self.on_cuda:
            return preprocess(clips, self.spec.input)
        return np.ascontiguousarray(model_pixels(clips, self.spec.input))

    @torch.inference_mode()
    def _forward(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(clips).to(self.device, non_blocking=True)
        x = to_input(x, self.spec.input, self.dtype) if x.dtype == torch.uint8 else x.to(self.dtype)
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
