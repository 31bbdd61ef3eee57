"""Multi-camera tracking on synthetic scenes, scored per frame: ``crosscam bench mtmc``.

Each scene runs once through the whole site (camera workers, embedder, matcher on a scratch Redis, as the demo
runs it); its per-frame tracks are exported from the store and scored against the scene's exact ground truth with
TrackEval (``pipeline.tracks.metrics``): every person, the people who walk, and the people who stay put apart. The
tracklet-level IDF1 of ``crosscam demo`` (linking decisions alone, weighted by seconds) is reported beside it, and
the phantom identities (``pipeline.tracks.phantoms``). With ``ground``, the cameras of overlapping views get the
scene's ground points (``Scene.ground_points``), so the matcher also links and separates people by where they stand
on the floor plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.embedder import Embedder
from pipeline.config import CrosscamConfig
from pipeline.config.schema import CameraConfig
from pipeline.lab.demo import demo_config, run_site, score_against_truth, write_truth
from pipeline.site import Site
from synth.scene import Scene, SceneSpec

FIGURES = ("idf1", "idp", "idr", "mota", "hota")


@dataclass(frozen=True)
class SceneScore:
    seed: int
    every: dict  # per-frame figures over every person (``Scores.as_dict``)
    walkers: dict | None  # over the people who walk (None: the scene has no one who stays put)
    stationary: dict | None  # over the people who stay put
    tracklets: dict  # tracklet-level IDF1 of the linking (``pipeline.lab.demo.score_against_truth``)
    identities: int
    phantoms: int
    seconds: float

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "per_frame": self.every,
            "walkers": self.walkers,
            "stationary": self.stationary,
            "tracklets": self.tracklets,
            "identities": self.identities,
            "phantoms": self.phantoms,
            "seconds": round(self.seconds, 1),
        }


def scene_cameras(spec: SceneSpec) -> dict[str, str]:
    """Camera id -> ``synth://`` source of each camera of ``spec`` (``cam0``, ``cam1``, ...)."""
    url = spec.url()
    return {f"cam{i}": f"{url}&camera={i}" for i in range(spec.cameras)}


def run_scene(
    config: CrosscamConfig, embedder: Embedder, spec: SceneSpec, detector: str, out: Path, client, ground: bool = False
) -> SceneScore:
    """Run ``spec`` through a site on ``client`` (a scratch Redis), export and score it; files under ``out``.
    ``ground``: the site's cameras carry the scene's ground points."""
    from pipeline.tracks.export import write_tracks
    from pipeline.tracks.metrics import evaluate
    from pipeline.tracks.mot import read_tracks
    from pipeline.tracks.options import ScoreOptions
    from pipeline.tracks.phantoms import phantom_identities

    started = time.monotonic()
    scene = Scene(spec)
    cameras = scene_cameras(spec)
    index = {c: i for i, c in enumerate(cameras)}
    site_config = demo_config(config, detector, synthetic=True)
    if ground:
        site_config = site_config.model_copy(update={"cameras": with_ground(scene, cameras)})
    site = Site(site_config, client, "bench")
    run = run_site(site, cameras, embedder)
    export = write_tracks(client, site.keys, out / "tracks", list(cameras), None, config.matcher.tentative_seconds)
    truth = read_tracks(write_truth(scene, index, out / "truth"), ground_truth=True)
    pred = read_tracks(out / "tracks")
    still = frozenset(scene.stationary)
    walking = frozenset(scene.people) - still
    part = lambda ids: evaluate(truth, pred, ScoreOptions(gt_ids=ids)).overall.as_dict() if ids and still else None  # noqa: E731
    return SceneScore(
        seed=spec.seed,
        every=evaluate(truth, pred).overall.as_dict(),
        walkers=part(walking),
        stationary=part(still),
        tracklets=score_against_truth(client, site.keys, run, scene, index),
        identities=len(export.identities),
        phantoms=len(phantom_identities(truth, pred)),
        seconds=time.monotonic() - started,
    )


def with_ground(scene: Scene, cameras: dict[str, str]) -> tuple[CameraConfig, ...]:
    """The site's cameras (id -> source, in the scene's order), each with the scene's ground points if it has any."""
    return tuple(
        CameraConfig(id=c, source=url, ground=scene.ground_points(i) or None)
        for i, (c, url) in enumerate(cameras.items())
    )


def mean_of(scores: list[dict | None]) -> dict | None:
    """The mean of each of ``FIGURES`` over the scenes that have them."""
    have = [s for s in scores if s]
    return {k: sum(s[k] for s in have) / len(have) for k in FIGURES} if have else None


def bench_mtmc(
    config: CrosscamConfig,
    embedder: Embedder,
    specs: list[SceneSpec],
    detector: str,
    out: Path,
    progress: Callable[[str], None] | None = None,
    ground: bool = False,
) -> dict:
    """Every scene of ``specs`` run and scored; the per-scene figures and their means. ``ground``: the cameras of
    overlapping views carry the scene's ground points."""
    from pipeline.bus.connect import scratch_redis

    results = []
    for spec in specs:
        if progress:
            progress(f"scene seed {spec.seed}: {spec.url()}")
        with scratch_redis("crosscam-bench-mtmc-") as client:
            results.append(run_scene(config, embedder, spec, detector, out / f"seed{spec.seed}", client, ground))
    return {
        "scenes": [r.as_dict() for r in results],
        "mean": {
            "per_frame": mean_of([r.every for r in results]),
            "walkers": mean_of([r.walkers for r in results]),
            "stationary": mean_of([r.stationary for r in results]),
            "tracklet_idf1": sum(r.tracklets["idf1"] for r in results) / len(results),
            "identities": sum(r.identities for r in results) / len(results),
            "people": sum(r.tracklets["ground_truth_people"] for r in results) / len(results),
            "phantoms": sum(r.phantoms for r in results) / len(results),
        },
        "detector": detector,
        "ground": ground,
        "scene": specs[0].url(),
        "seeds": [s.seed for s in specs],
    }
