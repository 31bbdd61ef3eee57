"""The demo's parts: a model trained on synthetic people (cached), a site run end to end in one process
(workers, embedder, matcher on one Redis), and its scoring against a synthetic scene's ground truth."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from models.embedder import Embedder
from pipeline.bus.connect import Client
from pipeline.camera.worker import WorkerReport
from pipeline.config import CrosscamConfig
from pipeline.keys import Keys
from pipeline.site import Site
from pipeline.types import Tracklet

DEMO_RECIPE = "synth_tiny"
DEMO_IDS = 120  # identities of the training set (half train, half test), rendered with seed 0
# The demo model's link threshold, from `crosscam calibrate --seeds 2-8`: scenes held out from the demo's own
# (seed 1), where 0.70 gives the best mean IDF1 (docs/benchmarks.md). The model file carries it.
DEMO_THRESHOLD = 0.70
DEMO_CALIBRATION = {
    "dataset": "synthetic scenes",
    "split": "seeds 2-8 (the demo's scene is seed 1)",
    "rule": "maximum mean multi-camera IDF1 of the matcher's replay (crosscam calibrate --seeds 2-8)",
}


def demo_model(cache_dir: Path, progress: Callable[[str, dict], None] | None = None) -> Path:
    """The demo's re-ID model: ``synth_tiny`` trained on synthetic people (not the scene's), cached."""
    import shutil
    import tempfile

    from synth.datasets import write_mars
    from synth.people import RENDERER_VERSION
    from trainer.data.registry import load_dataset
    from trainer.loop import train
    from trainer.recipe import load_recipe

    out = cache_dir / "demo" / f"{DEMO_RECIPE}-{DEMO_IDS}ids-r{RENDERER_VERSION}.pt"  # new renders, new model
    if out.is_file():
        return carry_demo_threshold(out)
    with tempfile.TemporaryDirectory(prefix="crosscam-demo-train-") as tmp:
        root = Path(tmp) / "mars"
        write_mars(
            root,
            ids=DEMO_IDS,
            seed=0,  # the renders' default size (256x128), as `crosscam synth dataset` writes them
            progress=lambda d, t: progress and progress("data", {"done": d, "total": t}),
        )
        recipe = load_recipe(DEMO_RECIPE, [])
        index = load_dataset("mars", root)
        result = train(
            recipe, index, Path(tmp) / "run", device="cpu", on_progress=lambda p: progress and progress("train", p)
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        staged = out.with_suffix(".staged")
        shutil.copy(result.best, staged)
        carry_demo_threshold(staged)
        staged.rename(out)
    return out


def carry_demo_threshold(path: Path) -> Path:
    """Store the demo model's calibrated threshold in its file (``ModelSpec.link_threshold``) when it lacks one,
    as ``crosscam calibrate --write`` stores a real model's; returns ``path``."""
    from dataclasses import replace

    from models.artifacts import read_spec, write_spec

    spec = read_spec(path)
    if spec.link_threshold is None:
        calibration = DEMO_CALIBRATION | {"threshold": DEMO_THRESHOLD}
        write_spec(
            path,
            replace(spec, link_threshold=DEMO_THRESHOLD, provenance=spec.provenance | {"calibration": calibration}),
        )
    return path


DEMO_TRACKLETS = {"max_seconds": 4.0, "min_box_height": 30}  # tracklet options for the synthetic scene


def synthetic_site(people: int, seconds: float, seed: int, arrivals: float = 0.25):
    """The demo's 3-camera synthetic scene and its cameras' source URLs."""
    from synth.scene import Scene, SceneSpec

    url = f"synth://?cameras=3&people={people}&seconds={seconds}&seed={seed}&arrivals={arrivals}"
    return Scene(SceneSpec.from_url(url)), {f"cam{i}": f"{url}&camera={i}" for i in range(3)}


@dataclass
class SiteRun:
    reports: dict[str, WorkerReport] = field(default_factory=dict)
    tracklets: dict[str, Tracklet] = field(default_factory=dict)  # by tracklet id, with boxes and times
    matcher: dict = field(default_factory=dict)
    seconds: float = 0.0
    link_threshold: float = 0.0  # the threshold the matcher linked at


