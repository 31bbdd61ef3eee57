"""Synthetic data sets written in the exact on-disk layouts of MARS, PRID-2011 and iLIDS-VID, so the
real loaders run end to end on them (the real images cannot be redistributed or downloaded here)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synth.camera import camera_style
from synth.people import appearance
from synth.sequences import render_tracklet

Progress = Callable[[int, int], None]  # (done, total) tracklets


@dataclass(frozen=True)
class _Track:
    pid: int
    cam: int
    frames: int


def _save(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write image")


def _render(track: _Track, seed: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    app = appearance(max(track.pid, 0) if track.pid > 0 else 10_000 + int(rng.integers(1_000_000)), seed)
    return render_tracklet(app, camera_style(track.cam, seed), track.frames, size[0], size[1], rng)


def write_mars(
    root: str | Path, ids: int = 60, seed: int = 0, size: tuple[int, int] = (256, 128), progress: Progress | None = None
) -> dict:
    """MARS layout: ``bbox_train/``, ``bbox_test/`` and ``info/`` (.mat tables, CRLF name lists).

    The first half of the identities train, the rest test; each appears in 2-3 of 6 cameras with 1-2
    tracklets of 8-24 frames per camera. The test side adds distractor (pid 0) and junk (pid -1)
    tracklets; one tracklet of each test identity is its query, the rest are gallery.
    """
    import scipy.io

    root = Path(root)
    rng = np.random.default_rng(seed)
    n_train = ids // 2
    tracks: dict[str, list[_Track]] = {"train": [], "test": []}
    for pid in range(1, ids + 1):
        side = "train" if pid <= n_train else "test"
        for cam in sorted(rng.choice(np.arange(1, 7), size=int(rng.integers(2, 4)), replace=False)):
            for _ in range(int(rng.integers(1, 3))):
                tracks[side].append(_Track(pid, int(cam), int(rng.integers(8, 25))))
    for pid in (0, -1):
        for _ in range(max(2, ids // 10)):
            tracks["test"].append(_Track(pid, int(rng.integers(1, 7)), int(rng.integers(8, 25))))
    tracks["test"].sort(key=lambda t: (t.pid, t.cam))
    total, done = sum(len(v) for v in tracks.values()), 0
    info = root / "info"
    info.mkdir(parents=True, exist_ok=True)
    for side, items in tracks.items():
        names, table, counters = [], [], {}
        for track in items:
            key = (track.pid, track.cam)
            counters[key] = counters.get(key, 0) + 1
            crops = _render(track, seed, size, rng)
            prefix = "00-1" if track.pid == -1 else f"{track.pid:04d}"
            start = len(names) + 1
            for f, crop in enumerate(crops, 1):
                name = f"{prefix}C{track.cam}T{counters[key]:04d}F{f:03d}.jpg"
                _save(root / f"bbox_{side}" / prefix / name, crop)
                names.append(name)
            table.append((start, len(names), track.pid, track.cam))
            done += 1
            if progress:
                progress(done, total)
        (info / f"{side}_name.txt").write_bytes(("\r\n".join(names) + "\r\n").encode())
        scipy.io.savemat(str(info / f"tracks_{side}_info.mat"), {f"track_{side}_info": np.array(table, np.int32)})
        if side == "test":
            queries, seen = [], set()
            for row, track in enumerate(items, 1):
                if track.pid > 0 and track.pid not in seen:
                    seen.add(track.pid)
                    queries.append(row)
            scipy.io.savemat(str(info / "query_IDX.mat"), {"query_IDX": np.array([queries], np.uint16)})
    return {"layout": "mars", "root": str(root), "identities": ids, "tracklets": total}


def _two_camera(
    root: Path,
    ids: int,
    seed: int,
    size: tuple[int, int],
    folder: Callable[[int, int], Path],
    frame_name: Callable[[int, int, int], str],
    progress: Progress | None,
) -> list[int]:
    """Persons 1..ids in both cameras, plus single-camera extras; some too short to qualify (<= 21 frames).

    Returns the persons eligible for the splits: in both cameras with more than 21 frames in each.
    """
    rng = np.random.default_rng(seed)
    extras = max(1, ids // 5)
    jobs = [(pid, cam) for pid in range(1, ids + 1) for cam in (0, 1)] + [(ids + i, 0) for i in range(1, extras + 1)]
    lengths = {}
    for done, (pid, cam) in enumerate(jobs, 1):
        short = pid <= ids and rng.random() < 0.08
        frames = int(rng.integers(12, 21)) if short else int(rng.integers(22, 40))
        lengths[pid, cam] = frames
        for f, crop in enumerate(_render(_Track(pid, cam + 1, frames), seed, size, rng), 1):
            _save(folder(pid, cam) / frame_name(pid, cam, f), crop)
        if progress:
            progress(done, len(jobs))
    return [p for p in range(1, ids + 1) if lengths[p, 0] > 21 and lengths[p, 1] > 21]


def _random_splits(eligible: list[int], seed: int, count: int = 10) -> list[tuple[list[int], list[int]]]:
    rng = np.random.default_rng([seed, 7])
    half = len(eligible) // 2
    out = []
    for _ in range(count):
        perm = [eligible[i] for i in rng.permutation(len(eligible))]
        out.append((sorted(perm[:half]), sorted(perm[half : 2 * half])))
    return out


def write_prid2011(
    root: str | Path, ids: int = 40, seed: int = 0, size: tuple[int, int] = (128, 64), progress: Progress | None = None
) -> dict:
    """PRID-2011 layout: ``multi_shot/cam_a|cam_b/person_XXXX/NNNN.png`` and ``splits_prid2011.json``
    (10 splits over the persons seen in both cameras with more than 21 frames in each)."""
    root = Path(root)
    cams = ("cam_a", "cam_b")
    eligible = _two_camera(
        root,
        ids,
        seed,
        size,
        folder=lambda pid, cam: root / "multi_shot" / cams[cam] / f"person_{pid:04d}",
        frame_name=lambda pid, cam, f: f"{f:04d}.png",
        progress=progress,
    )
    splits = [
        {"train": [f"person_{p:04d}" for p in tr], "test": [f"person_{p:04d}" for p in te]}
        for tr, te in _random_splits(eligible, seed)
    ]
    (root / "splits_prid2011.json").write_text(json.dumps(splits))
    return {"layout": "prid2011", "root": str(root), "identities": ids, "eligible": len(eligible)}


def write_ilidsvid(
    root: str | Path, ids: int = 40, seed: int = 0, size: tuple[int, int] = (128, 64), progress: Progress | None = None
) -> dict:
    """iLIDS-VID layout: ``i-LIDS-VID/sequences/cam1|cam2/personNNN/camK_personNNN_FFFFF.png`` and
    ``train-test people splits/train_test_splits_ilidsvid.mat`` (``ls_set``, 1-based into sorted folders)."""
    import scipy.io

    root = Path(root)
    seqs = root / "i-LIDS-VID" / "sequences"
    eligible = _two_camera(
        root,
        ids,
        seed,
        size,
        folder=lambda pid, cam: seqs / f"cam{cam + 1}" / f"person{pid:03d}",
        frame_name=lambda pid, cam, f: f"cam{cam + 1}_person{pid:03d}_{f:05d}.png",
        progress=progress,
    )
    persons = sorted(p.name for p in (seqs / "cam1").iterdir())
    position = {name: i + 1 for i, name in enumerate(persons)}
    rows = [[position[f"person{p:03d}"] for p in tr + te] for tr, te in _random_splits(eligible, seed)]
    out = root / "train-test people splits"
    out.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(out / "train_test_splits_ilidsvid.mat"), {"ls_set": np.array(rows, np.int64)})
    return {"layout": "ilidsvid", "root": str(root), "identities": ids, "eligible": len(eligible)}


LAYOUTS = {"mars": write_mars, "prid2011": write_prid2011, "ilidsvid": write_ilidsvid}
