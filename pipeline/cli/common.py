"""Helpers several verbs share: the site the arguments name, the synthetic scene's options and model, and
how store views print (text, and JSON as the API answers them)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from pipeline.cli.app import UsageError
from pipeline.cli.progress import show_training, training_progress
from pipeline.config import CrosscamConfig

if TYPE_CHECKING:
    from pipeline.site import Site
    from pipeline.store import History


def open_site(args: argparse.Namespace, config: CrosscamConfig) -> Site:
    """The site the arguments name (``--site``, ``--redis-url``), connected."""
    from pipeline.site import Site

    return Site.open(config, getattr(args, "site", None), getattr(args, "redis_url", None))


def add_site_options(p: argparse.ArgumentParser) -> None:
    """``--redis-url`` and ``--site``: which site's store a verb reads (``open_site``)."""
    p.add_argument("--redis-url", help="default: $CROSSCAM_REDIS_URL, else redis.url, else an embedded server")
    p.add_argument("--site", help="site name (default: the config's site)")


def link_threshold_of(site: Site, model: str) -> tuple[float, str]:
    """The threshold the site's matcher links ``model``'s features at, and where it comes from: the config's
    ``matcher.threshold``, else the site's own fit, else the model's announced one, else the default."""
    from pipeline.bus.site_fit import site_fit
    from pipeline.bus.site_models import announced_model

    m = site.config.matcher
    if m.threshold_is_set:
        return float(m.threshold), "matcher.threshold"
    fitted, _ = site_fit(site.client, site.keys, model)
    if fitted is not None:
        return fitted, "the site's own fit"
    summary = announced_model(site.client, site.keys, model) or {}
    if summary.get("link_threshold") is not None:
        return float(summary["link_threshold"]), "the model's calibrated threshold"
    return site.policy().threshold, "the default"


def dump(view: BaseModel) -> dict[str, Any]:
    """A store view as JSON data, with the keys the API answers (``from``, not ``from_``)."""
    return view.model_dump(mode="json", by_alias=True)


def dump_all(views: Iterable[BaseModel]) -> list[dict[str, Any]]:
    return [dump(v) for v in views]


def when(t: float | None) -> str:
    """A stream time in seconds, or ``-`` when unknown."""
    return "-" if t is None else f"{t:.1f}"


def history_text(h: History) -> str:
    """A person's history as lines: one per sighting, in time order."""
    lines = [f"person {h.person}: {len(h.sightings)} sightings on {', '.join(h.cameras)}"]
    for s in h.sightings:
        score = "" if s.score is None else f" score {s.score:.3f}"
        lines.append(
            f"  {s.camera:<10} {when(s.t_start):>9} - {when(s.t_end):<9} track {s.track:<5}"
            f" {s.decision}{score}  ({s.sighting})"
        )
    return "\n".join(lines)


def add_scene_options(p: argparse.ArgumentParser) -> None:
    """The synthetic scene's options and the model (``demo`` and ``calibrate``)."""
    p.add_argument(
        "--embedder",
        help="re-ID model (default: synth_tiny trained on synthetic people, cached; for --video and --dataset "
        "the bundled real model)",
    )
    p.add_argument("--people", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1, help="scene seed")


def demo_embedder(args: argparse.Namespace, config: CrosscamConfig, real: bool = False) -> Path:
    """``--embedder``; else for ``real`` footage the bundled real model, else the demo's synthetic model
    (trained once, with progress, and cached)."""
    from models.export import default_cache_dir
    from pipeline.lab.demo import demo_model

    if args.embedder:
        if not Path(args.embedder).is_file():
            raise UsageError(f"--embedder {args.embedder}: no such file")
        return Path(args.embedder)
    if real:
        from models.zoo import default_embedder

        return default_embedder()
    cache = Path(config.cache_dir or default_cache_dir())
    with training_progress() as bar:
        tasks = {}

        def progress(kind: str, p: dict) -> None:
            if kind == "data":
                tasks.setdefault(kind, bar.add_task("rendering synthetic training people", total=p["total"], status=""))
                bar.update(tasks[kind], completed=p["done"])
            else:
                tasks.setdefault(kind, bar.add_task("training the demo model (once; cached)", total=None, status=""))
                show_training(bar, tasks[kind], p)

        return demo_model(cache, progress)


def parse_ranges(text: str, option: str, what: str, examples: str = "2-8 or 2,3,5", least: int = 0) -> list[int]:
    """``"2-8"``, ``"2,3,5"`` or both (``"1,4-6"``): the numbers, in the order given; a ``UsageError`` naming
    ``option`` for anything else or a number below ``least``."""
    out: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, dash, hi = part.partition("-")
            first, last = int(lo), int(hi) if dash else int(lo)
            if first < least or last < first:
                raise ValueError
            out += range(first, last + 1)
    except ValueError:
        out = []
    if not out:
        raise UsageError(f"{option} {text!r}: give {what} as {examples}")
    return out


SCENE_HELP = {  # the options of `synth scene` are the synth:// URL's parameters (SceneSpec's fields)
    "cameras": "number of cameras",
    "people": "people walking through the views",
    "seconds": "length of the scene",
    "seed": "world seed: the same options give the same scene, to the pixel",
    "fps": "frames a second",
    "width": "frame width in pixels",
    "height": "frame height in pixels",
    "arrivals": "walkers enter their first view within this share of the scene",
    "seated": "people who sit or stand still in one view",
    "layout": "apart: no overlapping views, every transit {APART_TRANSIT[0]:g}-{APART_TRANSIT[1]:g} s; site: "
    "overlaps and a transit window per pair",
    "overlap": "camera pairs that share a view (site layout), e.g. 0-1,2-3",
}


def add_scene_spec_options(p: argparse.ArgumentParser, leave_out: tuple[str, ...] = ()) -> None:
    """An option per ``synth://`` parameter (``SceneSpec``'s fields but ``leave_out``), read by ``scene_spec``."""
    import dataclasses

    from synth.layout import APART_TRANSIT
    from synth.spec import SceneSpec, format_pairs

    default = SceneSpec()
    for f in dataclasses.fields(SceneSpec):
        if f.name in leave_out:
            continue
        value = getattr(default, f.name)
        shown = (format_pairs(value) or "none") if f.name == "overlap" else value
        about = SCENE_HELP[f.name].format(APART_TRANSIT=APART_TRANSIT)
        p.add_argument(f"--{f.name}", metavar="VALUE", help=f"{about} (default {shown})")


def scene_spec(args: argparse.Namespace, label: str):
    """The ``SceneSpec`` of the options ``add_scene_spec_options`` added (a ``CrosscamError`` naming ``label``)."""
    import dataclasses
    from urllib.parse import urlencode

    from synth.spec import SceneSpec

    fields = [f.name for f in dataclasses.fields(SceneSpec)]
    given = {k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}
    return SceneSpec.from_url("synth://?" + urlencode(given), label=label)
