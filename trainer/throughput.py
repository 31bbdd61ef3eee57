"""Training throughput: clips per second of forward + backward + optimiser step on random clips."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch

from models.architectures import arch_spec
from models.checkpoint import build_model
from trainer import losses


def training_clips_per_s(
    arch: str,
    batch: int,
    frames: int,
    device: str = "cpu",
    amp: bool = False,
    height: int | None = None,
    width: int | None = None,
    min_seconds: float = 5.0,
    warmup: int = 1,
) -> dict[str, Any]:
    """Time full training steps (cross-entropy + batch-hard triplet, Adam) of ``arch`` on random clips.

    Data loading is excluded: this is the network's ceiling, which the loader must keep up with.
    """
    spec, input_spec = arch_spec(arch, num_classes=max(2, batch // 4))
    input_spec = replace(input_spec, frames=frames, height=height or input_spec.height, width=width or input_spec.width)
    model = build_model(spec, input_spec).to(device).train()
    if device.startswith("cuda"):
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=3.5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.startswith("cuda"))
    clips = torch.randn(batch, frames, 3, input_spec.height, input_spec.width, device=device)
    labels = torch.arange(batch, device=device) // 4 % spec.num_classes
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.float16, enabled=scaler.is_enabled()):
            out = model(clips)
        loss = losses.cross_entropy_label_smooth(out.logits.float(), labels) + losses.batch_hard_triplet(
            out.feature.float(), labels
        )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        step()
    sync()
    times = []
    while len(times) < 2 or sum(times) < min_seconds:
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    per_step = sorted(times)[len(times) // 2]
    return {
        "arch": arch,
        "device": device,
        "amp": scaler.is_enabled(),
        "batch": batch,
        "frames": frames,
        "height": input_spec.height,
        "width": input_spec.width,
        "clips_per_s": batch / per_step,
        "s_per_step": per_step,
        "steps": len(times),
    }
