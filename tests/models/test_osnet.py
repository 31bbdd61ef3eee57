"""OSNet: frame features equal torchreid's reference implementation; model-zoo files load; bad files are
clear errors; every temporal head runs on it; the ONNX export agrees with PyTorch."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
import torch

from models.architectures import arch_spec
from models.backbone_base import WeightsUnavailableError
from models.checkpoint import build_model
from models.errors import ModelFileError
from models.export import random_clips
from models.osnet import OSNET_WIDTHS, OSNetBackbone
from models.preprocess import preprocess
from models.spec import InputSpec
from tests.support.models import assert_onnx_parity, make_model, randomize_batchnorm
from tests.support.paths import SHARED_DATA
from tests.support.torchreid import torchreid_module

MSMT17 = SHARED_DATA / "reid_weights" / "torchreid" / "osnet_x0_25_msmt17.pth"
HEADS = ("attention", "avg", "gru_rank")


def reference_osnet() -> ModuleType:
    """deep-person-reid's own osnet.py."""
    return torchreid_module("reid/models/osnet.py")


def image_batch(n: int = 6, seed: int = 0) -> torch.Tensor:
    """``float[n,3,256,128]`` image-like frames, normalised as the architectures' input spec says."""
    clips = random_clips(1, n, 256, 128, seed=seed)
    return torch.from_numpy(preprocess(clips, InputSpec())[0])


def random_reference(name: str, seed: int = 0) -> torch.nn.Module:
    """torchreid's OSNet at width ``name`` with random weights and trained-looking BatchNorm statistics."""
    torch.manual_seed(seed)
    ref = getattr(reference_osnet(), name)(num_classes=7, pretrained=False)
    randomize_batchnorm(ref, seed, bias=True)
    return ref.eval()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).min())


def frame_features(backbone: OSNetBackbone, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return backbone.eval().frame_vectors(backbone.eval()(x))


@pytest.mark.parametrize("name", list(OSNET_WIDTHS))
def test_frame_features_equal_the_reference_implementation(name, tmp_path):
    """Random weights copied from torchreid's OSNet through a file (its classifier dropped on the way)."""
    ref = random_reference(name)
    torch.save(ref.state_dict(), tmp_path / f"{name}.pth")
    ours = OSNetBackbone(name)
    ours.load_pretrained(str(tmp_path / f"{name}.pth"))
    x = image_batch()
    with torch.no_grad():
        expected = ref(x)
    got = frame_features(ours, x)
    assert got.shape == expected.shape == (6, 512)
    assert cosine(got, expected) >= 0.9999
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not SHARED_DATA.exists(), reason=f"needs the shared data folder {SHARED_DATA}")
def test_msmt17_model_zoo_file_gives_torchreids_feature():
    """The real MSMT17 OSNet-x0.25: crosscam's frame feature is torchreid's eval-mode feature, and an
    ``osnet_x0_25_avg`` model built from the file embeds a one-frame clip as that feature (up to scale)."""
    ref = reference_osnet().osnet_x0_25(num_classes=1041, pretrained=False)
    ref.load_state_dict(torch.load(MSMT17, map_location="cpu", weights_only=True))
    ref.eval()
    arch, input_spec = arch_spec("osnet_x0_25_avg")
    model = build_model(arch, input_spec, pretrained=str(MSMT17)).eval()
    x = image_batch(seed=3)
    with torch.no_grad():
        expected = ref(x)
        clip_features = model(x.unsqueeze(1)).feature  # six one-frame clips
    assert cosine(frame_features(model.backbone, x), expected) >= 0.9999
    assert cosine(clip_features, expected) >= 0.9999
    assert model.arch.feature_dim == 512


