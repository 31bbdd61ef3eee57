"""YAML files with ``--set a.b=value`` overrides, validated by a pydantic model: the site configuration
(``pipeline.config``) and training recipes (``trainer.recipe``) are read this way. Errors name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from crosscam.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> ``(["a", "b"], value)``; the value is parsed as YAML (``1``, ``true``, ``[1, 2]``)."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. --set embedder.device=cpu")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({yaml_problem(e)})") from None
    return [p.strip() for p in parts], value


def apply_override(data: dict[str, Any], path: list[str], value: Any, text: str) -> None:
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {text!r}: {'.'.join(path[: i + 1])} is a value, not a section")
        node = child
    node[path[-1]] = value


def describe_error(error: ValidationError, source: str) -> str:
    """One line per invalid key, naming the key (``a.b.c``) and what is wrong with it."""
    lines = []
    for e in error.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key; see `crosscam config show` for the valid keys")
        else:
            lines.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
    return f"invalid configuration in {source}:\n  " + "\n  ".join(lines)


def yaml_problem(error: yaml.YAMLError) -> str:
    """What is wrong, in one line, where the YAML error says: ``line 4, column 4: expected <block end>, but
    found '<block mapping start>' (while parsing a block collection at line 3, column 3)``."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return " ".join(str(error).split())
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = " ".join((error.problem or "invalid YAML").split())
    if error.context:
        context = " ".join(error.context.split())
        cm = error.context_mark
        if cm is not None and (mark is None or (cm.line, cm.column) != (mark.line, mark.column)):
            context += f" at line {cm.line + 1}, column {cm.column + 1}"
        problem += f" ({context})"
    return where + problem


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (an empty file gives ``{}``). Errors are one line naming the
    file, the line and column, and what is wrong."""
    try:
        loaded = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(e)}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(loaded).__name__}")
    return loaded or {}


def validated(model: type[M], data: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str) -> M:
    """``data`` with ``overrides`` applied, validated as ``model``; errors name ``source`` and the key."""
    for text in overrides:
        apply_override(data, *parse_override(text), text)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(describe_error(e, source)) from None
