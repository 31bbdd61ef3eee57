"""PRID-2011 (Hirzer et al., SCIA 2011), multi-shot, with the iLIDS-VID protocol's 10 splits.

    <root>/multi_shot/cam_a/person_0001/0001.png ...
    <root>/multi_shot/cam_b/person_0001/0001.png ...
    <root>/splits_prid2011.json     [{"train": ["person_0001", ...], "test": [...]}, x10]  (or pass splits=)

The splits cover the 178 persons whose sequences are longer than 21 frames in both cameras. For a
split, training uses both cameras of the train persons; the test persons' cam_a sequences are the
queries and their cam_b sequences the gallery; results are averaged over the splits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from trainer.data.index import DatasetError, DatasetIndex, Tracklet, require

LAYOUT = __doc__.split("\n\n")[1]
CAMERAS = ("cam_a", "cam_b")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_splits(path: Path) -> list[dict[str, list[str]]]:
    require(path, "PRID-2011 splits file", LAYOUT)
    try:
        splits = json.loads(path.read_text())
        ok = (
            isinstance(splits, list)
            and splits
            and all(
                isinstance(s, dict) and isinstance(s.get("train"), list) and isinstance(s.get("test"), list)
                for s in splits
            )
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from e
    if not ok:
        raise DatasetError(f"{path}: expected a list of {{'train': [...], 'test': [...]}} splits")
    return splits


def sequence(folder: Path) -> tuple[str, ...]:
    """Image files of one sequence folder, sorted by name (frame order); empty if the folder is missing."""
    try:
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES))
    except OSError:
        return ()
    return tuple(str(folder / n) for n in names)


def _tracklets(base: Path, persons: list[str], pid_of: dict[str, int], cams: tuple[int, ...]) -> list[Tracklet]:
    return [Tracklet(paths=sequence(base / CAMERAS[c] / p), pid=pid_of[p], camid=c) for p in persons for c in cams]


def load_prid2011(root: str | Path, split: int = 0, splits: str | Path | None = None) -> DatasetIndex:
    root = Path(root)
    base = require(root / "multi_shot", "PRID-2011 multi_shot/ folder", LAYOUT)
    all_splits = read_splits(Path(splits) if splits else root / "splits_prid2011.json")
    if not 0 <= split < len(all_splits):
        raise DatasetError(
            f"split {split} does not exist; the splits file has {len(all_splits)} (0..{len(all_splits) - 1})"
        )
    chosen = all_splits[split]
    persons = sorted(set(chosen["train"]) | set(chosen["test"]))
    pid_of = {p: int(p.rsplit("_", 1)[-1]) for p in persons}
    for cam in CAMERAS:
        require(base / cam, f"PRID-2011 {cam}/ folder", LAYOUT)
    return DatasetIndex(
        name="prid2011",
        root=str(root),
        train=tuple(_tracklets(base, chosen["train"], pid_of, (0, 1))),
        query=tuple(_tracklets(base, chosen["test"], pid_of, (0,))),
        gallery=tuple(_tracklets(base, chosen["test"], pid_of, (1,))),
    )


def split_count(root: str | Path, splits: str | Path | None = None) -> int:
    return len(read_splits(Path(splits) if splits else Path(root) / "splits_prid2011.json"))