def demo_config(config: CrosscamConfig, detector: str, synthetic: bool) -> CrosscamConfig:
    """``config`` as the demo runs it: site ``demo``, ``detector`` on every camera, a merge pass every 2 s
    (the scene is short), and for the synthetic scene its tracklet options (``DEMO_TRACKLETS``)."""
    tracklets = config.tracklets.model_copy(update=DEMO_TRACKLETS) if synthetic else config.tracklets
    return config.model_copy(
        update={
            "site": "demo",
            "detector": config.detector.model_copy(update={"weights": detector}),
            "tracklets": tracklets,
            "matcher": config.matcher.model_copy(update={"merge_every": 2.0}),
        }
    )


def run_site(
    site: Site,
    cameras: dict[str, str],
    embedder: Embedder,
    pace: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> SiteRun:
    """Every camera of ``cameras`` (id -> source URL) in a thread, one embedding service, and the site's
    matcher consuming as they publish; returns when the sources have ended (or ``stop`` is set: the cameras
    stop, what they made is published) and the matcher has caught up.
    Every closed tracklet is kept in the result (with its boxes and times) for scoring. ``pace(camera)``, when
    given, runs on a camera's thread before each of its tracklets is handed over (to slow cameras down)."""
    start = time.monotonic()
    run = SiteRun()
    process = site.cameras(embedder)

    def keep(t: Tracklet) -> None:
        run.tracklets[f"{t.camera_id}:{t.track_id}:{t.seq}"] = t
        if pace is not None:
            pace(t.camera_id)
        process.service.submit(t)

    workers = [process.camera(cam, url, on_tracklet=keep) for cam, url in cameras.items()]
    matcher = site.matcher(consumer="demo").start()
    done = threading.Event()

    def finished() -> bool:
        return done.is_set() and matcher.backlog() == 0

    mt = threading.Thread(target=lambda: run.matcher.update(matcher.run(stop=finished)), daemon=True)
    mt.start()
    run.reports = process.run(workers, stop=stop)
    done.set()
    mt.join()
    run.link_threshold = matcher.active.threshold
    run.seconds = time.monotonic() - start
    return run


def score_against_truth(client: Client, keys: Keys, run: SiteRun, scene, camera_index: dict[str, int]) -> dict:
    """Multi-camera IDF1 of the stored sightings against the scene's exact ground truth (weights: seconds)."""
    from pipeline import store
    from synth.truth import identify, idf1, passages

    pairs, covered = [], set()
    for sid, t in run.tracklets.items():
        try:
            person = store.sighting(client, keys, sid).identity  # merges rewrite it: always current
        except store.NotFound:
            continue  # dropped before it was published
        truth = identify(scene, camera_index[t.camera_id], t.path)
        if truth is not None:
            covered.add((truth, camera_index[t.camera_id]))
        pairs.append((truth, person, max(t.t_end - t.t_start, 0.1)))
    result = idf1(pairs)
    true_passages = passages(scene)
    return result | {
        "tracklets": len(pairs),
        "passages": len(true_passages),
        "passages_covered": len(covered & true_passages),
        "ground_truth_people": len({p for p, _ in true_passages}),
    }


def write_truth(scene, camera_index: dict[str, int], out: Path) -> Path:
    """The scene's per-frame ground truth as ``out/<camera>.txt`` (MOTChallenge, global person ids)."""
    from pipeline.tracks.mot import write_mot
    from synth.truth import truth_rows

    for camera, i in camera_index.items():
        write_mot(out / f"{camera}.txt", truth_rows(scene, i))
    return out


def score_frames(truth: Path, tracks: Path) -> dict:
    """Per-frame multi-camera figures of the exported ``tracks`` against ``truth`` (TrackEval: IDF1, MOTA, HOTA)."""
    from pipeline.tracks.metrics import evaluate
    from pipeline.tracks.mot import read_tracks

    return evaluate(read_tracks(truth, ground_truth=True), read_tracks(tracks)).overall.as_dict()
