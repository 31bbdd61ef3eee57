"""A synthetic scene as files: one video per camera and its per-frame ground truth in MOTChallenge form.

``root/cam<i>.mp4`` (MPEG-4 part 2, the scene's fps), ``root/gt/cam<i>.txt`` (one row per visible person per
frame: ``frame,id,left,top,width,height,1,1,visibility``, frames from 1, ids the scene's global person ids)
and ``root/scene.json`` (the scene's ``synth://`` URL, the layout's overlapping camera pairs and transit
windows, which people stay put, and the ground points of the cameras that share a floor: ``Scene.ground_points``).
``root/site.yaml`` is a site config for the videos (``crosscam run``, ``crosscam demo``): a camera per video, with
its ground points where it has them. The folder appears whole or not at all.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from crosscam.errors import CrosscamError
from pipeline.tracks.mot import write_mot
from synth.scene import Scene
from synth.truth import truth_rows

VIDEO_FOURCC = "mp4v"


def write_scene(root: Path, scene: Scene, progress: Callable[[int, int], None] | None = None) -> dict:
    """Write ``scene`` under ``root`` (created; it must not exist or be empty); ``progress(done, total)``
    counts frames rendered over every camera. Returns what was written."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CrosscamError(f"{root}: exists and is not an empty folder; choose a new folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        info = _write(staging, scene, progress)
        _write_site(staging / "site.yaml", scene, root)
        if root.exists():
            root.rmdir()
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info | {"root": str(root)}


def _write(root: Path, scene: Scene, progress: Callable[[int, int], None] | None) -> dict:
    spec, frames = scene.spec, scene.frame_count()
    (root / "gt").mkdir()
    rows, done = 0, 0

    def rendered() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, spec.cameras * frames)

    for camera in range(spec.cameras):
        _write_video(root / f"cam{camera}.mp4", scene, camera, rendered)
        truth = truth_rows(scene, camera)
        write_mot(root / "gt" / f"cam{camera}.txt", truth)
        rows += len(truth)
    info = {
        "url": spec.url(),
        "cameras": spec.cameras,
        "frames": frames,
        "fps": spec.fps,
        "people": len(scene.people),
        "stationary_people": scene.stationary,
        "overlapping_pairs": sorted(sorted(p) for p in scene.overlapping_pairs()),
        "transit_windows": [
            {"from": a, "to": b, "min": lo, "max": hi} for (a, b), (lo, hi) in sorted(scene.transit_windows().items())
        ],
        "truth_rows": rows,
        "ground_points": {
            f"cam{c}": [list(p) for p in scene.ground_points(c)] for c in range(spec.cameras) if scene.ground_points(c)
        },
    }
    (root / "scene.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def _write_site(path: Path, scene: Scene, root: Path) -> None:
    """A site config whose cameras are the scene's videos under ``root``, with their ground points."""
    import yaml

    cameras = []
    for c in range(scene.spec.cameras):
        camera = {"id": f"cam{c}", "source": str(root / f"cam{c}.mp4")}
        if scene.ground_points(c):
            camera["ground"] = [[round(x, 4) for x in p] for p in scene.ground_points(c)]
        cameras.append(camera)
    path.write_text(yaml.safe_dump({"cameras": cameras}, sort_keys=False, default_flow_style=None))


def _write_video(path: Path, scene: Scene, camera: int, rendered: Callable[[], None]) -> None:
    import cv2

    spec = scene.spec
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), spec.fps, (spec.width, spec.height))
    if not writer.isOpened():
        raise CrosscamError(
            f"{path}: OpenCV cannot write {VIDEO_FOURCC} video of {spec.width}x{spec.height} at {spec.fps:g} "
            "frames/s; check that OpenCV was built with FFmpeg (pip install opencv-python)"
        )
    try:
        for i in range(scene.frame_count()):
            image, _ = scene.render(camera, i)
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            rendered()
    finally:
        writer.release()
