"""iLIDS-VID (Wang et al., ECCV 2014) with its official 10 train/test splits.

    <root>/i-LIDS-VID/sequences/cam1/person001/cam1_person001_00317.png ...
    <root>/i-LIDS-VID/sequences/cam2/person001/...
    <root>/train-test people splits/train_test_splits_ilidsvid.mat   ls_set int[10,300]: 1-based indexes
                                     into the sorted person folders; the first 150 of a row train, the rest test

As for PRID-2011: per split, the test persons' cam1 sequences are queries, their cam2 sequences the gallery.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trainer.data.index import DatasetError, DatasetIndex, Tracklet, require
from trainer.data.prid import sequence

LAYOUT = __doc__.split("\n\n")[1]
SPLITS_FILE = Path("train-test people splits") / "train_test_splits_ilidsvid.mat"


def read_ls_set(path: Path) -> np.ndarray:
    import scipy.io

    require(path, "iLIDS-VID splits file", LAYOUT)
    try:
        ls_set = np.asarray(scipy.io.loadmat(str(path))["ls_set"], dtype=np.int64)
    except (KeyError, ValueError, OSError) as e:
        raise DatasetError(f"{path}: not the iLIDS-VID splits file (no readable ls_set: {e})") from e
    if ls_set.ndim != 2 or ls_set.shape[1] % 2:
        raise DatasetError(f"{path}: ls_set should be splits x persons with an even person count, got {ls_set.shape}")
    return ls_set


def load_ilidsvid(root: str | Path, split: int = 0) -> DatasetIndex:
    root = Path(root)
    seqs = require(root / "i-LIDS-VID" / "sequences", "iLIDS-VID sequences/ folder", LAYOUT)
    cams = [require(seqs / c, f"iLIDS-VID {c}/ folder", LAYOUT) for c in ("cam1", "cam2")]
    persons = sorted(d for d in os.listdir(cams[0]) if (cams[0] / d).is_dir())
    ls_set = read_ls_set(root / SPLITS_FILE)
    if not 0 <= split < len(ls_set):
        raise DatasetError(f"split {split} does not exist; the splits file has {len(ls_set)} (0..{len(ls_set) - 1})")
    row = ls_set[split]
    if row.max() > len(persons) or row.min() < 1:
        raise DatasetError(
            f"{root / SPLITS_FILE}: person indexes 1..{row.max()} but {cams[0]} has {len(persons)} persons"
        )
    half = len(row) // 2
    train, test = [persons[i - 1] for i in row[:half]], [persons[i - 1] for i in row[half:]]

    def tracklets(names: list[str], cam_ids: tuple[int, ...]) -> tuple[Tracklet, ...]:
        return tuple(Tracklet(sequence(cams[c] / p), int(p.removeprefix("person")), c) for p in names for c in cam_ids)

    return DatasetIndex("ilidsvid", str(root), tracklets(train, (0, 1)), tracklets(test, (0,)), tracklets(test, (1,)))


def split_count(root: str | Path) -> int:
    return len(read_ls_set(Path(root) / SPLITS_FILE))
