"""Data set loaders on the real MARS info files and on generated data in the real layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth.datasets import write_ilidsvid, write_mars, write_prid2011
from tests.support.paths import SHARED_DATA
from trainer.data.index import DatasetError, count_missing
from trainer.data.registry import load_dataset, split_count

needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent (a fresh clone without the project's shared data)"
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    write_mars(root / "mars", ids=12, seed=3, size=(64, 32))
    write_prid2011(root / "prid", ids=16, seed=3, size=(64, 32))
    write_ilidsvid(root / "ilids", ids=16, seed=3, size=(64, 32))
    return root


@needs_shared
def test_real_mars_info_files():
    index = load_dataset("mars", SHARED_DATA / "mars_info")
    s = index.summary()
    assert s["train"]["tracklets"] == 8298 and s["train"]["identities"] == 625
    assert len(index.query) + len(index.gallery) == 12180 and len(index.query) == 1980
    assert s["train"]["images"] == 509914
    assert index.train[0].paths[0].endswith("bbox_train/0001/0001C1T0001F001.jpg")
    assert {t.pid for t in index.gallery} >= {-1, 0}
    missing, total = count_missing(p for t in index.train[:50] for p in t.paths)
    assert missing == total > 0  # the info files only: every image is missing


@needs_shared
def test_real_prid_splits_file_with_a_generated_prid_layout(tmp_path):
    """The real 10 splits name persons up to person_0200, so a generated layout of 200 ids fits them."""
    splits = SHARED_DATA / "prid2011_splits" / "splits_prid2011.json"
    real = json.loads(splits.read_text())
    assert len(real) == 10 and all(len(s["train"]) == len(s["test"]) == 89 for s in real)
    write_prid2011(tmp_path, ids=200, seed=0, size=(16, 8))
    index = load_dataset("prid2011", tmp_path, split=4, splits=splits)
    assert len(index.query) == len(index.gallery) == 89
    assert {t.pid for t in index.query} == {int(p[-4:]) for p in real[4]["test"]}
    assert {t.camid for t in index.query} == {0} and {t.camid for t in index.gallery} == {1}
    assert not {t.pid for t in index.train} & {t.pid for t in index.query}
    assert split_count("prid2011", tmp_path, splits) == 10


def test_generated_mars_round_trip(generated):
    index = load_dataset("mars", generated / "mars")
    assert {t.pid for t in index.train} == set(range(1, 7))
    assert {t.pid for t in index.query} == set(range(7, 13))  # one query per test identity
    assert {-1, 0} <= {t.pid for t in index.gallery}
    assert count_missing(p for t in index.train + index.query + index.gallery for p in t.paths)[0] == 0
    names = (generated / "mars" / "info" / "train_name.txt").read_bytes()
    assert b"\r\n" in names  # CRLF as published
    for t in index.train:
        assert all(f"C{t.camid}T" in p for p in t.paths)


def test_generated_prid_and_ilids(generated):
    for name, root in (("prid2011", generated / "prid"), ("ilidsvid", generated / "ilids")):
        assert split_count(name, root) == 10
        index = load_dataset(name, root, split=2)
        assert len(index.query) == len(index.gallery) > 0
        assert all(len(t.paths) > 21 for t in index.query + index.gallery)  # only eligible persons
        assert not {t.pid for t in index.train} & {t.pid for t in index.query}


@pytest.mark.parametrize(
    "name,make_root,message",
    [
        ("mars", lambda p: p, r"(?s)MARS info/ folder not found. Expected layout:\n.*bbox_train"),
        ("prid2011", lambda p: p, r"multi_shot/ folder not found"),
        ("ilidsvid", lambda p: p, r"sequences/ folder not found"),
        ("mars", lambda p: p / "absent", "MARS root folder not found"),
    ],
)
def test_missing_folders_name_the_expected_layout(tmp_path, name, make_root, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(name, make_root(tmp_path))


def test_missing_info_file_and_bad_split(generated, tmp_path):
    import shutil

    shutil.copytree(generated / "mars" / "info", tmp_path / "info")
    (tmp_path / "info" / "query_IDX.mat").unlink()
    with pytest.raises(DatasetError, match=r"query_IDX\.mat: MARS info file not found"):
        load_dataset("mars", tmp_path)
    with pytest.raises(DatasetError, match="split 10 does not exist"):
        load_dataset("prid2011", generated / "prid", split=10)
    with pytest.raises(DatasetError, match="unknown data set"):
        load_dataset("market1502", generated)


def test_corrupt_info_file(generated, tmp_path):
    import shutil

    shutil.copytree(generated / "mars" / "info", tmp_path / "info")
    (tmp_path / "info" / "tracks_train_info.mat").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable MATLAB file"):
        load_dataset("mars", tmp_path)


def test_count_missing_lists_each_folder_once(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.jpg").write_bytes(b"x")
    paths = [str(tmp_path / "a" / "1.jpg"), str(tmp_path / "a" / "2.jpg"), str(tmp_path / "b" / "1.jpg")]
    assert count_missing(paths) == (2, 3)
    assert np.array_equal(count_missing([]), (0, 0))
