"""``crosscam <verb>``: the one command-line entry point."""

from __future__ import annotations

import argparse
import sys

from pipeline.cli import (
    api,
    bench,
    calibrate,
    config_cmd,
    data,
    demo,
    export,
    hpo,
    matcher,
    model,
    synth,
    topology,
    tracks,
    train,
    worker,
)
from pipeline.cli.app import common_options, run

VERBS = (
    worker,
    matcher,
    api,
    model,
    export,
    train,
    hpo,
    bench,
    data,
    synth,
    config_cmd,
    demo,
    calibrate,
    topology,
    tracks,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crosscam",
        description="Real-time multi-camera person re-identification.",
        epilog="Every verb takes --json, --config FILE and --set KEY=VALUE. See `crosscam VERB --help`.",
    )
    verbs = parser.add_subparsers(title="verbs", metavar="VERB")
    common = common_options()
    for verb in VERBS:
        verb.register(verbs, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
