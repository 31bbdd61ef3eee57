"""The YOLO detector on the fastest runtime the machine has (``detector.runtime``).

``as-is`` loads the weights as given. ``openvino``, ``onnx`` and ``engine`` (TensorRT) export PyTorch ``.pt``
weights once with Ultralytics' own exporter into the cache (``<cache>/detectors/``, a folder keyed by the
weights' content and the export options) and load the export; weights that already are such an export load as
they are. OpenVINO and ONNX exports take any batch and image shape (a batch of frames is one inference, at the
frames' own aspect as the ``.pt`` runs); an engine is built for batch 1. ``auto`` (``choose_runtime``) picks the fastest that has run: on the CPU an OpenVINO export where
``openvino`` imports, else ONNX on ONNX Runtime; on a CUDA device the ``.pt`` on CUDA (a TensorRT engine only when
asked for: that export is written, not run); exports (.onnx, an OpenVINO folder, .engine) and other weights are
used as they are. When the export ``auto`` chose fails (a missing package, an unwritable cache, the exporter's
error), a warning names the reason and the weights load as they are; an export asked for by name fails with the
error.

An export is written to a temporary folder and renamed into place with a manifest of its files' sizes and
SHA-256, so a half-written or damaged export is never loaded: it is exported again. Processes exporting the same
weights at once wait for the first (a lock file). A package an export needs that is missing is crosscam's own
error naming the ``pip install`` to run; Ultralytics never tries to install it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from models.formats import sha256_file
from pipeline.camera.detection import DetectorError

log = logging.getLogger(__name__)

Runtime = Literal["auto", "as-is", "openvino", "onnx", "engine"]
RUNTIMES: tuple[str, ...] = ("auto", "as-is", "openvino", "onnx", "engine")
EXPORTS = ("openvino", "onnx", "engine")
# Bump when the way crosscam exports changes (the exporter's options): cached exports are keyed by it.
EXPORT_REVISION = 2
MANIFEST = "export.json"

# The modules an export and its runtime import, and the pip requirement that provides each.
_NEEDS: dict[str, tuple[str, ...]] = {
    "openvino": ("openvino",),
    "onnx": ("onnx", "onnxruntime"),
    "engine": ("onnx", "tensorrt"),
}
_PIP = {
    "openvino": "pip install openvino",
    "onnx": "pip install onnx",
    "onnxruntime": "pip install onnxruntime (onnxruntime-gpu for CUDA)",
    "tensorrt": 'pip install "crosscam[tensorrt]" --extra-index-url https://pypi.nvidia.com',
}
_export_lock = threading.Lock()  # Ultralytics' logger and auto-install switch are process-wide


def weights_kind(weights: str | Path) -> str:
    """``pt``, ``onnx``, ``openvino`` (an IR folder or .xml), ``engine``, or ``other``, from the path's name."""
    path = Path(weights)
    suffix = path.suffix.lower()
    if suffix == ".pt":
        return "pt"
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".engine", ".plan"):
        return "engine"
    if suffix == ".xml" or path.name.endswith("_openvino_model") or (path.is_dir() and any(path.glob("*.xml"))):
        return "openvino"
    return "other"


def is_cuda(device: str) -> bool:
    """Whether an Ultralytics device names NVIDIA GPUs: ``0``, ``0,1``, ``cuda``, ``cuda:0``."""
    device = str(device).strip().lower()
    if device.startswith("cuda"):
        return True
    parts = [p.strip() for p in device.split(",")]
    return bool(device) and all(p.isdigit() for p in parts)


def choose_runtime(kind: str, device: str, available: Iterable[str]) -> str:
    """The runtime ``auto`` means for weights of ``kind`` (``weights_kind``) on ``device``, given the runtime
    packages that import (``openvino``, ``onnxruntime``): ``openvino``, ``onnx`` or ``as-is``. Never ``engine``:
    the TensorRT export is only made when asked for by name."""
    available = set(available)
    if kind != "pt":
        return "as-is"  # already an export (or a format crosscam does not convert): load it as it is
    if is_cuda(device):
        return "as-is"  # the .pt on CUDA
    if str(device).strip().lower() == "cpu":
        if "openvino" in available:
            return "openvino"
        if "onnxruntime" in available:
            return "onnx"
    return "as-is"  # other devices (mps, ...) run the .pt with PyTorch


def importable_runtimes() -> frozenset[str]:
    """The runtime packages that import here."""
    found = set()
    for name in ("openvino", "onnxruntime"):
        try:
            importlib.import_module(name)
        except Exception:  # a missing or broken install alike: not available
            continue
        found.add(name)
    return frozenset(found)


