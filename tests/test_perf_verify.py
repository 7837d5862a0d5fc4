"""The recording policy and ``python -m benchmark.perf --verify`` (benchmark/perf/policy.py, verify.py)."""

import csv
import json
import math
import os
import subprocess
import sys
import time

import pytest

from benchmark.perf import bench, policy, sections, verify
from benchmark.perf.sections import Section


def test_policy_load_state_ratio_stats_and_bounds():
    assert policy.load_limit(2) == pytest.approx(1.5)
    assert policy.load_state(1.2, 1.5, 0.1, 0.2) == "quiet" and policy.load_state(1.2, 1.5, None, 0.2) == "quiet"
    assert policy.load_state(0.4, 1.5, 0.21, 0.2) == "loaded" and policy.load_state(2.0, 1.5, 0.0, 0.2) == "loaded"
    assert policy.ratio_stats("r", [3.0, 1.0, 2.0, math.nan]) == {"r": 2.0, "r_min": 1.0, "r_max": 3.0}
    assert math.isnan(policy.ratio_stats("r", [])["r"])
    assert policy.verify_bounds(2.0, 3.0, 0.25) == (pytest.approx(1.6), pytest.approx(3.75))


def _engine_row(stride, value, lo=None, hi=None, **extra):
    row = {"model": "vgg16", "stride": str(stride), "plain_vs_captum": "", "incremental_vs_captum": "",
           "incremental_vs_plain": str(value)}
    if lo is not None:
        row.update(incremental_vs_plain_min=str(lo), incremental_vs_plain_max=str(hi))
    return {**row, **extra}


def test_compare_widens_the_recorded_range_by_the_tolerance():
    recorded = [_engine_row(14, 5.0, 4.0, 6.0), _engine_row(8, 5.0)]  # stride 8: no range kept -> [5, 5]
    fresh = [_engine_row(14, 7.4), _engine_row(8, 3.9)]
    out = {r["row"]: r for r in verify.compare("engines", recorded, fresh, 0.25)}
    assert out["vgg16 14"]["inside"] and out["vgg16 14"]["high"] == pytest.approx(7.5)
    assert not out["vgg16 8"]["inside"] and out["vgg16 8"]["low"] == pytest.approx(4.0)  # 3.9 < 5 / 1.25
    assert len(out) == 2  # the empty ratios (not measured) are skipped, not failed
    out = verify.compare("engines", recorded, [_engine_row(14, 7.6)], 0.25)
    assert [r["inside"] for r in out] == [False, False]  # 7.6 > 7.5, and a missing fresh row is outside


def _fake_section(value, expected_rounds=policy.VERIFY_ROUNDS):
    def run(cfg, device, budget_s, rounds, notes):
        assert rounds == expected_rounds
        return {"fake": [{"model": "m", "speedup": value, "speedup_min": value, "speedup_max": value}]}
    return Section("fake", "fake", ("model",), ("speedup",), "fake", run)


