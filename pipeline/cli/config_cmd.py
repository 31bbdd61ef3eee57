"""``crosscam config show``: the effective configuration after --config and --set."""

from __future__ import annotations

import argparse

import yaml

from pipeline.cli.app import Result
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cfg = verbs.add_parser("config", help="inspect the configuration")
    sub = cfg.add_subparsers(title="config commands", metavar="COMMAND")
    show = sub.add_parser("show", parents=[common], help="print the effective configuration (defaults filled in)")
    show.set_defaults(handler=cmd_show)


def cmd_show(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    data = config.model_dump(mode="json", by_alias=True)  # field names as files spell them (topology: "from")
    return Result(data, yaml.safe_dump(data, sort_keys=False).rstrip())
