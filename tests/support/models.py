"""Small real models with trained-looking statistics, and an ONNX parity check."""

from __future__ import annotations

from pathlib import Path

import torch

from models.architectures import arch_spec
from models.checkpoint import build_model
from models.reidnet import ReIDNet

TINY_ARCHS = ("tiny_attention", "tiny_avg", "tiny_gru_rank")


def randomize_batchnorm(module: torch.nn.Module, seed: int = 0, bias: bool = False) -> None:
    """Random 'trained-looking' BatchNorm running statistics and scales (and shifts, with ``bias``)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                if bias:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def assert_onnx_parity(model: ReIDNet, path: Path) -> None:
    """Export ``model`` (its attention pushed far from uniform) and check ONNX Runtime against PyTorch."""
    from models.backends.ort_runtime import OnnxRuntimeEmbedder
    from models.backends.torch_runtime import TorchEmbedder
    from models.checkpoint import model_spec
    from models.export import export_onnx
    from models.parity import compare_embedders

    with torch.no_grad():
        model.head.temporal.bias.fill_(5.0)  # attention far from uniform, so its parity means something
    spec = model_spec(model)
    export_onnx(model, spec, path)
    reference = TorchEmbedder(model, spec, device="cpu", fp16=False)
    parity = compare_embedders(reference, OnnxRuntimeEmbedder(path, device="cpu"), frames=(1, 4))
    assert parity["min_cosine"] >= 0.9999
    assert parity["max_attention_diff"] < 1e-4


def perturbed(model: ReIDNet, seed: int = 0) -> ReIDNet:
    """Give a fresh model 'trained-looking' statistics: random BN running stats and affine terms and
    a larger temporal-attention scale, so attention is far from uniform and parity tests mean something."""
    randomize_batchnorm(model, seed)
    with torch.no_grad():
        head = model.head
        if hasattr(head, "temporal"):
            head.temporal.weight.mul_(20.0)
            head.temporal.bias.fill_(1.0)
        if hasattr(head, "scorer"):
            head.scorer[-1].weight.mul_(10.0)
    return model.eval()


def make_model(arch: str, seed: int = 0, num_classes: int = 0) -> ReIDNet:
    torch.manual_seed(seed)
    spec, input_spec = arch_spec(arch, num_classes=num_classes)
    return perturbed(build_model(spec, input_spec), seed)
