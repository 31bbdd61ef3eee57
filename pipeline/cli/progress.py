"""Progress on stderr, so stdout stays clean for results and ``--json``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console

console = Console(stderr=True)


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """A spinner while ``message`` runs, then a tick (a plain line when stderr is not a terminal)."""
    with console.status(message):
        yield
    console.print(f"[green]✓[/green] {message}", highlight=False)
