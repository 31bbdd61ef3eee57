"""MARS (Zheng et al., ECCV 2016) in its published layout.

    <root>/info/tracks_train_info.mat   track_train_info  int[8298,4]: start, end (1-based, inclusive rows
                                        of train_name.txt), pid, camera
    <root>/info/tracks_test_info.mat    track_test_info   int[12180,4]; pids -1 (junk) and 0 (distractors)
    <root>/info/query_IDX.mat           query_IDX         1-based rows of track_test_info used as queries
    <root>/info/train_name.txt, test_name.txt             frame names, CRLF line ends
    <root>/bbox_train/<pid4>/<name>.jpg, <root>/bbox_test/<pid4>/<name>.jpg   (<pid4>: first 4 chars of the name)

The gallery is every test tracklet that is not a query (the protocol of the MARS evaluation code).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trainer.data.index import DatasetError, DatasetIndex, Tracklet, require

LAYOUT = __doc__.split("\n\n")[1]


def _loadmat(path: Path, key: str) -> np.ndarray:
    import scipy.io

    require(path, "MARS info file", LAYOUT)
    try:
        data = scipy.io.loadmat(str(path))
    except Exception as e:
        raise DatasetError(f"{path}: not a readable MATLAB file ({e}); download the MARS info/ folder again") from e
    if key not in data:
        raise DatasetError(f"{path}: has no variable {key!r}; is this the official MARS info file?")
    return np.asarray(data[key])


def _names(path: Path) -> list[str]:
    require(path, "MARS frame list", LAYOUT)
    return [line.rstrip() for line in path.read_text().splitlines() if line.strip()]


def _tracklets(info: np.ndarray, names: list[str], image_dir: Path, source: str) -> list[Tracklet]:
    if info.ndim != 2 or info.shape[1] != 4:
        raise DatasetError(f"{source}: expected an N x 4 table (start, end, pid, camera), got {info.shape}")
    if len(info) and int(info[:, 1].max()) > len(names):
        raise DatasetError(f"{source}: rows reach frame {int(info[:, 1].max())} but the name list has {len(names)}")
    base = f"{image_dir}{os.sep}"
    paths = [f"{base}{n[:4]}{os.sep}{n}" for n in names]  # plain strings: 1.2 M paths load in ~1 s
    return [
        Tracklet(paths=tuple(paths[start - 1 : end]), pid=int(pid), camid=int(cam))
        for start, end, pid, cam in info.astype(np.int64).tolist()
    ]


def load_mars(root: str | Path) -> DatasetIndex:
    root = Path(root)
    require(root, "MARS root folder", LAYOUT)
    info = require(root / "info", "MARS info/ folder", LAYOUT)
    train_info = _loadmat(info / "tracks_train_info.mat", "track_train_info")
    test_info = _loadmat(info / "tracks_test_info.mat", "track_test_info")
    query_idx = _loadmat(info / "query_IDX.mat", "query_IDX").astype(np.int64).ravel() - 1
    train = _tracklets(train_info, _names(info / "train_name.txt"), root / "bbox_train", "tracks_train_info.mat")
    test = _tracklets(test_info, _names(info / "test_name.txt"), root / "bbox_test", "tracks_test_info.mat")
    if len(query_idx) and (query_idx.min() < 0 or query_idx.max() >= len(test)):
        raise DatasetError(f"{info / 'query_IDX.mat'}: query rows outside 1..{len(test)}")
    is_query = np.zeros(len(test), dtype=bool)
    is_query[query_idx] = True
    return DatasetIndex(
        name="mars",
        root=str(root),
        train=tuple(train),
        query=tuple(test[i] for i in query_idx),
        gallery=tuple(t for t, q in zip(test, is_query, strict=True) if not q),
    )
