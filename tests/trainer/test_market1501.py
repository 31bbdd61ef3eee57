"""Market-1501 as video: file names, the official layout, the identity split of a train-only copy, the
cross-camera protocol, and ``crosscam data inspect`` on the project's real copy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.cli import main
from tests.support.paths import REPO, SHARED_DATA
from trainer.data.index import DatasetError, Tracklet
from trainer.data.market1501 import (
    TEST_SHARE,
    Crop,
    cross_camera_protocol,
    load_market1501,
    parse_name,
    split_identities,
)
from trainer.data.registry import load_dataset
from trainer.validation import hold_out

MARKET = SHARED_DATA / "market1501"
needs_market = pytest.mark.skipif(
    not MARKET.is_dir(), reason=f"{MARKET} is absent (a fresh clone without the project's shared data)"
)


def write_crops(folder: Path, names: list[str]) -> None:
    """Real 16x8 JPEGs under ``names``; each crop's grey level encodes its position in the list."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        assert cv2.imwrite(str(folder / name), np.full((16, 8, 3), 10 + i % 200, np.uint8))


def inspect_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["data", "inspect", *argv, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if code == 0 else {}


def train_only_layout(root: Path, ids: int = 30, cameras: int = 3) -> Path:
    """``ids`` persons, each in ``cameras`` cameras with one or two sequences of 1-4 frames; the last
    person is seen in camera 1 only."""
    rng = np.random.default_rng(0)
    names = []
    for pid in range(1, ids + 1):
        for cam in range(1, (cameras if pid < ids else 1) + 1):
            for seq in range(1, int(rng.integers(1, 3)) + 1):
                names += [f"{pid:04d}_c{cam}s{seq}_{f * 25 + 1:06d}_01.jpg" for f in range(int(rng.integers(1, 5)))]
    write_crops(root / "bounding_box_train", names)
    return root


@pytest.mark.parametrize(
    "name,crop",
    [
        ("0002_c1s1_000451_03.jpg", Crop(2, 1, 1, 451, 3)),
        ("1501_c6s4_002127_05.jpg", Crop(1501, 6, 4, 2127, 5)),
        ("-1_c3s2_000101_00.jpg", Crop(-1, 3, 2, 101, 0)),
        ("0000_c5s3_015240_04.JPG", Crop(0, 5, 3, 15240, 4)),
        ("0002_c1_000451_03.jpg", None),
        ("0002_c1s1_000451.jpg", None),
        ("person.jpg", None),
        ("0002_c1s1_000451_03.png", None),
    ],
)
def test_parse_name(name, crop):
    assert parse_name(name) == crop


def test_official_layout_junk_distractors_and_frame_order(tmp_path):
    write_crops(
        tmp_path / "bounding_box_train",
        [
            *("0001_c1s1_000200_01.jpg", "0001_c1s1_000100_02.jpg", "0001_c1s1_000100_01.jpg"),
            *("0001_c2s1_000050_01.jpg", "0002_c1s1_000010_01.jpg", "0002_c3s2_000020_01.jpg"),
            *("-1_c1s1_000001_01.jpg", "oops.jpg"),
        ],
    )
    (tmp_path / "bounding_box_train" / "Thumbs.db").write_bytes(b"not an image")
    write_crops(tmp_path / "query", ["0003_c1s1_000300_01.jpg", "0003_c1s1_000325_01.jpg", "0004_c2s1_000010_01.jpg"])
    write_crops(
        tmp_path / "bounding_box_test",
        [
            *("0003_c2s1_000100_01.jpg", "0003_c1s2_000100_01.jpg", "0004_c1s2_000010_01.jpg"),
            *("0000_c1s1_000001_01.jpg", "0000_c1s1_000002_01.jpg", "-1_c2s1_000003_01.jpg"),
        ],
    )
    index = load_dataset("market1501", tmp_path)
    assert [(t.pid, t.camid, len(t.paths)) for t in index.train] == [(1, 1, 3), (1, 2, 1), (2, 1, 1), (2, 3, 1)]
    assert [Path(p).name for p in index.train[0].paths] == [
        "0001_c1s1_000100_01.jpg",
        "0001_c1s1_000100_02.jpg",
        "0001_c1s1_000200_01.jpg",
    ]  # frame order, then box
    assert [(t.pid, t.camid, len(t.paths)) for t in index.query] == [(3, 1, 2), (4, 2, 1)]
    assert sorted(t.pid for t in index.gallery) == [0, 3, 3, 4]  # distractors kept, junk dropped
    assert all("-1_" not in p for t in index.train + index.query + index.gallery for p in t.paths)
    assert [Path(p).name for p in index.skipped] == ["oops.jpg"]
    with pytest.raises(DatasetError, match="one official split"):
        load_market1501(tmp_path, split=1)


def test_layout_errors_name_the_folder_and_show_the_layout(tmp_path):
    with pytest.raises(DatasetError, match=r"(?s)absent: Market-1501 root folder not found.*bounding_box_train/"):
        load_market1501(tmp_path / "absent")
    with pytest.raises(DatasetError, match=r"(?s)bounding_box_train: Market-1501 folder not found.*PPPP_cCsS"):
        load_market1501(tmp_path)
    (tmp_path / "Market-1501-v15.09.15" / "bounding_box_train").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"pass --data-root .*Market-1501-v15\.09\.15"):
        load_market1501(tmp_path)
    root = tmp_path / "Market-1501-v15.09.15"
    with pytest.raises(DatasetError, match=r"pass its parent"):
        load_market1501(root / "bounding_box_train")
    with pytest.raises(DatasetError, match=r"bounding_box_train: no \.jpg images"):
        load_market1501(root)
    write_crops(root / "bounding_box_train", ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    with pytest.raises(DatasetError, match=r"none of its 4 images is named PPPP_cCsS_FFFFFF_NN\.jpg \(e\.g\. a\.jpg"):
        load_market1501(root)
    write_crops(root / "bounding_box_train", ["0001_c1s1_000001_01.jpg", "0001_c2s1_000001_01.jpg"])
    (root / "query").mkdir()
    with pytest.raises(DatasetError, match=r"bounding_box_test: Market-1501 folder not found; .*needs both"):
        load_market1501(root)


def test_identity_split_is_fixed_and_disjoint(tmp_path):
    train_only_layout(tmp_path)
    a, b = load_market1501(tmp_path), load_market1501(tmp_path)
    assert a == b  # deterministic
    train_ids = {t.pid for t in a.train}
    test_ids = {t.pid for t in a.query + a.gallery}
    assert not train_ids & test_ids and train_ids | test_ids == set(range(1, 31))
    assert len(test_ids) == round(TEST_SHARE * 30) == 10
    train_left, val = hold_out(a, 0.1, seed=0)
    val_ids = {t.pid for t in val.query + val.gallery}
    assert len(val_ids) == 2 and val_ids <= train_ids
    assert not val_ids & {t.pid for t in train_left} and not val_ids & test_ids
    other = load_market1501(tmp_path, split=1)
    assert {t.pid for t in other.gallery} != test_ids  # another split draws other identities
    assert split_identities(range(1, 31)) == (train_ids, test_ids)


def test_cross_camera_protocol_picks_the_longest_per_camera():
    def t(pid: int, cam: int, n: int, tag: str) -> Tracklet:
        return Tracklet(tuple(f"{tag}/{i}.jpg" for i in range(n)), pid, cam)

    test = [
        t(5, 1, 2, "a"),
        t(5, 1, 4, "b"),  # longest in camera 1
        t(5, 1, 4, "c"),  # as long, later sequence: not the query
        t(5, 2, 1, "d"),
        t(7, 3, 6, "e"),  # one camera only: gallery only
        t(7, 3, 2, "f"),
    ]
    query, gallery = cross_camera_protocol(test)
    assert query == (test[1], test[3])
    assert gallery == tuple(test)  # MARS's gallery: every test tracklet, the queries among them


def test_train_only_protocol_on_generated_layout(tmp_path):
    index = load_market1501(train_only_layout(tmp_path))
    for q in index.query:
        same = [g for g in index.gallery if g.pid == q.pid and g.camid == q.camid]
        assert len(q.paths) == max(len(g.paths) for g in same)
        assert any(g.pid == q.pid and g.camid != q.camid for g in index.gallery)  # every query can be matched
    assert len({(q.pid, q.camid) for q in index.query}) == len(index.query)
    if 30 in {t.pid for t in index.gallery}:  # the one-camera person, when drawn for the test set
        assert 30 not in {t.pid for t in index.query}


@needs_market
def test_real_market_copy_counts():
    index = load_dataset("market1501", MARKET)
    tracklets = set(index.train) | set(index.query) | set(index.gallery)
    assert len({t.pid for t in tracklets}) == 601
    assert sum(len(t.paths) for t in tracklets) == 10480
    assert (len(index.train), len({t.pid for t in index.train})) == (1889, 401)
    assert (len(index.query), len(index.gallery), len({t.pid for t in index.gallery})) == (869, 939, 200)
    assert {t.camid for t in tracklets} == set(range(1, 7)) and not index.skipped
    _, val = hold_out(index, 0.1, seed=0)
    assert (len(val.query), len(val.gallery)) == (40, 156)


@needs_market
def test_data_inspect_market_json(capsys):
    code, data = inspect_json(capsys, "--dataset", "market1501", "--data-root", str(MARKET))
    assert code == 0
    assert (data["identities"], data["images"], data["missing_images"], data["skipped_files"]) == (601, 10480, 0, 0)
    assert data["train"]["tracklets"] == 1889 and data["train"]["identities"] == 401
    assert data["query"]["tracklets"] == 869 and data["gallery"]["tracklets"] == data["test_tracklets"] == 939
    v = data["validation"]
    assert (v["share"], v["seed"], v["identities"]) == (0.1, 0, 40)
    assert v["train_left"]["identities"] == 361 and v["query"]["tracklets"] == 40


def test_data_inspect_counts_skipped_names_and_fails_cleanly(tmp_path, capsys):
    root = train_only_layout(tmp_path / "m", ids=12)
    write_crops(root / "bounding_box_train", ["IMG_0001.jpg", "IMG_0002.jpg"])
    code, data = inspect_json(capsys, "--dataset", "market1501", "--data-root", str(root))
    assert code == 0 and data["skipped_files"] == 2 and data["identities"] == 12
    assert data["skipped_examples"][0].endswith("IMG_0001.jpg")
    assert main(["data", "inspect", "--dataset", "market1501", "--data-root", str(tmp_path / "none")]) == 2
    assert "Market-1501 root folder not found" in capsys.readouterr().err


@needs_market
def test_acceptance_inspect_verbatim():
    """The acceptance command exactly as written, through the installed console script, from the repo root."""
    crosscam = shutil.which("crosscam", path=str(Path(sys.executable).parent)) or "crosscam"
    cmd = f"{crosscam} data inspect --dataset market1501 --data-root ../shared/data/market1501 --json"
    done = subprocess.run(cmd, shell=True, cwd=REPO, capture_output=True, text=True, check=True)
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert (data["identities"], data["images"]) == (601, 10480)
    assert [data[p]["tracklets"] for p in ("train", "query", "gallery")] == [1889, 869, 939]