def missing_packages(runtime: str) -> list[str]:
    """The modules an export to ``runtime`` needs that are not installed."""
    missing = []
    for name in _NEEDS.get(runtime, ()):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def resolve_weights(
    weights: str,
    runtime: str = "auto",
    *,
    imgsz: int = 640,
    device: str = "cpu",
    half: bool = False,
    cache_dir: str | Path | None = None,
) -> str:
    """The weights to load for ``runtime``: ``weights`` themselves, or their cached export (made now if absent)."""
    if runtime not in RUNTIMES:
        raise DetectorError(f"detector.runtime {runtime!r}: unknown; use one of {', '.join(RUNTIMES)}")
    path = Path(weights)
    if runtime == "as-is" or not path.exists():
        return weights  # a missing file is the loader's clear error
    kind = weights_kind(path)
    if runtime == "auto":
        runtime = choose_runtime(kind, device, importable_runtimes()) if kind == "pt" else "as-is"
        if runtime == "as-is":
            return weights
        log.info("detector %s: runtime auto -> %s on %s", weights, runtime, device)
        try:
            return str(cached_export(path, runtime, imgsz=imgsz, device=device, half=half, cache_dir=cache_dir))
        except Exception as e:  # any failure of an export nobody asked for by name: the weights still load
            log.warning(
                "detector %s: runtime auto could not export to %s (%s); loading the weights as they are (set "
                "detector.runtime to as-is to skip the export, or fix the reason to get the faster runtime)",
                weights,
                runtime,
                e if isinstance(e, DetectorError) else f"{type(e).__name__}: {e}",
            )
            return weights
    if kind == runtime:
        return weights  # already the export asked for
    if kind != "pt":
        raise DetectorError(
            f"{weights}: detector.runtime {runtime} exports PyTorch .pt weights, and these are {kind} weights; "
            "pass the .pt, or set detector.runtime to as-is (or auto) to load them as they are"
        )
    _check_device(weights, runtime, device)
    return str(cached_export(path, runtime, imgsz=imgsz, device=device, half=half, cache_dir=cache_dir))


def _check_device(weights: str, runtime: str, device: str) -> None:
    if runtime == "engine" and not is_cuda(device):
        raise DetectorError(
            f"{weights}: detector.runtime engine (TensorRT) needs a CUDA device, not {device!r}; set detector.device "
            "to 0 (or cuda:N), or use runtime openvino or onnx on the CPU"
        )
    if runtime == "openvino" and is_cuda(device):
        raise DetectorError(
            f"{weights}: detector.runtime openvino runs on the CPU, not on {device!r}; use runtime engine or as-is "
            "on CUDA, or set detector.device to cpu"
        )


def require(runtime: str, weights: str | Path) -> None:
    """A clear error naming what to install when an export to ``runtime`` lacks a package."""
    missing = missing_packages(runtime)
    if missing:
        raise DetectorError(
            f"{weights}: detector.runtime {runtime} needs {', '.join(missing)}, which is not installed: "
            + "; ".join(_PIP[m] for m in missing)
            + ", or set detector.runtime to as-is to run the weights on PyTorch"
        )


def export_options(runtime: str, imgsz: int, device: str, half: bool) -> dict:
    """What an export depends on besides the weights: it keys the cache."""
    import ultralytics

    options = {
        "runtime": runtime,
        "imgsz": int(imgsz),
        "half": bool(half),
        "batch": 1,
        # OpenVINO and ONNX exports take any batch and image shape: a batch of frames runs as one inference, and
        # frames are letterboxed to their own aspect as the .pt does (a 4:3 frame: a quarter fewer pixels than a
        # square, about that much faster on a CPU); an engine is built for batch 1 at imgsz x imgsz
        "dynamic": runtime != "engine",
        "ultralytics": ultralytics.__version__,
        "revision": EXPORT_REVISION,
    }
    if runtime == "engine":  # an engine is built for one GPU model and TensorRT release
        import tensorrt
        import torch

        index = int(device.split(":")[-1].split(",")[0]) if device[-1:].isdigit() else 0
        options |= {"device": torch.cuda.get_device_name(index), "tensorrt": tensorrt.__version__}
    return options


def export_folder(weights: Path, options: dict, cache_dir: str | Path | None = None) -> Path:
    """The cache folder of ``weights`` exported with ``options``."""
    from models.export import default_cache_dir

    key = hashlib.sha256((sha256_file(weights) + json.dumps(options, sort_keys=True)).encode()).hexdigest()[:16]
    precision = "fp16" if options["half"] else "fp32"
    name = f"{weights.stem}-{options['runtime']}-{options['imgsz']}-{precision}-{key}"
    return Path(cache_dir or default_cache_dir()) / "detectors" / name


