"""The CLI's frame: argument parsing, config at the edge, output and errors.

Every verb's handler takes ``(args, config)`` and returns a ``Result``; this module prints it: human
text on stdout, or with ``--json`` exactly one JSON object on the last line of stdout. Progress and
logs go to stderr. A user mistake (``CrosscamError``) prints one clear line and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crosscam.errors import CrosscamError
from pipeline.config import CrosscamConfig, load_config

EXIT_USER_ERROR = 2


class UsageError(CrosscamError):
    """A command-line flag with a value the verb cannot use."""


@dataclass
class Result:
    data: dict[str, Any]
    text: str = ""
    exit_code: int = 0


Handler = Callable[[argparse.Namespace, CrosscamConfig], Result]


def common_options() -> argparse.ArgumentParser:
    """Options every verb takes, so they may follow the verb: ``crosscam export m.pt --json``."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument("--json", action="store_true", help="print one JSON object on the last line of stdout")
    g.add_argument("--config", metavar="FILE", help="YAML configuration file (see `crosscam config show`)")
    g.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="override a config value, e.g. --set embedder.device=cpu (repeatable)",
    )
    g.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")
    return p


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy / torch scalars
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def emit(result: Result, as_json: bool) -> None:
    if result.text:
        print(result.text, file=sys.stderr if as_json else sys.stdout)
    if as_json:
        sys.stdout.flush()
        print(json.dumps(_jsonable(result.data), separators=(",", ":")))


def run(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    as_json = bool(getattr(args, "json", False))
    logging.basicConfig(
        level=logging.WARNING - 10 * min(getattr(args, "verbose", 0), 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        # A verb whose --set targets another document (train: the recipe) sets set_applies_to.
        config_overrides = (
            getattr(args, "overrides", []) if getattr(args, "set_applies_to", "config") == "config" else []
        )
        config = load_config(getattr(args, "config", None), config_overrides)
        result = handler(args, config)
    except CrosscamError as e:
        print(f"crosscam: error: {e}", file=sys.stderr)
        if as_json:
            print(json.dumps({"error": str(e), "type": type(e).__name__}))
        return EXIT_USER_ERROR
    except Exception as e:  # a key of the site holding another type than crosscam writes there
        if "WRONGTYPE" not in str(e):
            raise
        message = (
            f"Redis refused a command ({e}): a key under the site's prefix holds another type than crosscam "
            "writes there; another program may share the prefix: give the site another redis.prefix or database"
        )
        print(f"crosscam: error: {message}", file=sys.stderr)
        if as_json:
            print(json.dumps({"error": message, "type": type(e).__name__}))
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("crosscam: interrupted", file=sys.stderr)
        return 130
    emit(result, as_json)
    return result.exit_code
