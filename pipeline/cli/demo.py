"""``crosscam demo``: the main job on embedded defaults.

Today it shows the network and its runtimes end to end: a ``tiny_attention`` model is created,
exported to ONNX and verified, and synthetic clips are embedded with PyTorch and ONNX Runtime. The
live multi-camera demo (synthetic scene, workers, matcher, report) replaces this when the pipeline
lands (issue #5).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pipeline.cli.app import Result
from pipeline.cli.progress import step
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "demo",
        parents=[common],
        help="run the main job on embedded defaults (today: the re-ID network and its runtimes end to end)",
    )
    p.add_argument("--arch", default="tiny_attention", help="architecture to demonstrate")
    p.add_argument("--workdir", type=Path, help="where to write the model files (default: a temporary folder)")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    import numpy as np
    import torch

    from models import benchmark
    from models.architectures import arch_spec
    from models.checkpoint import build_model, save_checkpoint
    from models.embedder import load_embedder
    from models.export import export_onnx, random_clips
    from models.parity import compare_embedders

    with tempfile.TemporaryDirectory(prefix="crosscam-demo-") as tmp:
        work = args.workdir or Path(tmp)
        torch.manual_seed(0)
        arch, input_spec = arch_spec(args.arch)
        with step(f"creating {args.arch}"):
            model = build_model(arch, input_spec)
            spec = save_checkpoint(model, work / f"{args.arch}.pt", {"init": "random", "seed": 0})
        with step("exporting to ONNX (dynamic batch and frames, spec in metadata)"):
            onnx_path = export_onnx(model, spec, work / f"{args.arch}.onnx", opset=config.export.opset)
        runtimes = {
            "torch": load_embedder(work / f"{args.arch}.pt", device="cpu"),
            "onnxruntime": load_embedder(onnx_path, device="cpu", threads=config.embedder.threads),
        }
        with step("checking the two runtimes agree"):
            parity = compare_embedders(runtimes["torch"], runtimes["onnxruntime"], frames=(1, 4, 8))
        clips = random_clips(16, input_spec.frames, 300, 120, seed=1)  # crops of another size: resized
        speeds = {}
        for name, embedder in runtimes.items():
            with step(f"embedding 16 tracklets of {input_spec.frames} frames with {name}"):
                features, attention = embedder.embed(clips)
                speeds[name] = benchmark.time_embedder(embedder, clips, min_seconds=1.0)["tracklets_per_s"]
    data = {
        "arch": args.arch,
        "model_id": spec.model_id,
        "feature_dim": int(features.shape[1]),
        "max_norm_error": float(abs(np.linalg.norm(features, axis=1) - 1).max()),
        "attention_sums_to_one": bool(abs(attention.sum(1) - 1).max() < 1e-5),
        "min_cosine_torch_vs_onnxruntime": parity["min_cosine"],
        "tracklets_per_s": speeds,
    }
    text = "\n".join(
        [
            f"{args.arch} (id {spec.model_id}): {features.shape[1]}-d L2-normalised features, attention over "
            f"{input_spec.frames} frames sums to 1",
            f"PyTorch vs ONNX Runtime: min cosine {parity['min_cosine']:.6f} over {parity['clips']} clips",
            "throughput (tracklets/s): " + ", ".join(f"{k} {v:.1f}" for k, v in speeds.items()),
            "The live multi-camera demo arrives with the pipeline (issue #5).",
        ]
    )
    return Result(data, text)
