"""The plain folder layout for a site's own footage: ids, order, the shared split and protocol, errors,
and a short training run from it through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.cli import main
from trainer.data.folder import load_folder, natural_key
from trainer.data.index import DatasetError
from trainer.data.market1501 import split_identities
from trainer.data.registry import load_dataset
from trainer.recipe import Recipe

PERSONS = ("alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi", "ivan")
CAMERAS = ("cam2", "cam10", "door")


def write_tree(root: Path, size: tuple[int, int] = (32, 16)) -> Path:
    """Every person in every camera, two tracklets each (frames ``f2``, ``f10``, ``f9`` and ``f1``);
    each person has their own colour, so a network can learn them. Some frames are PNG."""
    for p, person in enumerate(PERSONS):
        colour = np.array([(37 * p) % 256, (91 * p + 40) % 256, (53 * p + 90) % 256], np.uint8)
        for c, camera in enumerate(CAMERAS):
            for tracklet, frames in (("walk1", ("f2.jpg", "f10.jpg", "f9.png")), ("walk2", ("f1.jpg", "f2.jpg"))):
                folder = root / person / camera / tracklet
                folder.mkdir(parents=True)
                for i, frame in enumerate(frames):
                    img = np.clip(colour.astype(int) + 8 * c + 3 * i, 0, 255).astype(np.uint8)
                    assert cv2.imwrite(str(folder / frame), np.broadcast_to(img, (*size, 3)).copy())
    return root


def test_natural_order():
    assert sorted(["f10.jpg", "f9.png", "f2.jpg"], key=natural_key) == ["f2.jpg", "f9.png", "f10.jpg"]
    assert sorted(["cam10", "door", "cam2"], key=natural_key) == ["cam2", "cam10", "door"]


def test_folder_tree_ids_order_split_and_protocol(tmp_path):
    root = write_tree(tmp_path / "site")
    (root / "alice" / "stray.jpg").write_bytes((root / "alice" / "door" / "walk1" / "f2.jpg").read_bytes())
    (root / ".cache" / "x" / "y").mkdir(parents=True)
    index = load_dataset("folder", root)
    assert index == load_folder(root)  # deterministic
    every = index.train + index.gallery
    assert {t.pid for t in every} == set(range(1, 10)) and {t.camid for t in every} == {1, 2, 3}
    alice = [t for t in every if t.pid == 1]
    assert alice and all("/alice/" in p for t in alice for p in t.paths)
    for t in every:  # cameras numbered in natural order: cam2 -> 1, cam10 -> 2, door -> 3
        assert all(f"/{CAMERAS[t.camid - 1]}/" in p for p in t.paths)
        if "walk1" in t.paths[0]:
            assert [Path(p).name for p in t.paths] == ["f2.jpg", "f9.png", "f10.jpg"]
    assert [Path(p).name for p in index.skipped] == ["stray.jpg"]
    train_ids, test_ids = {t.pid for t in index.train}, {t.pid for t in index.gallery}
    assert (train_ids, test_ids) == split_identities(range(1, 10)) and len(test_ids) == 3
    assert not train_ids & test_ids
    # one query per test person and camera, the longer walk (3 frames); the gallery is every test tracklet
    assert len(index.query) == 3 * 3 and all(len(q.paths) == 3 for q in index.query)
    assert len(index.gallery) == 3 * 3 * 2 and set(index.query) <= set(index.gallery)


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"(?s)nowhere: data folder not found.*<person>/<camera>/<tracklet>"):
        load_folder(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no tracklet folders with images"):
        load_folder(tmp_path)
    (tmp_path / "bob" / "cam1").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "bob" / "cam1" / "0001.jpg"), np.zeros((8, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"1 images at other depths, e\.g\. .*bob/cam1/0001\.jpg"):
        load_folder(tmp_path)


def test_train_from_a_folder_recipe(tmp_path, capsys):
    root = write_tree(tmp_path / "site")
    recipe = {
        "name": "site",
        "data": {"dataset": "folder", "val_identities": 0.0},
        "model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16, "frames": 2},
        "sampler": {"p": 3, "k": 2},
        "optim": {"epochs": 1, "iters_per_epoch": 2, "warmup_epochs": 0},
    }
    Recipe.model_validate(recipe)
    path = tmp_path / "site.yaml"
    path.write_text(json.dumps(recipe))  # JSON is YAML
    code = main(["train", str(path), "--data-root", str(root), "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert code == 0 and (tmp_path / "run" / "best.pt").is_file()
    capsys.readouterr()
    code = main(["eval", str(tmp_path / "run" / "best.pt"), "--dataset", "folder", "--data-root", str(root), "--json"])
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and data["queries"] == 9 and 0.0 < data["mAP"] <= 1.0
    ckpt = str(tmp_path / "run" / "best.pt")
    code = main(["bench", "table1", "--checkpoints", ckpt, "--dataset", "folder", "--data-root", str(root), "--json"])
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and table["dataset"] == "folder" and table["rows"][0]["mAP"] == pytest.approx(data["mAP"])
    assert table["markdown"].startswith("| Method | mAP |") and table["rows"][0]["name"] == "site"
