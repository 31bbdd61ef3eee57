"""Specs in artifacts (channel order, calibrated threshold, reading and rewriting them), and foreign models
imported with `crosscam model import`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.artifacts import detect_artifact, read_spec, write_spec
from models.embedder import load_embedder
from models.errors import ModelFileError
from models.export import min_cosine, random_clips
from models.formats import sha256_file
from models.imported import import_model
from models.parity import compare_embedders
from models.preprocess import preprocess
from models.spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, ModelSpec
from models.zoo import default_embedder
from tests.support.paths import SHARED_DATA


def test_bgr_input_flips_the_planes_in_preprocessing():
    rgb = InputSpec(height=2, width=2, frames=1, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    clips = np.zeros((1, 1, 2, 2, 3), np.uint8)
    clips[..., 0] = 255  # pure red
    x_rgb = preprocess(clips, rgb)
    x_bgr = preprocess(clips, replace(rgb, channels="bgr"))
    np.testing.assert_allclose(x_rgb[0, 0, :, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(x_bgr[0, 0, :, 0, 0], [0.0, 0.0, 1.0])


def test_spec_round_trip_and_version_one_specs_still_load(tiny_checkpoints):
    spec = read_spec(tiny_checkpoints["tiny_avg"])
    calibrated = replace(spec, input=replace(spec.input, channels="bgr"), link_threshold=0.5)
    assert ModelSpec.from_dict(json.loads(json.dumps(calibrated.to_dict()))) == calibrated
    old = spec.to_dict()
    del old["input"]["channels"], old["link_threshold"]
    old["format_version"] = 1
    loaded = ModelSpec.from_dict(old)
    assert loaded.input.channels == "rgb" and loaded.link_threshold is None and loaded == spec


def test_an_unknown_channel_order_is_a_model_file_error(tiny_checkpoints):
    d = read_spec(tiny_checkpoints["tiny_avg"]).to_dict()
    d["input"]["channels"] = "yuv"
    with pytest.raises(ModelFileError, match=r"malformed crosscam model spec.*channels"):
        ModelSpec.from_dict(d, source="m.pt")


def test_a_bgr_checkpoint_feeds_the_same_planes_on_both_torch_paths(tmp_path):
    """The uint8 upload of the CUDA path (run here on the CPU) flips channels as preprocessing does."""
    from models.backends.torch_runtime import TorchEmbedder
    from models.checkpoint import load_checkpoint, save_checkpoint
    from tests.support.models import make_model

    model = make_model("tiny_attention")
    model.input_spec = replace(model.input_spec, channels="bgr")
    save_checkpoint(model, tmp_path / "bgr.pt")
    model, spec = load_checkpoint(tmp_path / "bgr.pt")
    assert spec.input.channels == "bgr"
    embedder = TorchEmbedder(model, spec, device="cpu")
    clips = random_clips(2, 4, 128, 64)
    reference = embedder.embed(clips)[0]
    embedder.on_cuda = True
    np.testing.assert_allclose(embedder.embed(clips)[0], reference, atol=1e-5)
    rgb = TorchEmbedder(model, replace(spec, input=replace(spec.input, channels="rgb")), device="cpu")
    np.testing.assert_allclose(rgb.embed(clips[..., ::-1])[0], reference, atol=1e-5)


@pytest.mark.parametrize("kind", ["checkpoint", "onnx"])
def test_write_spec_stores_a_threshold_in_place(tiny_checkpoints, tiny_onnx, tmp_path, kind):
    source = tiny_checkpoints["tiny_attention"] if kind == "checkpoint" else tiny_onnx["tiny_attention"]
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes())
    spec = read_spec(path)
    calibration = {"dataset": "market1501", "pairs": 1000}
    new = replace(spec, link_threshold=0.55, provenance=spec.provenance | {"calibration": calibration})
    write_spec(path, new)
    assert read_spec(path) == new and not list(tmp_path.glob("*.tmp"))
    from models.embedder import load_embedder

    embedder = load_embedder(path, device="cpu")
    assert embedder.spec.link_threshold == 0.55
    features, _ = embedder.embed(np.zeros((1, 4, 128, 64, 3), np.uint8))
    assert features.shape == (1, spec.feature_dim)


def test_write_spec_refuses_a_spec_of_other_weights(tiny_checkpoints, tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(tiny_checkpoints["tiny_avg"].read_bytes())
    other = read_spec(tiny_checkpoints["tiny_attention"])
    with pytest.raises(ModelFileError, match="describes other weights"):
        write_spec(path, other)


# ---- foreign models -------------------------------------------------------------------------------------------

OMZ_0277 = (
    SHARED_DATA
    / "reid_weights/openvino_omz/person-reidentification-retail-0277/FP16/person-reidentification-retail-0277.xml"
)
BOXMOT = SHARED_DATA / "reid_weights/boxmot/osnet_x0_25_msmt17.onnx"
needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent")
RGB_IMAGENET = InputSpec(height=64, width=32, frames=3, mean=IMAGENET_MEAN, std=IMAGENET_STD, channels="rgb")
OMZ_INPUT = InputSpec(height=256, width=128, frames=4, mean=(0.0,) * 3, std=(1 / 255,) * 3, channels="bgr")


def frame_model(path: Path, height: int = 64, width: int = 32, channels: int = 3, flatten: bool = True) -> Path:
    """A small foreign frame-level ONNX model: conv 3x3 -> ReLU -> global average pool -> ``[N,8]``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(0, 0.2, (8, channels, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
    ]
    out_shape: list = ["batch", 8, 1, 1]
    if flatten:
        nodes.append(helper.make_node("Flatten", ["pooled"], ["embedding"]))
        out_shape = ["batch", 8]
    graph = helper.make_graph(
        nodes,
        "foreign",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", channels, height, width])],
        [helper.make_tensor_value_info("embedding" if flatten else "pooled", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def as_ir(onnx_path: Path) -> Path:
    import openvino as ov

    xml = onnx_path.with_suffix(".xml")
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(xml))
    return xml


@pytest.fixture
def foreign(tmp_path) -> dict[str, Path]:
    onnx_path = frame_model(tmp_path / "frame.onnx")
    return {"onnx": onnx_path, "ir": as_ir(onnx_path)}


def frame_reference(path: Path, clips: np.ndarray, spec: InputSpec, input_name: str) -> np.ndarray:
    """The source model run by onnxruntime frame by frame, its features averaged per clip: ``float[B,D]``."""
    import onnxruntime as ort

    b, t = clips.shape[:2]
    frames = preprocess(clips, spec).reshape(b * t, 3, spec.height, spec.width)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {input_name: frames})[0].reshape(b, t, -1).mean(axis=1)


def test_a_foreign_onnx_becomes_a_tracklet_embedder(foreign, tmp_path):
    out = tmp_path / "imported.onnx"
    spec, cosine = import_model(foreign["onnx"], out, RGB_IMAGENET, licence="MIT", command="crosscam model import ...")
    assert cosine >= 0.9999 and read_spec(out) == spec
    assert spec.input == RGB_IMAGENET and spec.feature_dim == 8 and spec.arch.backbone == "imported"
    assert spec.arch.name == "frame" and spec.link_threshold is None
    digest = hashlib.sha256(foreign["onnx"].read_bytes()).hexdigest()
    assert spec.model_id == digest[:16] and spec.provenance["sha256"] == {"frame.onnx": digest}
    assert spec.provenance["licence"] == "MIT" and spec.provenance["command"] == "crosscam model import ..."
    clips = random_clips(3, 5, 64, 32)  # five frames: any clip length runs
    features, attention = load_embedder(out).embed(clips)
    reference = frame_reference(foreign["onnx"], clips, RGB_IMAGENET, "images")
    assert min_cosine(features, reference) >= 0.9999
    np.testing.assert_allclose(attention, 0.2, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)


def test_a_foreign_ir_imports_as_ir_and_as_onnx_and_both_agree(foreign, tmp_path):
    as_xml, _ = import_model(foreign["ir"], tmp_path / "imported.xml", RGB_IMAGENET)
    as_onnx, _ = import_model(foreign["ir"], tmp_path / "converted.onnx", RGB_IMAGENET, fmt="onnx")
    assert (tmp_path / "imported.bin").is_file() and detect_artifact(tmp_path / "imported.xml").value == "openvino"
    assert as_xml.model_id == as_onnx.model_id == sha256_file(foreign["ir"].with_suffix(".bin"))[:16]
    ir, onnx_file = load_embedder(tmp_path / "imported.xml"), load_embedder(tmp_path / "converted.onnx")
    assert ir.backend == "openvino" and onnx_file.backend == "onnxruntime"
    assert compare_embedders(ir, onnx_file, frames=(1, 3))["min_cosine"] >= 0.9999
    clips = random_clips(2, 3, 64, 32)
    assert min_cosine(ir.embed(clips)[0], frame_reference(foreign["onnx"], clips, RGB_IMAGENET, "images")) >= 0.9999


def test_write_spec_on_an_imported_ir(foreign, tmp_path):
    path = tmp_path / "imported.xml"
    spec, _ = import_model(foreign["ir"], path, RGB_IMAGENET)
    write_spec(path, replace(spec, link_threshold=0.5, provenance=spec.provenance | {"calibration": {"n": 3}}))
    embedder = load_embedder(path)
    assert embedder.spec.link_threshold == 0.5 and embedder.spec.provenance["calibration"] == {"n": 3}
    assert embedder.embed(random_clips(1, 3, 64, 32))[0].shape == (1, 8)


@needs_shared_data
@pytest.mark.parametrize("fmt", ["ir", "onnx"])
def test_intel_omz_0277_imports_and_reproduces_the_ir(tmp_path, fmt):
    import openvino as ov

    out = tmp_path / f"omz.{'xml' if fmt == 'ir' else 'onnx'}"
    spec, _ = import_model(OMZ_0277, out, OMZ_INPUT, fmt=fmt, licence="Apache-2.0")
    assert spec.feature_dim == 256 and spec.input.channels == "bgr" and spec.model_id == "6bb69e09d07733cc"
    assert spec.model_id == read_spec(default_embedder()).model_id  # the bundled model has these weights
    clips = random_clips(2, 4, 256, 128)
    frames = clips.reshape(8, 256, 128, 3)[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)  # BGR, 0..255
    compiled = ov.Core().compile_model(str(OMZ_0277), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    reference = np.concatenate([compiled(f[None])[0] for f in frames]).reshape(2, 4, 256).mean(axis=1)
    for backend in ("openvino",) if fmt == "ir" else ("onnxruntime", "openvino"):
        features, _ = load_embedder(out, backend=backend).embed(clips)
        assert min_cosine(features, reference) >= 0.9999, backend


@needs_shared_data
def test_the_boxmot_onnx_imports_and_runs_alike_on_both_runtimes(tmp_path):
    spec, _ = import_model(BOXMOT, tmp_path / "osnet.onnx", replace(RGB_IMAGENET, height=256, width=128, frames=4))
    assert spec.feature_dim == 512 and spec.model_id == "61b2604171ef9d58"
    ort_embedder = load_embedder(tmp_path / "osnet.onnx")
    assert (
        compare_embedders(ort_embedder, load_embedder(tmp_path / "osnet.onnx", backend="openvino"))["min_cosine"]
        >= 0.9999
    )
    clips = random_clips(2, 4, 256, 128)
    reference = frame_reference(BOXMOT, clips, spec.input, "images")
    assert min_cosine(ort_embedder.embed(clips)[0], reference) >= 0.9999


# ---- bad input --------------------------------------------------------------------------------------------------


def test_a_wrong_input_size_names_the_file_and_both_sizes(foreign, tmp_path):
    for source in foreign.values():
        with pytest.raises(
            ModelFileError, match=r"frame\.(onnx|xml): the model takes 3x64x32 input, --input says 128x64"
        ):
            import_model(source, tmp_path / "x.onnx", replace(RGB_IMAGENET, height=128, width=64))
    assert not (tmp_path / "x.onnx").exists()


@needs_shared_data
def test_a_wrong_input_size_for_intel_omz(tmp_path):
    with pytest.raises(ModelFileError, match=r"0277\.xml: the model takes 3x256x128 input, --input says 128x64"):
        import_model(OMZ_0277, tmp_path / "x.onnx", replace(OMZ_INPUT, height=128, width=64))


def test_a_truncated_ir_is_a_clear_error(foreign, tmp_path):
    bad = tmp_path / "cut.xml"
    bad.write_bytes(foreign["ir"].read_bytes())
    weights = foreign["ir"].with_suffix(".bin").read_bytes()
    bad.with_suffix(".bin").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ModelFileError, match=r"cut\.xml: OpenVINO cannot read .* truncated or corrupt"):
        import_model(bad, tmp_path / "x.onnx", RGB_IMAGENET)
    text = foreign["ir"].read_bytes()
    bad.write_bytes(text[: len(text) // 2])  # an .xml cut short
    with pytest.raises(ModelFileError, match=r"cut\.xml: .*truncated or corrupt"):
        import_model(bad, tmp_path / "x.onnx", RGB_IMAGENET)
    bad.write_bytes(b"\x89 not a model at all")
    with pytest.raises(ModelFileError, match=r"cut\.xml: .*truncated or corrupt"):
        import_model(bad, tmp_path / "x.onnx", RGB_IMAGENET)


@needs_shared_data
def test_a_truncated_omz_bin(tmp_path):
    (tmp_path / "m.xml").write_bytes(OMZ_0277.read_bytes())
    (tmp_path / "m.bin").write_bytes(OMZ_0277.with_suffix(".bin").read_bytes()[:1_000_000])
    with pytest.raises(
        ModelFileError, match=r"m\.xml: OpenVINO cannot read .*Incorrect weights.* truncated or corrupt"
    ):
        import_model(tmp_path / "m.xml", tmp_path / "x.onnx", OMZ_INPUT)


def test_a_missing_bin_names_it(foreign, tmp_path):
    lone = tmp_path / "lone.xml"
    lone.write_bytes(foreign["ir"].read_bytes())
    with pytest.raises(ModelFileError, match=r"lone\.xml: its weights file .*lone\.bin is missing"):
        import_model(lone, tmp_path / "x.onnx", RGB_IMAGENET)


def test_a_foreign_model_without_a_spec_asks_for_an_import(foreign):
    for source in foreign.values():
        for backend in ("auto", "openvino"):
            with pytest.raises(ModelFileError, match=r"frame\.(onnx|xml): has no crosscam spec.*crosscam model import"):
                load_embedder(source, backend=backend)


def test_models_that_are_not_frame_embedders_are_refused(tmp_path):
    gray = frame_model(tmp_path / "gray.onnx", channels=1)
    with pytest.raises(ModelFileError, match=r"gray\.onnx: the model takes 1-channel input"):
        import_model(gray, tmp_path / "x.onnx", RGB_IMAGENET)
    map_output = frame_model(tmp_path / "map.onnx", flatten=False)
    with pytest.raises(ModelFileError, match=r"map\.onnx: the model's output .* is not one feature vector per frame"):
        import_model(map_output, tmp_path / "x.onnx", RGB_IMAGENET)


def test_an_ir_that_does_not_convert_to_onnx_names_the_file_and_the_way_out(tmp_path):
    """An operation without an ONNX conversion, and a convolution padded in a way not converted: the error names
    the IR and says to keep it an IR."""
    import openvino as ov
    from openvino import opset13 as ops

    x = ops.parameter([-1, 3, 64, 32], ov.Type.f32, name="images")
    spatial = ops.constant(np.array([2, 3], np.int64))
    weights = ops.constant(np.random.default_rng(0).normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32))
    same = ops.convolution(x, weights, [1, 1], [0, 0], [0, 0], [1, 1], auto_pad="same_upper")
    outputs = {"sin": ops.sin(ops.reduce_mean(x, spatial, False)), "same": ops.reduce_mean(same, spatial, False)}
    for name, output in outputs.items():
        xml = tmp_path / f"{name}.xml"
        ov.save_model(ov.Model([ops.result(output)], [x], name), str(xml))
        with pytest.raises(ModelFileError, match=rf"{name}\.xml: operation .*; import the model with --format ir"):
            import_model(xml, tmp_path / "x.onnx", RGB_IMAGENET, fmt="onnx")
        import_model(xml, tmp_path / f"{name}_ir.xml", RGB_IMAGENET)  # as an IR it imports


def test_an_imported_model_is_not_imported_again(foreign, tmp_path):
    import_model(foreign["onnx"], tmp_path / "once.onnx", RGB_IMAGENET)
    with pytest.raises(ModelFileError, match="already carries a crosscam spec"):
        import_model(tmp_path / "once.onnx", tmp_path / "twice.onnx", RGB_IMAGENET)
    with pytest.raises(ModelFileError, match="would overwrite the source"):
        import_model(foreign["onnx"], foreign["onnx"], RGB_IMAGENET)
    with pytest.raises(ModelFileError, match=r"end --out in \.xml"):
        import_model(foreign["onnx"], tmp_path / "x.ir", RGB_IMAGENET, fmt="ir")


# ---- the command line -----------------------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, dict, str]:
    from pipeline.cli import main

    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


def test_model_import_and_info_on_the_command_line(capsys, foreign, tmp_path):
    out = tmp_path / "imported.xml"
    argv = ["model", "import", str(foreign["ir"]), "--input", "64x32", "--channels", "rgb", "--mean", "0.5,0.5,0.5"]
    code, data, _ = run_cli(
        capsys, *argv, "--std", "0.25,0.25,0.25", "--frames", "6", "--format", "ir", "--out", str(out)
    )
    assert code == 0 and data["kind"] == "openvino" and data["feature_dim"] == 8 and data["min_cosine"] >= 0.9999
    assert data["input"] == {
        "height": 64,
        "width": 32,
        "frames": 6,
        "channels": "rgb",
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
    }
    code, info, _ = run_cli(capsys, "model", "info", str(out))
    assert code == 0 and info["kind"] == "openvino" and info["link_threshold"] is None
    assert info["spec"]["provenance"]["command"].startswith(f"crosscam model import {foreign['ir']} --input 64x32")


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--input", "256"], "--input '256': give height x width"),
        (["--mean", "0.5,0.5,0.5"], "give --std R,G,B too"),
        (["--mean", "imagenet", "--std", "0.2,0.2,0.2"], "--std goes with --mean R,G,B"),
        (["--mean", "123.7,116.3,103.5", "--std", "58,57,57"], "divide 0..255 values by 255"),
        (["--frames", "0"], "--frames must be positive"),
    ],
)
def test_model_import_usage_errors_exit_2(capsys, foreign, tmp_path, flags, message):
    base = {"--input": "64x32", "--channels": "rgb", "--mean": "imagenet", "--out": str(tmp_path / "x.onnx")}
    argv = ["model", "import", str(foreign["onnx"])]
    for flag, value in base.items():
        if flag not in flags:
            argv += [flag, value]
    code, data, err = run_cli(capsys, *argv, *flags)
    assert code == 2 and message in data["error"] and "Traceback" not in err


def test_model_import_of_a_missing_zoo_file_says_where_to_fetch_it(capsys, tmp_path):
    argv = ["model", "import", str(tmp_path / "osnet_x0_25_msmt17.onnx"), "--input", "256x128", "--channels", "rgb"]
    code, data, _ = run_cli(capsys, *argv, "--mean", "imagenet", "--out", str(tmp_path / "x.onnx"))
    assert code == 2 and "osnet_x0_25_msmt17.onnx: not found" in data["error"]
    assert "https://github.com/mikel-brostrom/boxmot" in data["error"]


def test_model_list_shows_architectures_and_real_models(capsys):
    from models.architectures import ARCHITECTURES

    code, data, _ = run_cli(capsys, "model", "list")
    assert code == 0 and [a["name"] for a in data["architectures"]] == list(ARCHITECTURES)
    real = {m["source"]: m for m in data["real_models"]}
    assert set(real) == {"bundled", "intel-omz", "torchreid", "boxmot", "training"}
    assert real["bundled"]["offline"] and Path(real["bundled"]["path"]) == default_embedder()
    assert not any(m["offline"] for m in data["real_models"] if m["source"] != "bundled")
    omz = [m for m in data["real_models"] if m["source"] == "intel-omz"]
    assert "omz_downloader --name person-reidentification-retail-0277" in omz[0]["how"][0]
    assert "crosscam model import" in omz[0]["how"][1] and omz[0]["urls"][0].endswith("0277.xml")
    assert any("--pretrained osnet_x0_25_msmt17.pth" in step for step in real["torchreid"]["how"])
    assert any("crosscam train market_osnet_ta" in step for step in real["training"]["how"])


# ---- the bundled default ----------------------------------------------------------------------------------------


def walking(pid: int, phases: tuple[float, ...], height: int = 256, width: int = 128) -> np.ndarray:
    """A rendered person walking past on a grey background: ``uint8[T,H,W,3]`` RGB."""
    from synth.people import appearance, render_person

    frames = []
    for phase in phases:
        person, mask = render_person(appearance(pid), phase, height, width)
        frame = np.full((height, width, 3), 118, np.uint8)
        frame[mask > 0] = person[mask > 0]
        frames.append(frame)
    return np.stack(frames)


def test_the_bundled_default_embeds_people_into_unit_vectors():
    path = default_embedder()
    assert path.parent.name == "bundled" and (path.parent / "NOTICE.md").is_file()
    assert "Apache License" in (path.parent / "LICENSE-Apache-2.0.txt").read_text()
    embedder = load_embedder(path)
    spec = embedder.spec
    assert embedder.backend == "onnxruntime" and spec.feature_dim == 256 and spec.input.channels == "bgr"
    assert (spec.input.height, spec.input.width, spec.input.frames) == (256, 128, 4)
    assert 0 < spec.link_threshold < 1 and spec.provenance["calibration"]["dataset"] == "market1501"  # calibrated
    assert spec.provenance["licence"].startswith("Apache-2.0") and "Intel" in spec.provenance["licence"]
    clips = np.stack(
        [walking(0, (0.0, 0.8, 1.6, 2.4)), walking(0, (3.2, 4.0, 4.8, 5.6)), walking(1, (0.0, 0.8, 1.6, 2.4))]
    )
    features, attention = embedder.embed(clips)
    assert features.shape == (3, 256) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(attention, 0.25, atol=1e-6)
    same, other = float(features[0] @ features[1]), float(features[0] @ features[2])
    assert same > other + 0.3  # measured: 0.93 against 0.40
    small, _ = embedder.embed(clips[:, :, ::2, ::2])  # crops at half size are resized in preprocessing
    assert (small * features).sum(axis=1).min() > 0.9
