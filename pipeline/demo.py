"""The demo's parts: a model trained on synthetic people (cached), a site run end to end in one process
(workers, embedder, matcher on one Redis), and its scoring against a synthetic scene's ground truth."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from models.embedder import Embedder
from pipeline.bus import Keys, Publisher
from pipeline.embedding import EmbeddingService
from pipeline.matcher import Matcher
from pipeline.matching import MatchPolicy
from pipeline.site_models import announce_model
from pipeline.sources import open_source
from pipeline.store import StoreKeys
from pipeline.tracking import DetectorOptions, make_tracker
from pipeline.tracklets import TrackletBuffer, TrackletPolicy
from pipeline.types import Tracklet
from pipeline.worker import CameraWorker, WorkerReport

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

    from pipeline.cli.train import load_recipe
    from synth.datasets import write_mars
    from synth.people import RENDERER_VERSION
    from trainer.data.registry import load_dataset
    from trainer.loop import train

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


def run_site(
    client,
    keys: Keys,
    cameras: dict[str, str],
    embedder: Embedder,
    detector: str,
    policy: MatchPolicy,
    tracklet_options: dict | None = None,
    model_threshold: bool = False,
) -> SiteRun:
    """Every camera in a thread, one embedding service, and the matcher consuming as they publish; returns
    when the sources have ended and the matcher has caught up. The embedder's model is announced as a
    worker announces it; with ``model_threshold`` the matcher links at that model's calibrated threshold
    (``policy.threshold`` when it has none)."""
    start = time.monotonic()
    run = SiteRun()
    announce_model(client, keys, embedder.spec)
    publisher = Publisher(client, keys)
    service = EmbeddingService(embedder, keys.site, publisher.publish)
    submit = service.submit

    def keep(t: Tracklet) -> None:
        run.tracklets[f"{t.camera_id}:{t.track_id}:{t.seq}"] = t
        submit(t)

    service.submit = keep
    spec = embedder.spec.input
    policy_t = TrackletPolicy(
        frames=spec.frames, crop_height=spec.height, crop_width=spec.width, **(tracklet_options or {})
    )
    workers = [
        CameraWorker(
            open_source(cam, url),
            make_tracker(cam, DetectorOptions(weights=detector)),
            TrackletBuffer(cam, policy_t),
            service,
            publisher,
        )
        for cam, url in cameras.items()
    ]
    matcher = Matcher(client, keys, policy, consumer="demo", merge_every=2.0, model_threshold=model_threshold).start()
    service.start()
    threads = [
        threading.Thread(target=lambda w=w: run.reports.__setitem__(w.camera_id, w.run()), daemon=True) for w in workers
    ]
    for th in threads:
        th.start()
    done = threading.Event()

    def finished() -> bool:
        return done.is_set() and matcher.backlog() == 0

    mt = threading.Thread(target=lambda: run.matcher.update(matcher.run(stop=finished)), daemon=True)
    mt.start()
    for th in threads:
        th.join()
    service.stop()
    done.set()
    mt.join()
    run.link_threshold = matcher.active.threshold
    run.seconds = time.monotonic() - start
    return run


def score_against_truth(client, keys: StoreKeys, run: SiteRun, scene, camera_index: dict[str, int]) -> dict:
    """Multi-camera IDF1 of the stored sightings against the scene's exact ground truth (weights: seconds)."""
    from pipeline import store
    from synth.truth import identify, idf1, passages

    pairs, covered = [], set()
    for sid, t in run.tracklets.items():
        try:
            person = store.sighting(client, keys, sid)["identity"]  # merges rewrite it: always current
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
