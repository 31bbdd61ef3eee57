"""The real re-ID models a user can run, the one that ships with crosscam, and how to get each of the others.

crosscam never downloads weights: this list says which file to fetch, from where, and the command that makes
it a crosscam model. Only the bundled model works offline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.errors import ModelFileError

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
DEFAULT_EMBEDDER_FILE = "person-reidentification-retail-0277.onnx"
OMZ_STORAGE = "https://storage.openvinotoolkit.org/repositories/open_model_zoo/2023.0/models_bin/1"
TORCHREID_OSNET_X0_25_MSMT17 = "https://drive.google.com/uc?id=1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF"


@dataclass(frozen=True)
class RealModel:
    """A pretrained (or trainable) re-ID model: where it comes from and how it becomes a crosscam artifact."""

    name: str
    source: str  # bundled, torchreid, boxmot, intel-omz or training
    summary: str
    licence: str
    files: tuple[str, ...]  # what to fetch (file names), empty when nothing is fetched
    urls: tuple[str, ...]  # where from
    how: tuple[str, ...]  # the commands, in order
    path: str | None = None  # the bundled file on this machine

    @property
    def offline(self) -> bool:
        return self.path is not None


def default_embedder() -> Path:
    """The bundled default re-ID model for real footage: Intel's person-reidentification-retail-0277 (Apache-2.0)
    imported as a crosscam ONNX artifact (BGR 256x128 frames, 256-d, frame features averaged over a tracklet)."""
    path = BUNDLED_DIR / DEFAULT_EMBEDDER_FILE
    if not path.is_file():
        raise ModelFileError(
            f"{path}: the bundled default re-ID model is missing from this installation; reinstall crosscam "
            "(pip install --force-reinstall crosscam) or pass a model file with --embedder"
        )
    return path


def _omz(number: str, precision: str, summary: str) -> RealModel:
    name = f"person-reidentification-retail-{number}"
    url = f"{OMZ_STORAGE}/{name}/{precision}/{name}"
    return RealModel(
        name=name,
        source="intel-omz",
        summary=summary,
        licence="Apache-2.0 (Intel Open Model Zoo)",
        files=(f"{name}.xml", f"{name}.bin"),
        urls=(f"{url}.xml", f"{url}.bin"),
        how=(
            f"omz_downloader --name {name} --precisions {precision}   (pip install openvino-dev), or fetch both URLs",
            f"crosscam model import {name}.xml --input 256x128 --channels bgr --mean none --out {name}.onnx",
        ),
    )


def real_models() -> tuple[RealModel, ...]:
    """Every real model crosscam knows how to use, the bundled one first."""
    bundled = BUNDLED_DIR / DEFAULT_EMBEDDER_FILE
    return (
        RealModel(
            name="person-reidentification-retail-0277",
            source="bundled",
            summary="Intel OMZ OSNet with LCT blocks, 256-d; the default for real footage (`--embedder` left out); "
            "95.2 rank-1 / 89.0 mAP on Market-1501 crops frame by frame (its training data is not stated)",
            licence="Apache-2.0, Copyright (c) 2020 Intel Corporation (NOTICE.md beside the file)",
            files=(),
            urls=(),
            how=(f"ships with crosscam: {bundled}",),
            path=str(bundled) if bundled.is_file() else None,
        ),
        _omz("0277", "FP16", "the bundled model, as Intel distributes it (also FP32 and FP16-INT8)"),
        _omz("0286", "FP16", "smaller: 93.1 rank-1 / 83.2 mAP on Market-1501 crops"),
        _omz("0287", "FP32", "smaller still: 90.0 / 74.1 (FP16-INT8 is OpenVINO-only: import with --format ir)"),
        _omz("0288", "FP32", "the smallest: 81.2 / 55.3"),
        RealModel(
            name="osnet_x0_25_msmt17 (torchreid)",
            source="torchreid",
            summary="torchreid's model-zoo OSNet-x0.25 trained on MSMT17 (512-d): the starting point for "
            "fine-tuning; 48.5 rank-1 on Market-1501 untrained",
            licence="MIT code; trained on MSMT17, which is for research only: keep models made from it in house",
            files=("osnet_x0_25_msmt17.pth",),
            urls=(TORCHREID_OSNET_X0_25_MSMT17, "https://kaiyangzhou.github.io/deep-person-reid/MODEL_ZOO"),
            how=(
                "crosscam model init --arch osnet_x0_25_avg --pretrained osnet_x0_25_msmt17.pth "
                "--out osnet_x0_25_msmt17_avg.pt   (frame average, no training)",
                "other widths (x0_5, x0_75, x1_0) load the same way into osnet_<width>_<head> architectures",
            ),
        ),
        RealModel(
            name="osnet_x0_25_msmt17 (BoxMOT ONNX)",
            source="boxmot",
            summary="BoxMOT's ONNX export of an OSNet-x0.25 MSMT17 model (512-d, RGB, ImageNet mean/std)",
            licence="BoxMOT is AGPL-3.0; trained on MSMT17, which is for research only",
            files=("osnet_x0_25_msmt17.onnx",),
            urls=("https://github.com/mikel-brostrom/boxmot",),
            how=(
                "python boxmot/appearance/reid_export.py --weights osnet_x0_25_msmt17.pt --include onnx --dynamic",
                "crosscam model import osnet_x0_25_msmt17.onnx --input 256x128 --channels rgb --mean imagenet "
                "--out osnet_x0_25_msmt17_boxmot.onnx",
            ),
        ),
        RealModel(
            name="market_osnet_ta (own training)",
            source="training",
            summary="OSNet-x0.25 from MSMT17 fine-tuned on Market-1501 tracklets with temporal attention "
            "(78.2 mAP on the Market-1501 test identities, docs/benchmarks.md)",
            licence="yours; trained on Market-1501 (research only): do not ship the weights",
            files=("osnet_x0_25_msmt17.pth",),
            urls=(TORCHREID_OSNET_X0_25_MSMT17,),
            how=(
                "crosscam train market_osnet_ta --data-root MARKET1501_ROOT   (or market_osnet_x0_25_attention: the "
                "AAAI-2020 paper's losses)",
                "or on a site's own labelled footage: crosscam train RECIPE.yaml --data-root FOLDER",
            ),
        ),
    )


def as_rows() -> list[dict[str, Any]]:
    """``real_models()`` as JSON-ready rows, with ``offline`` (usable without fetching anything)."""
    return [asdict(m) | {"offline": m.offline} for m in real_models()]


def missing_file_error(path: Path) -> ModelFileError | None:
    """For a model file that is not here: if it is one ``real_models()`` lists, the error that says where to
    fetch it (crosscam has no internet access of its own); else None."""
    for model in real_models():
        if path.name in model.files:
            where = " or ".join(model.urls)
            return ModelFileError(
                f"{path}: not found; it is {model.name}: fetch {path.name} from {where} "
                f"on a machine with internet access and copy it here (`crosscam model list` shows every step)"
            )
    return None
