"""``crosscam export CKPT --format onnx|engine``: export, then verify against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.progress import console, step
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "export",
        parents=[common],
        help="export a checkpoint to ONNX or a TensorRT engine and verify it against PyTorch",
        description="Export a checkpoint (dynamic batch and frames, the model spec in the file's metadata), "
        "then embed random clips with PyTorch and the export and report the minimum cosine similarity.",
    )
    p.add_argument("checkpoint", type=Path, help="crosscam checkpoint (.pt)")
    p.add_argument("--format", choices=("onnx", "engine"), default="onnx", help="onnx (default) or engine")
    p.add_argument("--out", type=Path, help="output file (default: the checkpoint's name with .onnx / .engine)")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models.checkpoint import load_checkpoint

    if args.format == "engine":
        from models.engine import gpu_name, import_tensorrt

        import_tensorrt()  # fail before any work when TensorRT or a GPU is missing
        gpu_name()
    out: Path = args.out or args.checkpoint.with_suffix(f".{args.format}")
    if out.resolve() == args.checkpoint.resolve():
        raise UsageError(f"--out {out} would overwrite the checkpoint; choose another path")
    with step(f"loading {args.checkpoint}"):
        model, spec = load_checkpoint(args.checkpoint)
    if args.format == "onnx":
        reference, candidate, threshold = _export_onnx(model, spec, out, config)
    else:
        reference, candidate, threshold = _export_engine(args.checkpoint, model, spec, out, config)
    frames = tuple(sorted({1, spec.input.frames}))
    with step(f"verifying against PyTorch on batches {list(config.export.verify_batches)}, frames {list(frames)}"):
        from models.parity import compare_embedders

        parity = compare_embedders(reference, candidate, batches=config.export.verify_batches, frames=frames)
    ok = parity["min_cosine"] >= threshold
    data = {
        "path": str(out),
        "format": args.format,
        "model_id": spec.model_id,
        "arch": spec.arch.name,
        **parity,
        "threshold": threshold,
        "ok": ok,
    }
    text = (
        f"wrote {out}: min cosine vs PyTorch {parity['min_cosine']:.6f} over {parity['clips']} clips, "
        f"max attention difference {parity['max_attention_diff']:.2e}"
    )
    if not ok:
        console.print(
            f"[red]verification failed[/red]: min cosine {parity['min_cosine']:.6f} < {threshold}; "
            f"the file is kept at {out} for inspection"
        )
    return Result(data, text, exit_code=0 if ok else 1)


def _export_onnx(model, spec, out: Path, config: CrosscamConfig):
    from models.backends.ort_runtime import OnnxRuntimeEmbedder
    from models.backends.torch_runtime import TorchEmbedder
    from models.export import export_onnx

    with step(f"exporting {spec.arch.name} to ONNX (opset {config.export.opset})"):
        export_onnx(model, spec, out, opset=config.export.opset)
    reference = TorchEmbedder(model, spec, device="cpu", fp16=False)
    candidate = OnnxRuntimeEmbedder(out, device="cpu", threads=config.embedder.threads)
    return reference, candidate, config.export.min_cosine


def _export_engine(checkpoint: Path, model, spec, out: Path, config: CrosscamConfig):
    from models.backends.torch_runtime import TorchEmbedder
    from models.backends.trt_runtime import TensorRTEmbedder
    from models.engine import EngineOptions, build_engine
    from models.export import cached_onnx

    e = config.export
    options = EngineOptions(
        fp16=True, max_batch=e.engine_max_batch, max_frames=e.engine_max_frames, workspace_gib=e.engine_workspace_gib
    )
    with step("exporting to ONNX"):
        onnx_path = cached_onnx(checkpoint, cache_dir=config.cache_dir, opset=e.opset)
    with step(f"building the TensorRT engine (fp16, batch 1..{e.engine_max_batch}); minutes on first build"):
        build_engine(onnx_path, out=out, options=options, cache_dir=config.cache_dir)
    reference = TorchEmbedder(model, spec, device="cuda", fp16=False)
    return reference, TensorRTEmbedder(out, device="cuda"), e.engine_min_cosine
