"""Running the CLI in-process and reading its ``--json`` answer; a Redis client's URL for a CLI flag, and the
flags that point a command at a test's site."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from pipeline.cli import main

CROSSCAM = shutil.which("crosscam", path=str(Path(sys.executable).parent)) or "crosscam"


def run_json(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]), err


def redis_url(client) -> str:
    """A URL for ``--redis-url`` that reaches ``client``'s server (an embedded one's unix socket)."""
    return (
        f"unix://{client.socket_file}"
        if hasattr(client, "socket_file")
        else client.connection_pool.connection_kwargs["url"]
    )


def site_args(client, keys) -> list[str]:
    """The flags that point a CLI command at ``keys``' site on ``client``'s server."""
    return ["--redis-url", redis_url(client), "--site", keys.site, "--set", f"redis.prefix={keys.prefix}"]
