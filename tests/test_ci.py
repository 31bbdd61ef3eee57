"""``.ci/skipped``, which ends a CI run with the number of skipped tests, on the output of a real pytest run."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import REPO

TESTS = """
import pytest

def test_runs():
    assert True

@pytest.mark.parametrize("n", [1, 2])
def test_needs_data(n):
    pytest.skip("/somewhere/shared/data is absent (a fresh clone without the shared data)")

def test_needs_a_gpu():
    pytest.skip("no CUDA GPU visible to torch")
"""


def test_the_skipped_count_ends_the_run(tmp_path):
    (tmp_path / "test_sample.py").write_text(TESTS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout
    line = subprocess.run([REPO / ".ci" / "skipped"], input=run.stdout, capture_output=True, text=True, check=True)
    assert line.stdout == 'ci: 3 tests skipped (2 of them need ../shared/data: README.md, "Tests on real data")\n'


def test_a_run_without_skips_says_zero():
    line = subprocess.run(
        [REPO / ".ci" / "skipped"], input="==== 5 passed in 0.1s ====\n", capture_output=True, text=True, check=True
    )
    assert line.stdout.startswith("ci: 0 tests skipped (0 of them")