def _recording(path, value, lo, hi):
    path.mkdir()
    with (path / "fake.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["model", "speedup", "speedup_min", "speedup_max"])
        w.writeheader()
        w.writerow({"model": "m", "speedup": value, "speedup_min": lo, "speedup_max": hi})


@pytest.mark.parametrize("fresh,status", [(2.4, 0), (3.2, 1)])
def test_verify_exit_status_follows_the_recorded_range(tmp_path, monkeypatch, capsys, fresh, status):
    monkeypatch.setitem(sections.SECTIONS, "fake", _fake_section(fresh))
    monkeypatch.setattr(verify, "RECORDED", tmp_path / "recorded")
    _recording(tmp_path / "recorded", 2.0, 1.8, 2.5)  # widened by 0.25: [1.44, 3.125]
    out = tmp_path / "verify"
    assert bench.main(["--verify", "--sections", "fake", "--out", str(out), "--max-load", "1000",
                       "--max-other-cores", "1000"]) == status
    rows = list(csv.DictReader((out / "verify.csv").open()))
    assert [r["inside"] for r in rows] == [str(status == 0)]
    meta = json.loads((out / "run.json").read_text())
    assert meta["verify"] is True and meta["load_state"] == "quiet" and meta["rounds"] == list(policy.VERIFY_ROUNDS)
    assert len(meta["load_avg_between"]) == 1 and len(meta["other_cores_between"]) == 1  # read after each section
    assert ("every ratio inside" if status == 0 else "1 of 1 ratios outside") in capsys.readouterr().out


def test_verify_without_a_recording_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(verify, "RECORDED", tmp_path / "none")
    assert bench.main(["--verify", "--out", str(tmp_path / "v"), "--max-load", "1000"]) == 2
    assert "no recorded section to verify" in capsys.readouterr().out


def _cpu_readings(monkeypatch, readings):
    """``CpuMeter`` readings (wall s, machine busy CPU s, own CPU s) in turn."""
    readings = iter(readings)
    monkeypatch.setattr(policy.CpuMeter, "reading", staticmethod(lambda: next(readings)))


def test_other_processes_busy_during_a_section_mark_the_run_loaded(tmp_path, monkeypatch):
    monkeypatch.setitem(sections.SECTIONS, "fake", _fake_section(1.0, bench.FULL["recorded_rounds"]))
    # 10 s of section: the machine was busy 19 CPU s, this process 14 of them: others used 0.5 cores
    _cpu_readings(monkeypatch, [(0.0, 100.0, 1.0), (10.0, 119.0, 15.0)])
    out = tmp_path / "run"
    assert bench.main(["--sections", "fake", "--out", str(out), "--max-load", "1000"]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["other_cores_between"] == [0.5] and meta["load_state"] == "loaded"


def test_the_bench_own_threads_do_not_make_a_run_loaded(tmp_path, monkeypatch):
    """The load average after a section counts the bench's own threads; only the others' CPU use decides."""
    monkeypatch.setitem(sections.SECTIONS, "fake", _fake_section(1.0, bench.FULL["recorded_rounds"]))
    _cpu_readings(monkeypatch, [(0.0, 100.0, 1.0), (10.0, 120.0, 20.5)])  # others: 0.05 cores
    readings = iter([(0.5, 0, 0), (2.0, 0, 0), (2.1, 0, 0)])  # start, after the section, end: 2 busy threads
    monkeypatch.setattr(bench.os, "getloadavg", lambda: next(readings))
    out = tmp_path / "run"
    assert bench.main(["--sections", "fake", "--out", str(out), "--max-load", "1.5"]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["load_avg_between"] == [2.0] and meta["other_cores_between"] == [0.05]
    assert meta["load_state"] == "quiet"


def test_cpu_meter_measures_another_busy_process():
    """A busy child process (not reaped before the reading) counts as another process's CPU use."""
    meter = policy.CpuMeter()
    if meter.last is None:
        pytest.skip("/proc/stat is not readable here")
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"])
    time.sleep(1.0)
    others = meter.other_cores()
    child.wait()
    assert others is not None and others > 0.3


def test_quiet_only_refuses_a_loaded_machine_before_running(tmp_path, capsys):
    out = tmp_path / "run"
    assert bench.main(["--sections", "engines", "--quiet-only", "--max-load", "-1", "--out", str(out)]) == 3
    assert not out.exists() and "not a quiet machine, nothing run" in capsys.readouterr().out


@pytest.mark.slow  # reruns every recorded section with the real models: minutes on 2 cores
def test_verify_against_the_recording(tmp_path):
    """The recorded ranges reproduce (``make bench-verify``); meaningful on a quiet machine only."""
    if os.getloadavg()[0] > policy.load_limit():
        pytest.skip(f"load average {os.getloadavg()[0]:.2f} above {policy.load_limit():.2f}: not a quiet machine")
    assert bench.main(["--verify", "--out", str(tmp_path), "--quiet-only"]) == 0
