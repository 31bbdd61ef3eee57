"""Market-1501 (Zheng et al., ICCV 2015) in its published layout, read as video: tracklets of crops.

    <root>/bounding_box_train/PPPP_cCsS_FFFFFF_NN.jpg   person, camera 1-6, camera sequence, frame, box
    <root>/bounding_box_test/PPPP_cCsS_FFFFFF_NN.jpg    (optional, with query/) person 0000: distractors,
    <root>/query/PPPP_cCsS_FFFFFF_NN.jpg                -1: junk

Crops of one person in one camera sequence (same ``PPPP_cCsS``) are frames of one walk past the camera:
a tracklet, its frames ordered by frame number FFFFFF, then box number NN. ``camid`` is C (1-6).
Person -1 (junk) is ignored everywhere; person 0000 (distractors) is kept in the gallery only, as in the
official protocol and torchreid.

With ``query/`` and ``bounding_box_test/`` (the official release): train = ``bounding_box_train``
tracklets, query = ``query/`` tracklets, gallery = ``bounding_box_test`` tracklets.

With ``bounding_box_train/`` alone, its identities are split (``split_identities``, shared with the
folder layout): the sorted person ids are permuted by ``numpy.random.default_rng([SPLIT_SEED, split])``
and the first ``round(TEST_SHARE * n)`` become test identities, the rest train identities. Over the test
tracklets, MARS's cross-camera protocol (``cross_camera_protocol``): every test identity seen in two or
more cameras gives one query per camera, its longest tracklet there (ties: the first in sequence order).
The gallery is every test tracklet, the queries included, as in MARS's own evaluation code
(``test_mars.m``): a query's same-identity same-camera entries (itself among them) are junk
(``trainer.metrics.evaluate_rank``), so its correct matches are its identity's tracklets in the other
cameras. (Most identities here have about one tracklet per camera, so a gallery without the queries
would leave most queries without a match.) Identities seen in one camera only are gallery distractors.
The trainer then holds validation identities out of the train identities (``trainer.validation.hold_out``
with the recipe's ``data.val_identities`` and ``seed``).
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.data.index import DatasetError, DatasetIndex, Tracklet, require

log = logging.getLogger(__name__)

LAYOUT = __doc__.split("\n\n")[1]
SPLIT_SEED = 1501  # the identity split's RNG seed: changing it changes every reported test figure
TEST_SHARE = 1 / 3  # share of identities held out as test identities when there is no official test set
JUNK_PID, DISTRACTOR_PID = -1, 0
NAME = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.jpe?g$", re.IGNORECASE)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
EXAMPLES = 3  # how many skipped file names an error or warning shows


@dataclass(frozen=True, order=True)
class Crop:
    """What a Market-1501 file name says about its crop."""

    pid: int
    camid: int
    sequence: int
    frame: int
    box: int


def parse_name(name: str) -> Crop | None:
    """``0002_c1s1_000451_03.jpg`` -> ``Crop(2, 1, 1, 451, 3)``; None for a name not in that form."""
    m = NAME.match(name)
    return None if m is None else Crop(*(int(g) for g in m.groups()))


def split_identities(pids: Iterable[int], split: int = 0, test_share: float = TEST_SHARE) -> tuple[set[int], set[int]]:
    """(train, test) identity sets: the sorted ids permuted by ``default_rng([SPLIT_SEED, split])``; the
    first ``round(test_share * n)`` (at least 1 when there are two or more ids) are the test identities."""
    ordered = np.array(sorted(set(pids)), dtype=np.int64)
    n_test = round(test_share * len(ordered))
    if len(ordered) >= 2:
        n_test = min(max(n_test, 1), len(ordered) - 1)
    perm = np.random.default_rng([SPLIT_SEED, split]).permutation(ordered).tolist()
    return set(perm[n_test:]), set(perm[:n_test])


def cross_camera_protocol(test: Sequence[Tracklet]) -> tuple[tuple[Tracklet, ...], tuple[Tracklet, ...]]:
    """(query, gallery) over ``test`` tracklets given in sequence order.

    Each identity seen in two or more cameras gives one query per camera: its longest tracklet there,
    the first in ``test`` order on a tie. The gallery is all of ``test``, the queries included (MARS's
    ``test_mars.m``); a query's same-camera entries, itself among them, are junk when ranking.
    """
    cameras: dict[int, set[int]] = defaultdict(set)
    for t in test:
        cameras[t.pid].add(t.camid)
    chosen: dict[tuple[int, int], int] = {}
    for i, t in enumerate(test):
        if len(cameras[t.pid]) < 2 or t.pid in (JUNK_PID, DISTRACTOR_PID):
            continue
        best = chosen.get((t.pid, t.camid))
        if best is None or len(t.paths) > len(test[best].paths):
            chosen[(t.pid, t.camid)] = i
    return tuple(test[i] for i in sorted(chosen.values())), tuple(test)


def held_out_index(
    name: str, root: Path, tracklets: Sequence[Tracklet], split: int, skipped: Sequence[str] = ()
) -> DatasetIndex:
    """A data set without an official test set, split by identity (``split_identities``) into train
    tracklets and a cross-camera query / gallery (``cross_camera_protocol``)."""
    train_ids, test_ids = split_identities((t.pid for t in tracklets), split)
    query, gallery = cross_camera_protocol([t for t in tracklets if t.pid in test_ids])
    train = tuple(t for t in tracklets if t.pid in train_ids)
    return DatasetIndex(name, str(root), train, query, gallery, skipped=tuple(skipped))


def read_tracklets(folder: Path, keep_distractors: bool) -> tuple[list[Tracklet], list[str]]:
    """Tracklets of one Market-1501 folder, sorted by (person, camera, sequence), and the image files
    whose names could not be parsed. Junk crops are dropped, distractors unless ``keep_distractors``."""
    groups: dict[tuple[int, int, int], list[tuple[int, int, str]]] = defaultdict(list)
    skipped: list[str] = []
    images = 0
    for entry in sorted(os.listdir(folder)):
        if not entry.lower().endswith(IMAGE_SUFFIXES):
            continue  # e.g. the Thumbs.db files of the published archive
        images += 1
        crop = parse_name(entry)
        if crop is None:
            skipped.append(str(folder / entry))
        elif crop.pid != JUNK_PID and (crop.pid != DISTRACTOR_PID or keep_distractors):
            groups[(crop.pid, crop.camid, crop.sequence)].append((crop.frame, crop.box, str(folder / entry)))
    if not images:
        raise DatasetError(f"{folder}: no .jpg images in this folder. Expected layout:\n{LAYOUT}")
    if len(skipped) == images:
        raise DatasetError(
            f"{folder}: none of its {images} images is named PPPP_cCsS_FFFFFF_NN.jpg "
            f"(e.g. {', '.join(Path(p).name for p in skipped[:EXAMPLES])}); is this a Market-1501 folder?"
        )
    if skipped:
        log.warning(
            "%s: %d images not named PPPP_cCsS_FFFFFF_NN.jpg were skipped, e.g. %s",
            folder,
            len(skipped),
            ", ".join(Path(p).name for p in skipped[:EXAMPLES]),
        )
    tracklets = [
        Tracklet(paths=tuple(p for _, _, p in sorted(frames)), pid=pid, camid=camid)
        for (pid, camid, _), frames in sorted(groups.items())
    ]
    return tracklets, skipped


def _hint(root: Path) -> str:
    """Where the layout is, when ``root`` is one level off (an archive's top folder, or a subfolder)."""
    if root.name in ("bounding_box_train", "bounding_box_test", "query"):
        return f" ({root} is itself a Market-1501 subfolder: pass its parent, {root.parent})"
    if root.is_dir():
        inner = sorted(d for d in root.iterdir() if (d / "bounding_box_train").is_dir())
        if inner:
            return f" (found {inner[0] / 'bounding_box_train'}: pass --data-root {inner[0]})"
    return ""


def load_market1501(root: str | Path, split: int = 0) -> DatasetIndex:
    """Market-1501 as tracklets: the official split when ``query/`` and ``bounding_box_test/`` exist,
    else identity split ``split`` of ``bounding_box_train`` (see the module docstring)."""
    root = Path(root)
    require(root, "Market-1501 root folder", LAYOUT)
    train_dir = root / "bounding_box_train"
    if not train_dir.is_dir():
        raise DatasetError(f"{train_dir}: Market-1501 folder not found{_hint(root)}. Expected layout:\n{LAYOUT}")
    query_dir, test_dir = root / "query", root / "bounding_box_test"
    if query_dir.is_dir() != test_dir.is_dir():
        missing = test_dir if query_dir.is_dir() else query_dir
        raise DatasetError(
            f"{missing}: Market-1501 folder not found; the official test set needs both query/ and "
            f"bounding_box_test/ (or neither, to split bounding_box_train by identity). Expected layout:\n{LAYOUT}"
        )
    if not query_dir.is_dir():
        tracklets, skipped = read_tracklets(train_dir, keep_distractors=False)
        return held_out_index("market1501", root, tracklets, split, skipped)
    if split != 0:
        raise DatasetError(
            f"{root}: Market-1501 with query/ and bounding_box_test/ has one official split; drop --split"
        )
    train, skipped = read_tracklets(train_dir, keep_distractors=False)
    query, skipped_q = read_tracklets(query_dir, keep_distractors=False)
    gallery, skipped_g = read_tracklets(test_dir, keep_distractors=True)
    return DatasetIndex(
        "market1501",
        str(root),
        tuple(train),
        tuple(query),
        tuple(gallery),
        skipped=tuple(skipped + skipped_q + skipped_g),
    )
