"""Choosing a compute device from a user's string, and naming the machine's CPU (no torch import here)."""

from __future__ import annotations

import os
import platform

from models.errors import BackendUnavailableError


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info() -> dict[str, str | int | None]:
    """The CPU, its cores and Python: what every benchmark's figures are recorded with."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()}


def resolve_torch_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda[:N]`` is checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"device {device!r} asked for, but PyTorch sees no CUDA GPU here; use --device cpu"
            )
        return device
    raise BackendUnavailableError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
