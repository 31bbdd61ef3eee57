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


def training_progress():
    """A rich progress display for training: description, bar, status line (epoch, loss, lr), time left."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=console)


def show_training(bar, task, p: dict) -> None:
    """Move a rich progress ``task`` to the training loop's report ``p`` (``trainer.loop.train``'s on_progress)."""
    bar.update(
        task,
        total=p["epochs"] * p["iters"],
        completed=p["epoch"] * p["iters"] + p["iter"] + 1,
        status=f"epoch {p['epoch'] + 1}/{p['epochs']} loss {p['loss']:.3f} lr {p['lr']:.2e}",
    )
