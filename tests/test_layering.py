"""The layering the architecture page promises (docs/architecture.md), checked on the source.

- No import cycle between crosscam's modules, counting imports inside functions too.
- The matcher's rules, gallery and linker import no Redis module.
- One composition root: only ``pipeline/site.py`` builds the parts of a running site.
- Lower packages never import higher ones: ``crosscam`` only itself, ``models`` and ``trainer`` nothing of
  ``pipeline``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGES = ("crosscam", "models", "pipeline", "trainer", "synth")


@cache
def modules() -> dict[str, Path]:
    """Every first-party module by dotted name (a package by its own name)."""
    out = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _resolve(name: str) -> str | None:
    """The first-party module ``name`` refers to (an imported attribute resolves to its module)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """First-party modules ``module`` imports anywhere in its source (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(modules()[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES and (resolved := _resolve(target)) and resolved != module:
                found.add(resolved)
                break  # the attribute's module, else the module itself
    return found


def cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module in the import graph (Tarjan)."""
    graph = {m: imports_of(m) for m in modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                found.append(sorted([v, *group]))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles() == []


def test_the_cycle_finder_finds_a_cycle(monkeypatch):
    """The check above means something: a module importing its importer is reported."""
    graph = {"a": {"b"}, "b": {"a"}, "c": set()}
    monkeypatch.setattr(sys.modules[__name__], "modules", lambda: dict.fromkeys(graph, Path()))
    monkeypatch.setattr(sys.modules[__name__], "imports_of", lambda m: graph[m])
    assert cycles() == [["a", "b"]]


@pytest.mark.parametrize("module", ["pipeline.matcher.rules", "pipeline.matcher.gallery", "pipeline.matcher.linker"])
def test_the_matching_rules_import_no_redis(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"{module} pulls in {out.stdout.strip()}"


# The parts of a running site, and the one module that builds them from configuration.
SITE_PARTS = ("EmbeddingService", "Publisher", "CameraStages", "CameraWorker", "Matcher", "announce_model", "connect")
COMPOSITION_ROOT = "pipeline.site"


def constructions(module: str) -> set[str]:
    """The site parts ``module`` calls by name."""
    calls = set()
    for node in ast.walk(ast.parse(modules()[module].read_text())):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in SITE_PARTS:
                calls.add(name)
    return calls


def test_only_the_composition_root_wires_a_site():
    wiring = {
        m: constructions(m)
        for m in modules()
        if m.startswith("pipeline.") and m != COMPOSITION_ROOT and constructions(m)
    }
    # a part's own module may build another of its kind (scratch_redis connects; the package re-exports)
    allowed = {"pipeline.bus.connect": {"connect"}}
    assert {m: c for m, c in wiring.items() if c - allowed.get(m, set())} == {}
    assert {"EmbeddingService", "Publisher", "CameraWorker", "Matcher", "connect"} <= constructions(COMPOSITION_ROOT)


def test_lower_packages_do_not_import_higher_ones():
    allowed = {
        "crosscam": {"crosscam"},
        "models": {"crosscam", "models"},
        "trainer": {"crosscam", "models", "trainer", "synth"},
    }
    leaks = {
        m: sorted(t for t in imports_of(m) if t.split(".")[0] not in allowed[m.split(".")[0]])
        for m in modules()
        if m.split(".")[0] in allowed
    }
    assert {m: t for m, t in leaks.items() if t} == {}


def test_no_cli_verb_imports_another():
    shared = {
        "pipeline.cli",
        "pipeline.cli.app",
        "pipeline.cli.progress",
        "pipeline.cli.common",
        "pipeline.cli.stopping",
    }
    verbs = [m for m in modules() if m.startswith("pipeline.cli.") and m not in shared]
    crossing = {m: sorted(t for t in imports_of(m) if t in verbs) for m in verbs}
    assert {m: t for m, t in crossing.items() if t} == {}
