"""A site's own labelled footage in plain folders: one folder per person, camera and tracklet.

    <root>/<person>/<camera>/<tracklet>/<frame>.jpg|.jpeg|.png    e.g. alice/door/0001/000017.jpg

Person, camera and tracklet names are any folder names. Persons are numbered 1, 2, ... and cameras
1, 2, ... in natural name order (``cam2`` before ``cam10``) over the whole tree, so the same camera name
is the same camera for every person; tracklets and frames are read in natural name order too. Hidden
entries (``.name``) are ignored; an image at another depth is skipped, counted and named in a warning.

The identities are split into train and test and the test tracklets into query and gallery exactly as
for a Market-1501 copy without a test set (``trainer.data.market1501.held_out_index``: a third of the
persons, drawn by a fixed seed, are test identities; one query per person and camera).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from trainer.data.index import DatasetError, DatasetIndex, Tracklet, require
from trainer.data.market1501 import EXAMPLES, IMAGE_SUFFIXES, held_out_index

log = logging.getLogger(__name__)

LAYOUT = __doc__.split("\n\n")[1]
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders the digit runs of a name by value: ``f2.jpg`` before ``f10.jpg``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(name) if part)


def _entries(folder: Path) -> tuple[list[str], list[str]]:
    """(sub-folders, image files) of ``folder``, hidden entries left out, each in natural order."""
    dirs, images = [], []
    with os.scandir(folder) as it:
        for e in it:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                dirs.append(e.name)
            elif e.name.lower().endswith(IMAGE_SUFFIXES):
                images.append(e.name)
    return sorted(dirs, key=natural_key), sorted(images, key=natural_key)


def _walk(root: Path) -> tuple[list[tuple[str, str, tuple[str, ...]]], list[str]]:
    """(person, camera, frame paths) of every non-empty tracklet folder in natural order, and the image
    files found at a depth where no tracklet can be (skipped)."""
    found: list[tuple[str, str, tuple[str, ...]]] = []
    persons, stray = _entries(root)
    skipped = [str(root / n) for n in stray]
    for person in persons:
        cameras, stray = _entries(root / person)
        skipped += [str(root / person / n) for n in stray]
        for camera in cameras:
            tracklets, stray = _entries(root / person / camera)
            skipped += [str(root / person / camera / n) for n in stray]
            for name in tracklets:
                folder = root / person / camera / name
                deeper, frames = _entries(folder)
                skipped += [str(p) for d in deeper for p in _images_below(folder / d)]
                if frames:
                    found.append((person, camera, tuple(str(folder / f) for f in frames)))
    return found, skipped


def _images_below(folder: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(folder) for f in files if f.lower().endswith(IMAGE_SUFFIXES)]


def load_folder(root: str | Path, split: int = 0) -> DatasetIndex:
    """The folder tree under ``root`` as tracklets, split by identity (see the module docstring)."""
    root = Path(root)
    require(root, "data folder", LAYOUT)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder. Expected layout:\n{LAYOUT}")
    found, skipped = _walk(root)
    if not found:
        extra = f" ({len(skipped)} images at other depths, e.g. {skipped[0]})" if skipped else ""
        raise DatasetError(f"{root}: no tracklet folders with images{extra}. Expected layout:\n{LAYOUT}")
    if skipped:
        log.warning(
            "%s: %d images not at <person>/<camera>/<tracklet>/ were skipped, e.g. %s",
            root,
            len(skipped),
            ", ".join(skipped[:EXAMPLES]),
        )
    pid_of = {p: i for i, p in enumerate(sorted({p for p, _, _ in found}, key=natural_key), start=1)}
    camid_of = {c: i for i, c in enumerate(sorted({c for _, c, _ in found}, key=natural_key), start=1)}
    tracklets = [Tracklet(paths, pid_of[p], camid_of[c]) for p, c, paths in found]
    tracklets.sort(key=lambda t: (t.pid, t.camid))  # stable: tracklet folders keep their natural order
    return held_out_index("folder", root, tracklets, split, skipped)
