"""A synthetic scene as files: one video per camera and its per-frame ground truth in MOTChallenge form.

``root/cam<i>.mp4`` (MPEG-4 part 2, the scene's fps), ``root/gt/cam<i>.txt`` (one row per visible person per
frame: ``frame,id,left,top,width,height,1,1,visibility``, frames from 1, ids the scene's global person ids)
and ``root/scene.json`` (the scene's ``synth://`` URL, the layout's overlapping camera pairs and transit
windows, and which people stay put). The folder appears whole or not at all.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from crosscam.errors import CrosscamError
from synth.scene import Scene
from synth.truth import truth_boxes

VIDEO_FOURCC = "mp4v"
TruthRow = tuple[int, int, float, float, float, float, float]  # frame (from 1), id, left, top, width, height, visible


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
        truth = [
            (f + 1, pid, x1, y1, x2 - x1, y2 - y1, visible)
            for f, pid, (x1, y1, x2, y2), visible in truth_boxes(scene, camera)
        ]
        _write_truth(root / "gt" / f"cam{camera}.txt", truth)
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
    }
    (root / "scene.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


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


def _write_truth(path: Path, rows: Iterable[TruthRow]) -> None:
    """MOTChallenge ground truth: ``frame,id,left,top,width,height,1,1,visibility`` a line (considered, class
    pedestrian)."""
    with path.open("w") as f:
        for frame, pid, left, top, width, height, visible in rows:
            f.write(f"{frame},{pid},{left:g},{top:g},{width:g},{height:g},1,1,{visible:.5g}\n")