def cached_export(
    weights: Path,
    runtime: str,
    *,
    imgsz: int = 640,
    device: str = "cpu",
    half: bool = False,
    cache_dir: str | Path | None = None,
) -> Path:
    """The export of ``.pt`` weights to ``runtime``, from the cache, made and cached first if absent or damaged."""
    require(runtime, weights)
    options = export_options(runtime, imgsz, device, half)
    folder = export_folder(weights, options, cache_dir)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.with_name(folder.name + ".lock").touch()
    except OSError as e:
        raise DetectorError(
            f"{weights}: cannot write the detector export cache {folder.parent} ({e.strerror}); set cache_dir (or "
            "$CROSSCAM_CACHE_DIR) to a writable folder, or detector.runtime to as-is"
        ) from e
    with _file_lock(folder.with_name(folder.name + ".lock")):
        if folder.exists():
            artifact, problem = verify(folder)
            if artifact is not None:
                return artifact
            log.warning("detector export %s is damaged (%s): exporting again", folder, problem)
            _remove(folder)
        log.warning(
            "detector %s: exporting to %s (imgsz %d, %s) into %s, once; this can take minutes on a CPU",
            weights,
            runtime,
            imgsz,
            "fp16" if half else "fp32",
            folder,
        )
        for stale in [*folder.parent.glob(f"{folder.name}.tmp-*"), *folder.parent.glob(f"{folder.name}.stale-*")]:
            shutil.rmtree(stale, ignore_errors=True)  # left by an export killed midway (exporters hold the lock)
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
        try:
            _export(weights, runtime, options, device, tmp)
            tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
            try:
                tmp.rename(folder)
            except OSError:  # another process (without the lock: another machine on shared storage) was first
                if verify(folder)[0] is None:
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        artifact, problem = verify(folder)
        if artifact is None:
            raise DetectorError(f"{weights}: the export to {runtime} in {folder} is unusable ({problem})")
        log.warning("detector %s: exported to %s in %.1f s", weights, artifact, time.monotonic() - started)
        return artifact


def _export(weights: Path, runtime: str, options: dict, device: str, out: Path) -> None:
    """Ultralytics' export of ``weights`` into the folder ``out``, with its manifest."""
    source = out / f"{weights.stem}.pt"  # the exporter writes beside its input
    shutil.copyfile(weights, source)
    kwargs = {"imgsz": options["imgsz"], "batch": options["batch"], "dynamic": options["dynamic"], "verbose": False}
    if options["half"]:
        kwargs["quantize"] = 16
    if runtime in ("onnx", "engine"):  # onnxslim is not a dependency; ONNX Runtime and TensorRT optimise the graph
        kwargs["simplify"] = False
    kwargs["device"] = "cpu" if runtime == "openvino" else device
    fmt = {"openvino": "openvino", "onnx": "onnx", "engine": "engine"}[runtime]
    try:
        from ultralytics import YOLO

        with _no_install(), _quiet():
            produced = Path(YOLO(str(source), task="detect").export(format=fmt, **kwargs))
    except Exception as e:  # the exporter raises many types
        raise DetectorError(
            f"{weights}: exporting to {runtime} failed ({type(e).__name__}: {e}); set detector.runtime to as-is "
            "to load the weights as they are"
        ) from e
    source.unlink()
    if runtime == "engine":
        out.joinpath(f"{weights.stem}.onnx").unlink(missing_ok=True)  # the exporter's intermediate step
    files = [produced] if produced.is_file() else sorted(p for p in produced.rglob("*") if p.is_file())
    manifest = {
        "artifact": produced.name,
        "weights": str(weights),
        "options": options,
        "files": {str(p.relative_to(out)): {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in files},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))


def verify(folder: Path) -> tuple[Path | None, str]:
    """``(artifact, "")`` when a cached export is whole (its manifest's files, sizes and SHA-256), else
    ``(None, what is wrong)``."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        artifact = folder / manifest["artifact"]
        for name, expected in manifest["files"].items():
            path = folder / name
            if not path.is_file():
                return None, f"{name} is missing"
            if path.stat().st_size != expected["size"] or sha256_file(path) != expected["sha256"]:
                return None, f"{name} differs from the export written"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"no readable {MANIFEST}: {type(e).__name__}: {e}"
    if not artifact.exists():
        return None, f"{artifact.name} is missing"
    return artifact, ""


def _remove(folder: Path) -> None:
    trash = folder.with_name(f"{folder.name}.stale-{os.getpid()}")
    folder.rename(trash)  # out of the way at once, then deleted
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive across processes (``flock``) and threads; where ``fcntl`` is absent, threads only."""
    with _export_lock, path.open("a") as f:
        try:
            import fcntl
        except ImportError:
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _no_install() -> Iterator[None]:
    """Ultralytics' requirement checks report instead of running ``pip install`` (crosscam checked first)."""
    from ultralytics.utils import checks

    before = checks.AUTOINSTALL
    checks.AUTOINSTALL = False
    try:
        yield
    finally:
        checks.AUTOINSTALL = before


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's progress lines and warnings stay off stdout (``--json``) and out of the log."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            yield
    finally:
        LOGGER.setLevel(level)
