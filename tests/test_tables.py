"""The table builder on hand-made summaries: published numbers side by side, missing cells kept."""

import json
import math

import pandas as pd
import pytest

from benchmark.report.specs import SPECS
from benchmark.report.tables import REFERENCE_DIR, build, collect, to_markdown, wilson


def _manifest(root, dataset="ilsvrc2012_val", num_images=50000):
    folder = root / "manifests" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"dataset": dataset, "split": "val", "num_images": num_images}))
    return str(folder)


def _summary(root, experiment, model, method, metrics, status="finished", weights="IMAGENET1K_V1"):
    """A summary of a run with pretrained weights on the full ILSVRC 2012 val manifest (a comparable run)."""
    run = root / "runs" / experiment / model / method / "ds"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({
        "config": {"experiment_name": experiment, "model": {"weights": weights},
                   "dataset": {"root": _manifest(root), "limit": None}},
        "model": model, "method": method, "dataset": "ilsvrc2012_val",
        "metric": "localization", "status": status, "metrics": metrics}))


def test_table1_side_by_side_with_missing_cell_and_unmatched_reference(tmp_path):
    _summary(tmp_path, "table1", "vgg16", "grad_cam",
             {"loc_err_top1": 55.0, "loc_err_top5": 45.0, "cls_err_top1": 30.0, "n_images": 50000})  # no cls top-5
    _summary(tmp_path, "table1", "resnet50", "grad_cam", {"loc_err_top1": 50.0, "n_images": 50000})
    _summary(tmp_path, "table1", "vgg16", "cam", {}, status="not_applicable")
    spec = next(s for s in SPECS if s.name == "table1_localization")
    table = build(spec, collect(tmp_path)).set_index(["model", "method"])
    row = table.loc[("vgg16", "grad_cam")]
    assert row["loc err top-1 (%)"] == 55.0 and row["loc err top-1 (%) (paper)"] == 56.51
    assert math.isclose(row["loc err top-1 (%) Δ"], 55.0 - 56.51)
    assert math.isnan(row["cls err top-5 (%)"])  # missing stays missing
    lo, hi = wilson(55.0, 50000)
    assert (row["loc err top-1 (%) 95% CI low"], row["loc err top-1 (%) 95% CI high"]) == (lo, hi) and lo < 55.0 < hi
    assert math.isnan(table.loc[("resnet50", "grad_cam"), "loc err top-1 (%) (paper)"])  # ours without a published row
    published_only = table.loc[("alexnet", "contrastive_excitation_backprop")]
    assert published_only["loc err top-1 (%) (paper)"] == 92.6 and math.isnan(published_only["loc err top-1 (%)"])
    assert ("vgg16", "cam") not in table.index or math.isnan(table.loc[("vgg16", "cam"), "loc err top-1 (%)"])


