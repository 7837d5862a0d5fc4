"""Bench figures in the docs are rendered from the recorded bench results (benchmark/perf/recorded.py)."""

import csv
import json
import shutil

import pytest

from benchmark.perf import recorded, report
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
    assert "| incremental, measured | 9.50× " in BLOCKS["table2"](dest)
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


def _run_folder(tmp_path, **meta_changes):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    shutil.copyfile(RECORDED / "ecosystem.csv", run / "ecosystem.csv")
    meta = {"quick": False, "sections": ["ecosystem"], "date": "2026-12-02T06:00:00+00:00", "cpus": 2, "threads": 2,
            "cpu_model": "Some CPU", "load_avg_start": [1.2, 2, 1], "load_avg_end": [1.4, 3, 2], "max_load": 1.5,
            "load_state": "quiet", "rounds": [5, 12],
            "versions": {"torch": "2.13.0+cpu"}, "git": {"commit": "abcdef0123", "dirty": False},
            "notes": ["ecosystem: a note", "occlusion engines, vgg16: another"], **meta_changes}
    (run / "run.json").write_text(json.dumps(meta))
    return run


def test_record_copies_the_sections_that_ran_with_their_facts(tmp_path):
    run = _run_folder(tmp_path)
    dest = tmp_path / "out"
    assert sorted(p.name for p in record(run, dest)) == ["ecosystem.csv", "ecosystem.json"]
    facts = json.loads((dest / "ecosystem.json").read_text())
    assert facts["torch"] == "2.13.0+cpu" and facts["commit"] == "abcdef0123" and facts["notes"] == ["ecosystem: a note"]
    assert facts["load_state"] == "quiet" and facts["rounds"] == [5, 12]
    block = BLOCKS["ecosystem"](dest)
    assert "commit abcdef0: Some CPU, 2 cores, 2 threads" in block and "load average 1.20 at the start" in block
    assert "**quiet**" in block and "loaded" not in block


