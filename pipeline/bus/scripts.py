"""The site's server-side Lua scripts, kept as ``.lua`` files beside this module (``lua/``)."""

from __future__ import annotations

import functools
from pathlib import Path

LUA = Path(__file__).with_name("lua")


@functools.cache
def script(name: str) -> str:
    """The source of ``lua/<name>.lua``."""
    return (LUA / f"{name}.lua").read_text()
