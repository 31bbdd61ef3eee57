"""A camera's video with its per-frame tracks drawn on it: boxes coloured by global identity, labelled with it
(supervision's box and label annotators), filled-in frames in a thinner box."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from crosscam.errors import CrosscamError
from pipeline.tracks.mot import TrackRow

FOURCC = "mp4v"


def annotate_video(
    video: Path,
    rows: Iterable[TrackRow],
    out: Path,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write ``out`` (MPEG-4, ``video``'s size and frame rate): every frame of ``video`` with the boxes of ``rows`` for
    that frame (MOTChallenge frames, from 1). Returns the frames written. The file appears whole or not at all."""
    import cv2
    import supervision as sv

    by_frame: dict[int, list[TrackRow]] = defaultdict(list)
    for r in rows:
        by_frame[r.frame].append(r)
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise CrosscamError(f"{video}: cannot open this video to annotate; give a video file OpenCV decodes")
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
    if not writer.isOpened():
        capture.release()
        raise CrosscamError(f"{out}: cannot write a video there; give a folder that can be written")
    lookup = sv.ColorLookup.TRACK
    boxes, thin = sv.BoxAnnotator(thickness=2, color_lookup=lookup), sv.BoxAnnotator(thickness=1, color_lookup=lookup)
    labels = sv.LabelAnnotator(text_scale=0.45, text_padding=3, color_lookup=lookup)
    frames = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames += 1
            here = by_frame.get(frames, [])
            if here:
                image = _draw(image, here, boxes, thin, labels)
            writer.write(image)
            if progress is not None:
                progress(frames, total)
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        capture.release()
    writer.release()
    tmp.replace(out)
    return frames


def _draw(image: np.ndarray, rows: list[TrackRow], boxes, thin, labels) -> np.ndarray:
    import supervision as sv

    def detections(part: list[TrackRow]) -> sv.Detections:
        xyxy = np.array([[r.left, r.top, r.left + r.width, r.top + r.height] for r in part], np.float32)
        return sv.Detections(xyxy=xyxy.reshape(-1, 4), tracker_id=np.array([r.identity for r in part], int))

    detected = [r for r in rows if r.conf > 0]
    filled = [r for r in rows if r.conf <= 0]
    if filled:
        image = thin.annotate(image, detections(filled))
    if detected:
        image = boxes.annotate(image, detections(detected))
    return labels.annotate(image, detections(rows), labels=[f"person {r.identity}" for r in rows])
