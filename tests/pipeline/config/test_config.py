"""Configuration: defaults, YAML, --set overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from crosscam.errors import ConfigError
from pipeline.config import load_config


def test_defaults():
    config = load_config()
    assert (
        config.embedder.backend == "auto" and config.embedder.max_batch is None
    )  # by device: 8 on the CPU, 32 on CUDA
    assert config.export.min_cosine == 0.9999


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text("embedder:\n  device: cpu\n  max_batch: 8\nexport:\n  opset: 19\n")
    config = load_config(path, ["embedder.max_batch=16", "export.verify_batches=[2, 5]", "embedder.fp16=false"])
    assert config.embedder.device == "cpu"
    assert config.embedder.max_batch == 16  # --set wins over the file
    assert config.export.opset == 19 and config.export.verify_batches == (2, 5)
    assert config.embedder.fp16 is False


@pytest.mark.parametrize(
    "yaml_text,message",
    [
        ("embedder:\n  devise: cpu\n", r"embedder\.devise: unknown key"),
        ("embeder:\n  device: cpu\n", r"embeder: unknown key"),
        ("embedder:\n  device: gpu0\n", r"embedder\.device: String should match pattern"),
        ("embedder:\n  max_batch: 0\n", r"embedder\.max_batch: Input should be greater than or equal to 1"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("embedder: [unclosed\n", "not valid YAML"),
        ("detector:\n  gate_refresh: 1.5\n", r"detector\.gate_refresh \(1\.5 s\) must be below tracklets\.lost_after"),
    ],
)
def test_bad_files_name_the_key_and_the_file(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert "bad.yaml" in str(err.value)


@pytest.mark.parametrize(
    "override,message",
    [
        ("embedder.bakend=torch", r"embedder\.bakend: unknown key"),
        ("embedder", "expected KEY=VALUE"),
        ("embedder..device=cpu", "expected KEY=VALUE"),
        ("embedder.device.x=1", r"embedder\.device: Input should be a valid string"),
        ("embedder.backend=coreml", r"embedder\.backend: Input should be 'auto'"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")
