"""A pytest plugin that fails the run when it leaves a redis-server behind.

Every temporary file of the run goes under the run's base temporary folder (``TMPDIR`` points there, for the
tests and every process they start), so the redis-servers the run starts are recognisable: their data folder
(their working directory) or socket lies under that folder, or the test process is their parent. Servers of
other runs and other users on the machine are left alone. After every fixture has been torn down, such
servers still alive are stopped, listed (pid, data folder: it names the test) and the run fails. A leaked
server is a fixture that does not clean up; a warning would scroll by unread while servers pile up over
runs, so the run fails, and it never leaves them running.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.support.redis_servers import run_servers, stop

_basetemp = pytest.StashKey[Path]()


@pytest.hookimpl(trylast=True)  # after the tmp_path plugin has set up its factory
def pytest_configure(config: pytest.Config) -> None:
    factory = getattr(config, "_tmp_path_factory", None)  # absent under -p no:tmpdir
    if factory is None:
        return
    base = factory.getbasetemp()  # the run's own numbered folder (or --basetemp)
    tmp = base / "tmp"
    tmp.mkdir(exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = None  # computed again from TMPDIR
    config.stash[_basetemp] = base


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    result = yield  # the runner's own hook tears the remaining fixtures down first
    if not Path("/proc").is_dir():
        return result
    base = session.config.stash.get(_basetemp, None)
    if base is None:
        return result
    leaked = run_servers(base, os.getpid())
    if leaked:
        stop([p.pid for p in leaked])
        lines = [
            f"{len(leaked)} redis-server process(es) started by this test run were still running after every "
            "fixture was torn down (now stopped); stop each server in the fixture or test that starts it:"
        ] + [f"  pid {p.pid}, data folder {p.cwd}: {p.cmdline}" for p in leaked]
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "leaked redis-server processes", red=True, bold=True)
            reporter.write_line("\n".join(lines))
        else:
            print("\n".join(lines))
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return result