def test_counts_print_as_integers(tmp_path):
    _summary(tmp_path, "table1", "vgg16", "grad_cam", {"loc_err_top1": 55.0, "n_images": 50000, "n_degenerate": 3})
    _summary(tmp_path, "table1", "resnet50", "grad_cam", {"loc_err_top1": 50.0, "n_images": 50000, "n_degenerate": 0})
    spec = next(s for s in SPECS if s.name == "table1_localization")
    text = to_markdown(build(spec, collect(tmp_path)))
    header = [c.strip() for c in text.splitlines()[0].strip("|").split("|")]
    rows = {tuple(c.strip() for c in line.strip("|").split("|"))[:2]: [c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines()[2:]}
    n, bad = header.index("n images"), header.index("degenerate")
    assert (rows[("vgg16", "grad_cam")][n], rows[("vgg16", "grad_cam")][bad]) == ("50000", "3")
    assert (rows[("resnet50", "grad_cam")][n], rows[("resnet50", "grad_cam")][bad]) == ("50000", "0")
    assert rows[("alexnet", "contrastive_excitation_backprop")][n] == "—"  # published only: no count
    assert rows[("vgg16", "grad_cam")][header.index("loc err top-1 (%)")] == "55.00"


def test_wilson_interval_by_hand():
    lo, hi = wilson(50.0, 100)  # p = 0.5, n = 100: 0.5 +- 1.96 * sqrt(0.25/100 + 1.96^2/40000) / 1.0384
    assert math.isclose(lo, 40.38, abs_tol=0.01) and math.isclose(hi, 59.62, abs_tol=0.01)
    from benchmark.report.stats import proportion_ci
    from statsmodels.stats.proportion import proportion_confint

    assert proportion_ci(7, 16) == pytest.approx(proportion_confint(7, 16, alpha=0.05, method="wilson"))


def test_reference_csvs_hold_the_published_numbers():
    t1 = pd.read_csv(REFERENCE_DIR / "table1_localization.csv").set_index(["model", "method"])
    assert t1.loc[("vgg16", "grad_cam"), ["cls_err_top1", "cls_err_top5", "loc_err_top1", "loc_err_top5"]].tolist() == [30.38, 10.89, 56.51, 46.41]
    assert t1.loc[("googlenet", "cam"), "loc_err_top5"] == 49.34 and len(t1) == 8
    # the paper's Backprop row post-processed gradients with GrabCut: it sits beside experiment table1_grabcut
    assert t1.loc[("vgg16", "gradient_grabcut"), ["loc_err_top1", "loc_err_top5"]].tolist() == [61.12, 51.46]
    t2 = pd.read_csv(REFERENCE_DIR / "table2_occlusion.csv").set_index("method")["rank_correlation"].to_dict()
    assert t2 == {"guided_backprop": 0.168, "contrastive_excitation_backprop": 0.220, "cam": 0.208,
                  "grad_cam": 0.254, "guided_grad_cam": 0.261}
    t3 = pd.read_csv(REFERENCE_DIR / "table3_ablations.csv").set_index("method")["loc_err_top1"].to_dict()
    assert t3 == {"grad_cam": 59.65, "grad_cam_no_relu": 74.98, "grad_cam_abs_grad": 58.19, "grad_cam_gmp": 59.96,
                  "grad_cam_deconv_relu": 83.95, "grad_cam_guided_relu": 59.14}
    mod = pd.read_csv(REFERENCE_DIR / "pointing_modified.csv").set_index("method")["accuracy"].to_dict()
    assert mod == {"grad_cam": 70.58, "contrastive_excitation_backprop": 60.30}
    pg = pd.read_csv(REFERENCE_DIR / "pointing.csv")
    assert len(pg) == 29 and pg[(pg.method == "center") & (pg.dataset == "coco2014_val")]["accuracy"].item() == 27.8
    for path in REFERENCE_DIR.glob("*.csv"):
        assert pd.read_csv(path)["source"].notna().all(), path


# --- a sharded run: `python -m benchmark.report` merges the shards, then builds the table ---------------------

# image -> cls top-1, cls top-5, GT-known, loc top-1, loc top-5, IoU, has box (localization records)
SHARD_ROWS = {"a": (True, True, True, True, True, 0.8, True), "b": (False, True, True, False, True, 0.6, True),
              "c": (True, True, False, False, False, 0.3, True), "d": (False, False, False, False, False, 0.0, False),
              "e": (True, True, True, True, True, 0.7, True)}
SHARD_COLUMNS = ["cls_correct_top1", "cls_correct_top5", "gt_known_correct", "loc_correct_top1", "loc_correct_top5",
                 "iou", "has_box"]


def _write_shard(root, shard, ids, metrics, device):
    """One shard of job table1/vgg16/grad_cam/ilsvrc2012_val as ``evaluate`` leaves it (records + summary)."""
    from benchmark.runs.store import frame_bytes, write_json

    config = {"experiment_name": "table1", "seed": 0, "device": "cpu", "batch_size": 32, "on_error": "raise",
              "paths": {"results": str(root), "cache": "/cache"}, "logger": {"name": "none"},
              "model": {"name": "vgg16", "weights": "IMAGENET1K_V1"},
              "method": {"name": "grad_cam", "label": "grad_cam", "layer": None, "options": {}},
              "metric": {"name": "localization", "options": {}},
              "dataset": {"name": "ilsvrc2012_val", "root": "/data/ilsvrc2012_val", "split": "val", "shard": shard,
                          "num_shards": 2, "limit": None}}
    run = root / "runs" / "table1" / "vgg16" / "grad_cam" / "ilsvrc2012_val" / f"shard-{shard}-of-2"
    run.mkdir(parents=True)
    frame = pd.DataFrame([(i, 0, *SHARD_ROWS[i]) for i in ids], columns=["image_id", "class_id", *SHARD_COLUMNS])
    frame = frame.assign(degenerate=False, blacklisted=False, error=None, model="vgg16", method="grad_cam",
                         dataset="ilsvrc2012_val")
    (run / "records.parquet").write_bytes(frame_bytes(frame))
    write_json(run / "summary.json", {
        "config_hash": f"shard{shard}", "config": config, "run_dir": str(run), "model": "vgg16", "method": "grad_cam",
        "dataset": "ilsvrc2012_val", "metric": "localization", "status": "finished", "metrics": metrics,
        "errors": {"n_images": 0, "policy": "raise", "examples": []},
        "aggregation": {"name": "pooled_over_images", "version": 1}, "protocol": {"threshold": 0.15},
        "counts": {"images": len(ids), "records": len(ids)}, "seed": 0, "layer": "features.29",
        "versions": {"torch": "2.13.0"}, "git": {"commit": "abc", "dirty": False}, "device": device})


def test_table1_row_of_a_sharded_run_is_recomputed_over_both_shards(tmp_path, capsys):
    from benchmark.report.__main__ import main

    # strided shards of 5 images: positions 0, 2, 4 and 1, 3; each shard's own (correct) numbers
    _write_shard(tmp_path, 0, ["a", "c", "e"], {"n_images": 3, "cls_err_top1": 0.0, "cls_err_top5": 0.0,
                                                "loc_err_top1": 100 / 3, "loc_err_top5": 100 / 3}, "cpu")
    _write_shard(tmp_path, 1, ["b", "d"], {"n_images": 2, "cls_err_top1": 100.0, "cls_err_top5": 50.0,
                                           "loc_err_top1": 100.0, "loc_err_top5": 50.0}, "cuda (A100)")
    assert main(["--results", str(tmp_path)]) == 0
    assert "table1_localization" in capsys.readouterr().out
    merged = json.loads((tmp_path / "runs/table1/vgg16/grad_cam/ilsvrc2012_val/summary.json").read_text())
    assert merged["merge"]["num_shards"] == 2 and merged["counts"] == {"images": 5, "records": 5}
    # 5 images of a manifest that cannot be read: not the published protocol, so the row is one of "your runs"
    table = pd.read_csv(tmp_path / "tables" / "table1_localization_your_runs.csv")
    ours = table[(table["model"] == "vgg16") & (table["method"] == "grad_cam")]
    assert len(ours) == 1  # one row for the job, not one per shard
    row = ours.iloc[0]
    assert "meta.json cannot be read" in row["reason"] and not any("paper" in c or c.endswith(" Δ") for c in table)
    # pooled over the 5 images (not the mean of the shards' 50 / 25 / 66.7 / 41.7):
    # cls top-1 right a c e -> 40 % error; top-5 a b c e -> 20 %; loc top-1 a e -> 60 %; loc top-5 a b e -> 40 %;
    # GT-known a b e -> 60 % accuracy
    assert row["n images"] == 5 and row["degenerate"] == 0
    ours = [row["cls err top-1 (%)"], row["cls err top-5 (%)"], row["loc err top-1 (%)"], row["loc err top-5 (%)"]]
    assert ours == pytest.approx([40.0, 20.0, 60.0, 40.0]) and row["GT-known loc acc (%)"] == pytest.approx(60.0)
    # Wilson, p = 0.6, n = 5: (0.6 + 0.3842) / 1.7683 -+ 1.96 * sqrt(0.048 + 0.0384) / 1.7683 = 0.5566 -+ 0.3258
    assert [row["loc err top-1 (%) 95% CI low"], row["loc err top-1 (%) 95% CI high"]] == pytest.approx([23.08, 88.24], abs=0.011)
    md = (tmp_path / "tables" / "table1_localization_your_runs.md").read_text()
    (line,) = [x for x in md.splitlines() if x.startswith("| vgg16 | grad_cam |")]
    assert line.startswith("| vgg16 | grad_cam | ilsvrc2012_val | 40.00 | 11.76 | 76.93 | 20.00 | 3.62 | 62.45 | 60.00 |")
    published = pd.read_csv(tmp_path / "tables" / "table1_localization.csv")
    assert published["loc err top-1 (%)"].isna().all()  # only the published rows, none of ours


# --- protocol cards, blacklist-consistent comparison, normalization column ---------------------------------------

def test_published_numbers_carry_their_card_and_its_summary_in_the_notes(tmp_path):
    from benchmark.report.cards import load_cards
    from benchmark.report.tables import table_notes

    _summary(tmp_path, "table1", "vgg16", "grad_cam", {"loc_err_top1": 55.0, "loc_err_top5": 45.0, "n_images": 50000})
    spec = next(s for s in SPECS if s.name == "table1_localization")
    table = build(spec, collect(tmp_path))
    cols = list(table.columns)
    assert cols.index("card") == cols.index("loc err top-5 (%) (paper)") + 1  # beside the published numbers
    row = table.set_index(["model", "method"]).loc[("vgg16", "grad_cam")]
    assert row["card"] == "t1_vgg16_grad_cam"
    notes = table_notes(spec, table)
    assert f"card `t1_vgg16_grad_cam`: {load_cards()['t1_vgg16_grad_cam']['summary']}" in notes
    assert sum(n.startswith("card `") for n in notes) == table["card"].nunique()


def test_blacklist_flagged_runs_compare_the_devkit_figure_with_the_paper(tmp_path):
    from benchmark.report.tables import BLACKLIST_NOTE, table_notes

    _summary(tmp_path, "table1", "vgg16", "grad_cam", {"loc_err_top1": 55.0, "loc_err_top5": 45.0, "n_images": 50000,
                                                       "loc_err_top1_no_blacklist": 50.0, "loc_err_top5_no_blacklist": 40.0})
    _summary(tmp_path, "table1", "alexnet", "grad_cam", {"loc_err_top1": 70.0, "loc_err_top5": 60.0, "n_images": 50000})
    spec = next(s for s in SPECS if s.name == "table1_localization")
    table = build(spec, collect(tmp_path))
    rows = table.set_index(["model", "method"])
    vgg, alex = rows.loc[("vgg16", "grad_cam")], rows.loc[("alexnet", "grad_cam")]
    assert vgg["loc err top-1 (%)"] == 55.0 and vgg["loc err top-1 (%) devkit"] == 50.0
    assert math.isclose(vgg["loc err top-1 (%) Δ"], 50.0 - 56.51) and math.isclose(vgg["loc err top-5 (%) Δ"], 40.0 - 46.41)
    assert alex["loc err top-1 (%) devkit"] == 70.0 and math.isclose(alex["loc err top-1 (%) Δ"], 70.0 - 68.3)  # none flagged
    assert BLACKLIST_NOTE in table_notes(spec, table)
    # without a flagged blacklist there is no devkit column and no note
    plain = build(spec, collect(tmp_path).drop(columns=["loc_err_top1_no_blacklist", "loc_err_top5_no_blacklist"]))
    assert "loc err top-1 (%) devkit" not in plain and BLACKLIST_NOTE not in table_notes(spec, plain)


def test_demo_ablations_show_both_normalizations_and_no_difference_column(tmp_path):
    for experiment, normalization, err in (("demo_ablations", "max", 27.0), ("demo_ablations_minmax", "minmax", 73.0)):
        _summary(tmp_path, experiment, "toy_vgg", "grad_cam_no_relu", {"loc_err_top1": err, "n_images": 500})
        path = next((tmp_path / "runs" / experiment).glob("**/summary.json"))
        path.write_text(path.read_text()[:-1] + f', "protocol": {{"normalization": "{normalization}"}}}}')
    spec = next(s for s in SPECS if s.name == "demo_ablations")
    table = build(spec, collect(tmp_path))
    assert not any("Δ" in c for c in table.columns)
    ours = table[table["loc err top-1 (%)"].notna()].set_index("normalization")
    assert ours.loc["max", "loc err top-1 (%)"] == 27.0 and ours.loc["minmax", "loc err top-1 (%)"] == 73.0
    assert not any("(paper)" in c for c in table.columns) and "card" not in table  # no published number
    assert len(table) == 2  # only our rows: no published-only row either


def test_no_demo_table_spec_holds_a_published_number():
    demo = [s for s in SPECS if s.name.startswith("demo")]
    assert {s.name for s in demo} >= {"demo_localization", "demo_cam_protocol", "demo_ablations"}
    assert all(s.reference is None and not s.compare for s in demo)
