"""Bench figures in the docs are rendered from the recorded bench results (benchmark/perf/recorded.py)."""

import csv
import json
import shutil

import pytest

from benchmark.perf import recorded
from benchmark.perf.recorded import BLOCKS, DOCS, RECORDED, REPO, record, render, stale


def test_every_docs_block_equals_its_rendering_from_the_recorded_results():
    assert stale() == [], "run: python -m benchmark.perf.recorded --write"
    names = {m.group(2) for doc in DOCS for m in recorded.BLOCK.finditer((REPO / doc).read_text())}
    assert names == set(BLOCKS)  # every renderer is used, so every recorded figure is checked


def _copy(tmp_path):
    dest = tmp_path / "recorded"
    shutil.copytree(RECORDED, dest)
    return dest


def _edit(path, **values):
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r.update(values)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_a_changed_recorded_figure_changes_the_docs_blocks(tmp_path):
    dest = _copy(tmp_path)
    _edit(dest / "occlusion_engines.csv", incremental_vs_plain="9.5")
    assert "| incremental, measured | 9.50× |" in BLOCKS["table2"](dest)
    assert set(stale(REPO, dest)) >= {"docs/occlusion.md", "docs/tables.md"}
    _edit(dest / "ecosystem.csv", adapter_over_library="0.123")
    assert "| 0.123 [" in BLOCKS["ecosystem"](dest) and "docs/ecosystem.md" in stale(REPO, dest)


def test_a_missing_field_names_the_file_and_the_field(tmp_path):
    dest = _copy(tmp_path)
    _edit(dest / "occlusion_engines.csv", incremental_vs_plain="")
    with pytest.raises(ValueError, match=r"occlusion_engines\.csv: row 2 has no field 'incremental_vs_plain'"):
        BLOCKS["occlusion"](dest)


def test_an_unknown_block_is_an_error_naming_the_file():
    with pytest.raises(ValueError, match=r"docs/x\.md: block <!-- bench:speed -->; expected one of occlusion"):
        render("a\n<!-- bench:speed -->\nold\n<!-- /bench -->\n", RECORDED, "docs/x.md")


def test_record_copies_the_sections_that_ran_with_their_facts(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(RECORDED / "ecosystem.csv", run / "ecosystem.csv")
    meta = {"quick": False, "sections": ["ecosystem"], "date": "2026-12-02T06:00:00+00:00", "cpus": 2, "threads": 2,
            "cpu_model": "Some CPU", "load_avg_start": [3.5, 2, 1], "load_avg_end": [4.0, 3, 2],
            "versions": {"torch": "2.13.0+cpu"}, "git": {"commit": "abcdef0123", "dirty": False},
            "notes": ["ecosystem: a note", "occlusion engines, vgg16: another"]}
    (run / "run.json").write_text(json.dumps(meta))
    dest = tmp_path / "out"
    assert sorted(p.name for p in record(run, dest)) == ["ecosystem.csv", "ecosystem.json"]
    facts = json.loads((dest / "ecosystem.json").read_text())
    assert facts["torch"] == "2.13.0+cpu" and facts["commit"] == "abcdef0123" and facts["notes"] == ["ecosystem: a note"]
    block = BLOCKS["ecosystem"](dest)
    assert "commit abcdef0: Some CPU, 2 cores, 2 threads" in block and "load average 3.50 at the start" in block
    assert "loaded machine" in block  # 3.5 > half the cores
    (run / "run.json").write_text(json.dumps({**meta, "quick": True}))
    with pytest.raises(ValueError, match=r"run\.json: field 'quick' is True; expected false"):
        record(run, dest)