def test_the_torch_embedder_gives_the_reference_feature(tmp_path):
    """The CPU runtime (backbone channels_last) embeds one-frame clips as torchreid's feature of the frame."""
    from models.backends.torch_runtime import TorchEmbedder
    from models.checkpoint import model_spec

    ref = random_reference("osnet_x0_25", seed=2)
    torch.save(ref.state_dict(), tmp_path / "osnet_x0_25.pth")
    arch, input_spec = arch_spec("osnet_x0_25_avg")
    model = build_model(arch, input_spec, pretrained=str(tmp_path / "osnet_x0_25.pth"))
    embedder = TorchEmbedder(model, model_spec(model), device="cpu")
    clips = random_clips(6, 1, 256, 128, seed=4)
    features, _ = embedder.embed(clips)
    with torch.no_grad():
        expected = ref(torch.from_numpy(preprocess(clips, InputSpec())[:, 0]))
    assert cosine(torch.from_numpy(features), expected) >= 0.9999


def test_another_widths_weights_are_refused_with_the_mismatch(tmp_path):
    path = tmp_path / "osnet_x1_0.pth"
    torch.save(OSNetBackbone("osnet_x1_0").state_dict(), path)
    arch, input_spec = arch_spec("osnet_x0_25_attention")
    with pytest.raises(ModelFileError) as e:
        build_model(arch, input_spec, pretrained=str(path))
    message = str(e.value)
    assert message.startswith(f"{path}: weights for another architecture")
    assert "conv1.conv.weight has shape [64,3,7,7], osnet_x0_25 expects [16,3,7,7]" in message
    assert "osnet_x1_0" in message  # what the file's shapes say it is


def test_a_resnet_state_dict_is_refused(tmp_path):
    import torchvision

    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    with pytest.raises(ModelFileError, match=r"resnet50\.pth: weights for another architecture: missing conv1\.conv"):
        OSNetBackbone("osnet_x0_25").load_pretrained(str(path))


def test_a_truncated_file_is_refused(tmp_path):
    path = tmp_path / "osnet.pth"
    torch.save(OSNetBackbone("osnet_x0_25").state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match=r"osnet\.pth: cannot read as a PyTorch state dict.*download it again"):
        OSNetBackbone("osnet_x0_25").load_pretrained(str(path))


def test_a_training_checkpoint_with_a_module_prefix_loads(tmp_path):
    """torchreid's trainer saves ``{'state_dict': ..., 'epoch': ...}``, DataParallel adds ``module.``."""
    ref = random_reference("osnet_x0_25", seed=1)
    state = {f"module.{k}": v for k, v in ref.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 250}, tmp_path / "model.pth.tar-250")
    ours = OSNetBackbone("osnet_x0_25")
    ours.load_pretrained(str(tmp_path / "model.pth.tar-250"))
    x = image_batch(2)
    with torch.no_grad():
        assert cosine(frame_features(ours, x), ref(x)) >= 0.9999


def imagenet_like_state(seed: int = 3) -> dict[str, torch.Tensor]:
    """A torchreid OSNet-x0.25 state dict as an ImageNet classification file may hold it: no ``fc.*``, a
    1000-class classifier on conv5's 128 channels."""
    state = {
        k: v for k, v in random_reference("osnet_x0_25", seed=seed).state_dict().items() if not k.startswith("fc.")
    }
    state["classifier.weight"], state["classifier.bias"] = torch.randn(1000, 128), torch.zeros(1000)
    return state


def test_a_file_without_fc_loads_the_trunk_and_keeps_a_fresh_fc(tmp_path, caplog):
    state = imagenet_like_state()
    torch.save(state, tmp_path / "osnet_x0_25_imagenet.pth")
    ours = OSNetBackbone("osnet_x0_25")
    fresh_fc = {k: v.clone() for k, v in ours.fc.state_dict().items()}
    with caplog.at_level("WARNING", logger="models.osnet"):
        ours.load_pretrained(str(tmp_path / "osnet_x0_25_imagenet.pth"))
    x = image_batch(2)
    with torch.no_grad():
        expected = random_reference("osnet_x0_25", seed=3)(x, return_featuremaps=True)  # conv5 maps
        torch.testing.assert_close(ours.eval()(x), expected, rtol=1e-4, atol=1e-5)
    for k, v in ours.fc.state_dict().items():
        torch.testing.assert_close(v, fresh_fc[k])
    assert "osnet_x0_25_imagenet.pth: has no fc.* weights" in caplog.text and "fresh initialisation" in caplog.text


