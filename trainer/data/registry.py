"""Data set names -> loaders, so the CLI and the trainer open any data set the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trainer.data.index import DatasetError, DatasetIndex


def _mars(root: Path, split: int, splits: Path | None) -> DatasetIndex:
    from trainer.data.mars import load_mars

    if split != 0:
        raise DatasetError("MARS has one fixed train/test split; drop --split")
    return load_mars(root)


def _prid(root: Path, split: int, splits: Path | None) -> DatasetIndex:
    from trainer.data.prid import load_prid2011

    return load_prid2011(root, split=split, splits=splits)


def _ilids(root: Path, split: int, splits: Path | None) -> DatasetIndex:
    from trainer.data.ilidsvid import load_ilidsvid

    return load_ilidsvid(root, split=split)


def _market(root: Path, split: int, splits: Path | None) -> DatasetIndex:
    from trainer.data.market1501 import load_market1501

    return load_market1501(root, split=split)


def _folder(root: Path, split: int, splits: Path | None) -> DatasetIndex:
    from trainer.data.folder import load_folder

    return load_folder(root, split=split)


DATASETS: dict[str, Callable[[Path, int, Path | None], DatasetIndex]] = {
    "mars": _mars,
    "prid2011": _prid,
    "ilidsvid": _ilids,
    "market1501": _market,
    "folder": _folder,
}


def load_dataset(name: str, root: str | Path, split: int = 0, splits: str | Path | None = None) -> DatasetIndex:
    if name not in DATASETS:
        raise DatasetError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name](Path(root), split, Path(splits) if splits else None)


def split_count(name: str, root: str | Path, splits: str | Path | None = None) -> int:
    """How many train/test splits the data set's protocol averages over (1 for MARS, Market-1501 and the
    folder layout, whose other identity splits are alternatives, not part of the protocol)."""
    if name == "prid2011":
        from trainer.data.prid import split_count as prid_splits

        return prid_splits(root, splits)
    if name == "ilidsvid":
        from trainer.data.ilidsvid import split_count as ilids_splits

        return ilids_splits(root)
    return 1
