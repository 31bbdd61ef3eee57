"""``crosscam model init | info | list``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from models.architectures import ARCHITECTURES, arch_spec
from models.artifacts import detect_artifact, read_spec
from models.spec import ModelSpec
from pipeline.cli.app import Result, UsageError
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    model = verbs.add_parser("model", help="create and inspect model files")
    sub = model.add_subparsers(title="model commands", metavar="COMMAND")

    init = sub.add_parser(
        "init", parents=[common], help="write a randomly initialised checkpoint (a template and a test fixture)"
    )
    init.add_argument("--arch", required=True, help="named architecture; see `crosscam model list`")
    init.add_argument("--out", required=True, type=Path, help="checkpoint file to write")
    init.add_argument("--classes", type=int, default=0, help="training identities (adds a classifier); 0: none")
    init.add_argument(
        "--pretrained",
        metavar="imagenet|FILE",
        help="ImageNet weights for ResNet backbones: 'imagenet' downloads through torchvision, or a local .pth",
    )
    init.add_argument("--height", type=int, help="input height in pixels (default: the architecture's)")
    init.add_argument("--width", type=int, help="input width in pixels (default: the architecture's)")
    init.add_argument("--frames", type=int, help="frames per clip (default: the architecture's)")
    init.add_argument("--seed", type=int, default=0, help="random seed of the initialisation")
    init.set_defaults(handler=cmd_init)

    info = sub.add_parser("info", parents=[common], help="print the spec of a checkpoint, ONNX file or engine")
    info.add_argument("path", type=Path)
    info.set_defaults(handler=cmd_info)

    lst = sub.add_parser("list", parents=[common], help="list the named architectures")
    lst.set_defaults(handler=cmd_list)


def cmd_init(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    import torch

    from models.checkpoint import build_model, save_checkpoint

    for name in ("height", "width", "frames", "classes"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "classes" else 1):
            raise UsageError(f"--{name} must be {'>= 0' if name == 'classes' else 'positive'}, got {value}")
    arch, input_spec = arch_spec(args.arch, num_classes=args.classes)
    sizes = {k: getattr(args, k) for k in ("height", "width", "frames") if getattr(args, k) is not None}
    input_spec = replace(input_spec, **sizes)
    torch.manual_seed(args.seed)
    model = build_model(arch, input_spec, pretrained=args.pretrained)
    provenance = {"init": args.pretrained or "random", "seed": args.seed, "trained": False}
    spec = save_checkpoint(model, args.out, provenance)
    data = {"path": str(args.out), **_summary(spec)}
    return Result(data, f"wrote {args.out}: {_describe(spec)}")


def cmd_info(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    kind, spec = detect_artifact(args.path), read_spec(args.path)
    data = {"path": str(args.path), "kind": kind.value, **_summary(spec), "spec": spec.to_dict()}
    return Result(data, f"{args.path} ({kind.value}): {_describe(spec)}\nprovenance: {spec.provenance}")


def cmd_list(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    rows = [
        {
            "name": n,
            "backbone": r.backbone,
            "head": r.head,
            "input": [r.input.height, r.input.width, r.input.frames],
            "summary": r.summary,
        }
        for n, r in ARCHITECTURES.items()
    ]
    width = max(len(n) for n in ARCHITECTURES)
    text = "\n".join(f"{r['name']:<{width}}  {r['summary']}" for r in rows)
    return Result({"architectures": rows}, text)


def _summary(spec: ModelSpec) -> dict:
    i = spec.input
    return {
        "arch": spec.arch.name,
        "model_id": spec.model_id,
        "feature_dim": spec.feature_dim,
        "num_classes": spec.arch.num_classes,
        "input": {"height": i.height, "width": i.width, "frames": i.frames, "mean": list(i.mean), "std": list(i.std)},
    }


def _describe(spec: ModelSpec) -> str:
    i = spec.input
    return (
        f"{spec.arch.name} (id {spec.model_id}), input {i.frames}x{i.height}x{i.width}, "
        f"feature {spec.feature_dim}-d, {spec.arch.num_classes} classes"
    )
