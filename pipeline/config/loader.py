"""Loading the configuration: YAML file, then ``--set a.b=value`` overrides, then validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crosscam.errors import ConfigError
from crosscam.yaml_config import read_yaml, validated
from pipeline.config.schema import CrosscamConfig


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> CrosscamConfig:
    """Read ``path`` (YAML; none: the defaults), apply ``overrides``, validate. Errors name the key."""
    data: dict[str, Any] = {}
    source = "the defaults"
    if path is not None:
        source = str(path)
        if not Path(path).is_file():
            raise ConfigError(f"{path}: config file not found; pass an existing YAML file to --config")
        data = read_yaml(Path(path))
    if overrides:
        source += " with --set " + " ".join(overrides)
    return validated(CrosscamConfig, data, overrides, source)
