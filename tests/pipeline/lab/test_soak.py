"""The soak (``crosscam bench soak``): its fault plan and memory figures, and a short real run."""

from __future__ import annotations

import pytest

from pipeline.lab.soak import CHAOS, Child, SoakOptions, memory_report, plan_faults, run_soak, slope_mb_per_min
from tests.support.cli import run_json
from tests.support.rtsp import require_server


def test_the_fault_plan_is_seeded_and_stays_inside_the_run():
    plan = plan_faults(10, CHAOS, seed=3, cameras=2)
    assert plan == plan_faults(10, CHAOS, seed=3, cameras=2) != plan_faults(10, CHAOS, seed=4, cameras=2)
    assert [f.at for f in plan] == sorted(f.at for f in plan)
    assert all(15 <= f.at <= 585 and 0 <= f.down <= 5 and f.target in (0, 1) for f in plan)
    assert {f.kind for f in plan} == set(CHAOS)
    short = plan_faults(0.5, ("rtsp",), seed=0, cameras=1)  # at least one of each kind, even in a short run
    assert len(short) == 1 and 0 < short[0].at < 30


def test_memory_is_judged_on_the_longest_instance_after_its_warm_up(tmp_path):
    assert slope_mb_per_min([(0, 100), (60, 101), (120, 102)]) == pytest.approx(1.0)
    child = Child("matcher", [], tmp_path / "log")
    child.instances = [
        {"pid": 1, "start": 0, "samples": [(t, 50 + t) for t in range(0, 30, 5)]},  # killed early
        {"pid": 2, "start": 30, "samples": [(t, 300 if t < 90 else 200 + t / 60) for t in range(30, 400, 5)]},
    ]
    r = memory_report(child, warmup=60, judge_after=120, max_slope=2.0)
    assert r["instances"] == 2 and r["max_mb"] == 300 and r["flat"] is True
    assert r["slope_mb_per_min"] == pytest.approx(1.0, abs=0.5)  # the loading spike is before the warm-up ends
    growing = Child("worker", [], tmp_path / "log2")
    growing.instances = [{"pid": 3, "start": 0, "samples": [(t, 100 + t / 10) for t in range(0, 400, 5)]}]
    assert memory_report(growing, 60, 120, 2.0)["flat"] is False  # 6 MB/min
    brief = Child("worker", [], tmp_path / "log3")
    brief.instances = [{"pid": 4, "start": 0, "samples": [(t, 100 + t) for t in range(0, 90, 5)]}]
    assert memory_report(brief, 60, 120, 2.0)["flat"] is None  # too short to judge


def test_unknown_faults_are_a_usage_error(capsys):
    code, data, _ = run_json(capsys, "bench", "soak", "--chaos", "matcher,disk")
    assert code == 2 and "--chaos 'matcher,disk'" in data["error"] and "rtsp" in data["error"]


@pytest.mark.slow
def test_a_short_soak_with_every_fault_passes(tiny_checkpoints, tmp_path):
    """A real site (redis-server, RTSP server, worker and matcher processes) for 45 s while the matcher is
    killed, the RTSP server restarted, Redis killed and restarted from its AOF, and the worker killed and
    started again: every published tracklet ends in exactly one sighting."""
    require_server()
    chaos = ("matcher", "redis", "rtsp", "worker")
    options = SoakOptions(minutes=0.75, seed=1, chaos=chaos, cameras=1, keep=tmp_path / "soak")
    r = run_soak(options, tiny_checkpoints["tiny_attention"])
    assert r["passed"], r
    assert sorted({e["kind"] for e in r["faults"]}) == sorted(chaos)
    t = r["tracklets"]
    assert t["published"] > 0 and t["sightings"] == t["counted_in_persons"] == t["published"]
    assert not r["failures"]  # no process exited on its own
