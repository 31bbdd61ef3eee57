"""torchreid's own source files, loaded by path as references (the PyPI ``torchreid`` package's ``__init__``
does not import)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def torchreid_module(relative: str) -> ModuleType:
    """The module at ``relative`` inside the installed torchreid package (e.g. ``reid/models/osnet.py``)."""
    spec = importlib.util.find_spec("torchreid")
    assert spec is not None, "the reference needs torchreid (the dev extra): pip install torchreid==0.2.5"
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    name = "torchreid_reference_" + path.stem
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module