@pytest.mark.parametrize("changes,message", [
    ({"quick": True}, r"field 'quick' is True; expected false"),
    ({"rounds": [2, 6]}, r"field 'rounds' is \[2, 6\]; expected at least 5 rounds"),
    ({"load_state": "loaded", "load_avg_end": [7.9, 8, 8]}, r"field 'load_state' is 'loaded' .*7\.90 at the end"),
])
def test_record_refuses_a_run_that_breaks_the_policy_and_writes_nothing(tmp_path, changes, message):
    run = _run_folder(tmp_path, **changes)
    with pytest.raises(recorded.RefusedRecording, match=message):
        record(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_loaded_run_recorded_anyway_is_marked_loaded(tmp_path):
    run = _run_folder(tmp_path, load_state="loaded", load_avg_start=[3.5, 2, 1])
    dest = tmp_path / "out"
    record(run, dest, allow_loaded=True)
    block = BLOCKS["ecosystem"](dest)
    assert "load average 3.50 at the start (at most 1.50, 0.75 per core, for a quiet run), 1.40 at the end: **loaded**" in block
    assert "may not reproduce on a quiet one" in block


def test_ranges_are_rendered_where_recorded_and_their_absence_is_said(tmp_path):
    dest = _copy(tmp_path)
    ranges = [f"{r}_{end}" for r in ("plain_vs_captum", "incremental_vs_captum", "incremental_vs_plain")
              for end in ("min", "max")]
    _edit(dest / "occlusion_engines.csv", **dict.fromkeys(ranges, ""))  # as a recording made before ranges were kept
    assert "[no range recorded]" in BLOCKS["occlusion"](dest)
    _edit(dest / "occlusion_engines.csv", incremental_vs_plain="6.0", incremental_vs_plain_min="5.5",
          incremental_vs_plain_max="6.5")
    occ, t2 = BLOCKS["occlusion"](dest), BLOCKS["table2"](dest)
    assert "| 6 [5.5–6.5] (" in occ
    assert "| incremental, measured | 6.00× [5.50–6.50×: " in t2 and "median [min–max] over rounds" in t2
    _edit(dest / "ecosystem.csv", adapter_over_library_min="0.9", adapter_over_library_max="1.1")
    assert "[0.9–1.1]" in BLOCKS["ecosystem"](dest)


def test_pipeline_block_before_and_after_a_recording(tmp_path):
    dest = _copy(tmp_path)
    for suffix in (".csv", ".json"):
        (dest / "pipeline").with_suffix(suffix).unlink(missing_ok=True)
    assert BLOCKS["pipeline"](dest).startswith("Not recorded yet: `make bench-record`")
    rows = [{"step": "decode (PIL)", "images": 32, "rounds": 5, "images_per_s": 210.0, "per": "core"},
            {"step": "loader speed-up, 2 workers / 1", "images": 32, "rounds": 5, "per": "", "ratio": 1.8,
             "ratio_min": 1.6, "ratio_max": 1.9},
            {"step": "cores per GPU, vgg16", "images": 32, "images_per_s": 808.0, "per": "GPU", "cores_per_gpu": 18.8,
             "note": "GPU forward images/s assumed 25 TFLOP/s"}]
    report.write_csv(dest / "pipeline.csv", rows)  # as the bench writes it (rounds 5.0 beside an empty one)
    (dest / "pipeline.json").write_text(json.dumps({"date": "d", "cpus": 2, "load_avg_start": [0.5], "load_avg_end": [0.7],
                                                    "load_state": "quiet", "max_load": 1.5}))
    block = BLOCKS["pipeline"](dest)
    assert "| decode (PIL) | 210 | core | – | – |  |" in block
    assert "| loader speed-up, 2 workers / 1 | – | – | 1.8 [1.6–1.9] | – |  |" in block
    assert "| cores per GPU, vgg16 | 808 | GPU | – | 18.8 | GPU forward images/s assumed 25 TFLOP/s |" in block
    assert "0.50 at the start (at most 1.50, 0.75 per core, for a quiet run), 0.70 at the end: **quiet**" in block


def test_gradcam_block_one_column_per_model_with_ranges_and_targets(tmp_path):
    dest = _copy(tmp_path)
    for suffix in (".csv", ".json"):
        (dest / "gradcam_ratios").with_suffix(suffix).unlink(missing_ok=True)
    assert BLOCKS["gradcam"](dest).startswith("Not recorded yet: `make bench-record`")
    name = "Grad-CAM 1 class: ours / pytorch-grad-cam"
    rows = [{"ratio": name, "model": "resnet50", "value": 3.0, "value_min": 2.5, "value_max": 3.5, "target": ">= 4",
             "holds": False, "rounds": 5},
            {"ratio": name, "model": "vgg16", "value": 4.2, "value_min": 4.1, "value_max": 4.4, "target": ">= 4",
             "holds": True, "rounds": 6},
            {"ratio": "Grad-CAM 5 classes: cl+fold / float32", "model": "vgg16", "value": 1.2, "value_min": 1.1,
             "value_max": 1.3, "rounds": 6}]
    report.write_csv(dest / "gradcam_ratios.csv", rows)
    (dest / "gradcam_ratios.json").write_text(json.dumps({"cpus": 2, "load_avg_start": [0.5], "load_avg_end": [2.0]}))
    block = BLOCKS["gradcam"](dest)
    assert "| ratio | resnet50 | vgg16 | target |" in block
    assert f"| {name} | 3 [2.5–3.5], missed | 4.2 [4.1–4.4], met | ≥ 4 |" in block
    assert "| Grad-CAM 5 classes: cl+fold / float32 | – | 1.2 [1.1–1.3] | – |" in block
    assert "0.50 at the start (at most 1.50, 0.75 per core, for a quiet run), 2.00 at the end: **loaded**" in block
    # no other processes' CPU use recorded: the end's 2.0 > 0.75 x 2 cores decides