def test_a_file_without_fc_and_another_layer_is_refused(tmp_path):
    state = imagenet_like_state()
    del state["conv5.conv.weight"]
    torch.save(state, tmp_path / "no_conv5.pth")
    with pytest.raises(ModelFileError, match=r"no_conv5\.pth: weights for another architecture: missing conv5\.conv"):
        OSNetBackbone("osnet_x0_25").load_pretrained(str(tmp_path / "no_conv5.pth"))


def test_a_file_with_part_of_fc_is_refused(tmp_path):
    state = random_reference("osnet_x0_25").state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("fc.1.")}  # the Linear kept, its BatchNorm not
    torch.save(state, tmp_path / "half_fc.pth")
    with pytest.raises(ModelFileError, match=r"half_fc\.pth: weights for another architecture: missing fc\.1\."):
        OSNetBackbone("osnet_x0_25").load_pretrained(str(tmp_path / "half_fc.pth"))


def test_imagenet_names_torchreids_file_to_fetch():
    arch, input_spec = arch_spec("osnet_x0_5_avg")
    with pytest.raises(WeightsUnavailableError, match=r"osnet_x0_5_imagenet\.pth from https://drive\.google\.com"):
        build_model(arch, input_spec, pretrained="imagenet")


def test_osnet_has_no_last_stride_two():
    with pytest.raises(ModelFileError, match="last_stride 1"):
        OSNetBackbone("osnet_x0_25", last_stride=2)


@pytest.mark.parametrize("head", HEADS)
def test_every_head_runs_on_osnet(head):
    model = make_model(f"osnet_x0_25_{head}", num_classes=5)
    x = image_batch(6).reshape(2, 3, 3, 256, 128)
    with torch.no_grad():
        out = model(x)
    assert out.feature.shape == (2, model.arch.feature_dim) and out.attention.shape == (2, 3)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(2))
    assert model.arch.feature_dim == 512
    out = model.train()(torch.cat([x, x]))
    assert out.logits.shape == (4, 5) and out.feature.shape == (4, 512)
    if head == "gru_rank":
        assert out.intermediate.shape == (4, 3, 512)


def test_attention_scores_conv5_maps_and_pools_fc_vectors():
    model = make_model("osnet_x0_25_attention")
    assert model.head.spatial.weight.shape == (256, 128, 16, 8)  # scored on the 128-channel 16x8 conv5 map
    x = image_batch(4).reshape(1, 4, 3, 256, 128)
    with torch.no_grad():
        model.head.temporal.bias.fill_(5.0)  # keep every frame's score above the ReLU's zero
        out = model(x)
        vectors = model.backbone.frame_vectors(model.backbone(x[0]))
        pooled = (out.attention[0, :, None] * vectors).sum(0, keepdim=True)
    torch.testing.assert_close(out.feature, model.neck.bn(pooled), rtol=1e-4, atol=1e-5)
    assert float(out.attention.max() - out.attention.min()) > 1e-3


@pytest.mark.slow
def test_onnx_export_agrees_with_torch(tmp_path):
    from models.backends.torch_runtime import TorchEmbedder
    from models.checkpoint import model_spec

    model = make_model("osnet_x0_25_attention")
    assert_onnx_parity(model, tmp_path / "osnet.onnx")
    reference = TorchEmbedder(model, model_spec(model), device="cpu", fp16=False)
    features, _ = reference.embed(random_clips(2, 4, 256, 128, seed=5))
    assert np.isfinite(features).all()


def test_a_missing_known_weights_file_says_where_to_fetch_it(tmp_path):
    """``model init --pretrained`` with a zoo file that is not here names the model and how to get it."""
    from models.backbone_base import read_state_dict
    from models.errors import ModelFileError

    with pytest.raises(ModelFileError, match=r"osnet_x0_25_msmt17.*crosscam model list"):
        read_state_dict(tmp_path / "osnet_x0_25_msmt17.pth")
    with pytest.raises(ModelFileError, match="pre-trained weights file not found"):
        read_state_dict(tmp_path / "mine.pth")
