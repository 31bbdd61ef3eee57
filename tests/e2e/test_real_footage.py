"""Real footage: the crop-quality rules on real clips with the real detector, and the demo on real videos.

The clips are the shared data's ``videos`` folder: the two-camera indoor recording (1280x720, one person) and PETS 2009
S2.L1 view 1 (480x360, a dozen pedestrians). A soft camera is the same indoor clip seen through a Gaussian
blur of 2 pixels: its crops' raw sharpness (variance of the Laplacian) falls to about 5-10, as on the real
indoor camera, where an absolute threshold of 15 would reject every crop of a person.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import pytest

from tests.support.paths import SHARED_DATA, VTEST

CLIPS = SHARED_DATA / "videos" / "chuyko_2cam_indoor"
DETECTOR = SHARED_DATA / "weights" / "yolov8n_int8_openvino_model"  # the INT8 YOLOv8n on OpenVINO: the demo runs
STUDY_DETECTOR = SHARED_DATA / "weights" / "yolov8n_int8_onnx" / "yolov8n_int8.onnx"  # the crop study's (its figures)
ABSOLUTE_MIN_SHARPNESS = 15.0  # an absolute rule, for comparison: a raw crop's Laplacian variance below this is blurred
SOFT_SIGMA = 2.0  # pixels of Gaussian blur that make the indoor clip a soft camera
VTEST_FRAMES = 300  # 30 s of PETS: every pedestrian of its first half
ENOUGH_CROPS = 4  # usable crops that make a track worth publishing in any case
PETS_TOGETHER = 8  # people in view at once in vtest.avi (frame 700, counted by eye)
PETS_PEOPLE = 10  # distinct people walking through it, by appearance (about: 9-12)


def need_shared_data() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (a fresh clone without the shared data)")


@dataclass
class CropStudy:
    """One clip through the real detector and three tracklet buffers: the default policy, blur off, and an
    absolute sharpness threshold (counted per usable crop)."""

    tracklets: dict[str, set[tuple[int, int]]] = field(default_factory=dict)  # policy -> {(track, seq)}
    usable: Counter = field(default_factory=Counter)  # track -> crops that pass the size and edge rules
    absolute_kept: Counter = field(default_factory=Counter)  # track -> of those, crops the absolute rule keeps
    raw_sharpness: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # the default buffer's counts


def study(path, sigma: float = 0.0, max_frames: int | None = None) -> CropStudy:
    from pipeline.camera.tracking import DetectorOptions, make_tracker
    from pipeline.camera.tracklets import TrackletBuffer, TrackletPolicy, crop_quality
    from pipeline.types import Frame

    default = TrackletPolicy()
    buffers = {"default": TrackletBuffer("c", default), "blur_off": TrackletBuffer("c", replace(default, blur_ratio=0))}
    tracker = make_tracker("c", DetectorOptions(weights=str(STUDY_DETECTOR), gate=0))  # every frame: a crop study
    out = CropStudy({name: set() for name in buffers})
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            if sigma:
                bgr = cv2.GaussianBlur(bgr, (0, 0), sigma)
            frame = Frame("c", index, index / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            boxes = tracker.update(frame)
            for b in boxes:
                if crop_quality(frame.image, b.box, default) is None:
                    x1, y1, x2, y2 = (int(v) for v in b.box)
                    grey = cv2.cvtColor(frame.image[y1:y2, x1:x2], cv2.COLOR_RGB2GRAY)
                    raw = float(cv2.Laplacian(grey, cv2.CV_64F).var())
                    out.usable[b.track_id] += 1
                    out.absolute_kept[b.track_id] += raw >= ABSOLUTE_MIN_SHARPNESS
                    out.raw_sharpness.append(raw)
            for name, buf in buffers.items():
                out.tracklets[name] |= {(t.track_id, t.seq) for t in buf.add(frame, boxes)}
            index += 1
    finally:
        capture.release()
    for name, buf in buffers.items():
        out.tracklets[name] |= {(t.track_id, t.seq) for t in buf.flush()}
    out.counts = dict(buffers["default"].counts)
    return out


@pytest.fixture(scope="module")
def studies() -> dict[str, CropStudy]:
    need_shared_data()
    return {
        "cam1": study(CLIPS / "cam1.mp4"),
        "cam2": study(CLIPS / "cam2.mp4"),
        "cam1_soft": study(CLIPS / "cam1.mp4", SOFT_SIGMA),
        "cam2_soft": study(CLIPS / "cam2.mp4", SOFT_SIGMA),
        "vtest": study(VTEST, max_frames=VTEST_FRAMES),
    }


@pytest.mark.slow
def test_every_track_with_enough_crops_is_published_on_real_clips(studies):
    """Blur never costs a tracklet: under the default policy the same tracklets are published as with the blur
    rule off, and every track with a few usable crops is among them. (A track whose only two usable crops
    are more than ``lost_after`` apart gives two one-crop pieces, too short with or without blur.)"""
    for name, s in studies.items():
        published = {track for track, _ in s.tracklets["default"]}
        assert s.tracklets["default"] == s.tracklets["blur_off"], name
        enough = {track for track, n in s.usable.items() if n >= ENOUGH_CROPS}
        assert enough and enough <= published, (name, enough - published, s.counts)


@pytest.mark.slow
def test_the_blur_rule_drops_few_crops_on_sharp_clips(studies):
    """On the clips as recorded, only the blurriest few crops go (motion smears; measured: under 1 %)."""
    for name in ("cam1", "cam2", "vtest"):
        c = studies[name].counts
        assert c.get("rejected_blurred", 0) <= 0.05 * c["collected"], (name, c)


@pytest.mark.slow
def test_a_soft_camera_loses_nobody(studies):
    """The soft indoor camera: an absolute threshold would reject every crop of the person on cam2 (raw
    sharpness about 8, below 15); the relative rule publishes them."""
    soft = studies["cam2_soft"]
    assert np.median(soft.raw_sharpness) < ABSOLUTE_MIN_SHARPNESS
    assert soft.usable and all(soft.absolute_kept[t] == 0 for t in soft.usable)  # an absolute rule: nobody published
    assert {t for t, _ in soft.tracklets["default"]} == set(soft.usable)
    for name in ("cam1_soft", "cam2_soft"):
        c = studies[name].counts
        assert c["tracklets"] >= 1 and c.get("rejected_blurred", 0) <= 0.3 * c["collected"], (name, c)


# --- the demo on real videos, with the bundled real model -------------------------------------------------------
def expected_threshold() -> float:
    """What the matcher links at with the bundled model: its calibrated threshold, else the default."""
    from models.artifacts import read_spec
    from models.zoo import default_embedder
    from pipeline.matcher.rules import MatchPolicy

    own = read_spec(default_embedder()).link_threshold
    return MatchPolicy().threshold if own is None else own


def indoor_demo(capsys, out, *options: str) -> dict:
    from tests.support.cli import run_json

    videos = [a for c in ("cam1", "cam2") for a in ("--video", str(CLIPS / f"{c}.mp4"))]
    code, data, err = run_json(capsys, "demo", *videos, "--detector", str(DETECTOR), "--out", str(out), *options)
    assert code == 0, err
    assert data["idf1"] is None and data["cameras"] == 2 and data["matcher"]["dead_letters"] == 0
    assert {"cam1", "cam2"} <= {c for p in data["persons"] for c in p["cameras"]}  # both cameras saw the person
    report = (out / "report.html").read_text()
    assert report.count("<img src='data:image/jpeg;base64,") >= data["tracklets"]  # a thumbnail per sighting
    return data


@pytest.mark.slow
def test_demo_links_the_person_across_two_real_cameras(capsys, tmp_path, cache_dir):
    """The two-camera indoor clip (one person walks from cam1 to cam2) with the YOLOv8n INT8 detector and a real
    model at its own calibrated threshold: BoxMOT's OSNet-x0.25 (MSMT17) imported, carrying the threshold
    `crosscam calibrate --dataset market1501` chose for it (0.72; it scores this person 0.77 across the two
    cameras). At most 2 identities, one of them on both cameras."""
    from dataclasses import replace

    from models.artifacts import read_spec, write_spec
    from tests.support.cli import run_json

    need_shared_data()
    model = tmp_path / "osnet_x0_25_msmt17.onnx"
    source = SHARED_DATA / "reid_weights" / "boxmot" / "osnet_x0_25_msmt17.onnx"
    argv = ["model", "import", str(source), "--input", "256x128", "--channels", "rgb", "--mean", "imagenet"]
    code, _, err = run_json(capsys, *argv, "--out", str(model))
    assert code == 0, err
    spec = read_spec(model)
    calibration = {"dataset": "market1501", "split": "test identities of split 0", "link_f1": 0.801}
    write_spec(model, replace(spec, link_threshold=0.72, provenance=spec.provenance | {"calibration": calibration}))
    data = indoor_demo(capsys, tmp_path / "out", "--embedder", str(model))
    assert data["link_threshold"] == 0.72  # the model's own, announced by the workers
    assert 1 <= data["identities"] <= 2, data["persons"]
    assert any(set(p["cameras"]) == {"cam1", "cam2"} for p in data["persons"]), data["persons"]


@pytest.mark.slow
def test_demo_on_real_videos_runs_the_bundled_model_by_default(capsys, tmp_path, cache_dir):
    """Without --embedder, real video runs the bundled model (Intel's 0277) at its own threshold. It scores this
    person 0.49 across the two cameras, below its Market-1501 threshold (0.57) and the default (0.6), so the
    person stays one identity per camera: never more than that."""
    from models.zoo import default_embedder

    need_shared_data()
    data = indoor_demo(capsys, tmp_path / "gated")
    assert data["model"] == str(default_embedder()) and data["link_threshold"] == expected_threshold()
    assert 1 <= data["identities"] <= 2, data["persons"]
    # the per-frame tracks, and each camera's video with them drawn on it
    for camera, frames in (("cam1", 147), ("cam2", 84)):
        assert 0.3 * frames < data["tracks"]["rows"][camera] <= frames  # one person: at most a box a frame
        video = cv2.VideoCapture(data["tracks"]["videos"][camera])
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        video.release()
    # the same identity decisions with the motion gate off: the same people, sightings and boxes
    ungated = indoor_demo(capsys, tmp_path / "ungated", "--set", "detector.gate=0")
    assert ungated["persons"] == data["persons"] and ungated["tracks"]["rows"] == data["tracks"]["rows"]


@pytest.mark.slow
def test_demo_on_pets_finds_about_the_people_present(capsys, tmp_path, cache_dir):
    """PETS 2009 S2.L1 view 1 (79.5 s, one camera): 8 people are in view at once (frame 700, counted by eye)
    and about 10 distinct people walk through (by appearance; several dark-clad men are hard to tell apart at
    480x360). Identities found: at least the 8 seen together (one camera never holds one identity twice at a
    time), and at most 3 per person (re-entries and fragments the model fails to join)."""
    from tests.support.cli import run_json

    need_shared_data()
    code, data, err = run_json(
        capsys, "demo", "--video", str(VTEST), "--detector", str(DETECTOR), "--out", str(tmp_path)
    )
    assert code == 0, err
    assert data["cameras"] == 1 and data["tracklets"] >= 20
    assert PETS_TOGETHER <= data["identities"] <= 3 * PETS_PEOPLE, data["identities"]
    assert data["identities"] < data["tracklets"]  # tracklets of one person are linked
