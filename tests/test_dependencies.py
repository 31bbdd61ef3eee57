"""The dependency floors crosscam's security relies on (docs/security.md, "Dependencies"), read from
pyproject.toml: no admitted release lacks the fix, the compromised Ultralytics releases are excluded, and the
installed set satisfies every requirement."""

from __future__ import annotations

import importlib.metadata
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.support.paths import REPO

SECURITY_FLOORS = {
    "torch": "2.10",  # torch.load(weights_only=True): CVE-2025-32434, CVE-2026-24747
    "starlette": "1.3.1",  # multipart and form limits: CVE-2024-47874, CVE-2025-54121, CVE-2026-54283
    "python-multipart": "0.0.30",  # CVE-2024-53981, CVE-2026-40347, CVE-2026-42561, CVE-2026-53538, CVE-2026-53539
    "pillow": "12.2",  # untrusted uploads decoded: CVE-2024-28219, CVE-2026-42308
    "h11": "0.16",  # CVE-2025-43859
}
COMPROMISED = {"ultralytics": ["8.3.41", "8.3.42", "8.3.45", "8.3.46"]}


def requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {(r := Requirement(line)).name.lower(): r for line in project["dependencies"]}


@pytest.mark.parametrize(("name", "floor"), SECURITY_FLOORS.items())
def test_no_admitted_release_lacks_a_security_fix(name, floor):
    requirement = requirements()[name]
    assert not requirement.specifier.contains(_below(floor), prereleases=True)
    assert requirement.specifier.contains(floor, prereleases=True)


def _below(version: str) -> str:
    """A release just below ``version`` (its last component lowered, or a .999 release of the one before)."""
    parts = [int(p) for p in version.split(".")]
    for i in reversed(range(len(parts))):
        if parts[i] > 0:
            parts[i] -= 1
            return ".".join(map(str, parts[: i + 1])) + ".999"
    raise ValueError(version)


@pytest.mark.parametrize(("name", "versions"), COMPROMISED.items())
def test_compromised_releases_are_excluded(name, versions):
    requirement = requirements()[name]
    assert not [v for v in versions if requirement.specifier.contains(v)]


def test_the_installed_set_satisfies_the_requirements():
    short = []
    for name, requirement in requirements().items():
        if requirement.marker and not requirement.marker.evaluate():
            continue
        installed = importlib.metadata.version(name)
        if not requirement.specifier.contains(installed, prereleases=True):
            short.append(f"{name} {installed} (needs {requirement.specifier})")
    assert not short, f"installed below pyproject.toml: {short}; run pip install -e ."
