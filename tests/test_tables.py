"""The table builder on hand-made summaries: published numbers side by side, missing cells kept."""

import json
import math

import pandas as pd

from benchmark.table_specs import SPECS
from benchmark.tables import REFERENCE_DIR, build, collect, wilson


def _summary(root, experiment, model, method, metrics, status="finished"):
    run = root / "runs" / experiment / model / method / "ds"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({
        "config": {"experiment_name": experiment}, "model": model, "method": method, "dataset": "ds",
        "metric": "localization", "status": status, "metrics": metrics}))


def test_table1_side_by_side_with_missing_cell_and_unmatched_reference(tmp_path):
    _summary(tmp_path, "table1", "vgg16", "grad_cam",
             {"loc_err_top1": 55.0, "loc_err_top5": 45.0, "cls_err_top1": 30.0, "n_images": 1000})  # no cls top-5
    _summary(tmp_path, "table1", "resnet50", "grad_cam", {"loc_err_top1": 50.0, "n_images": 10})
    _summary(tmp_path, "table1", "vgg16", "cam", {}, status="not_applicable")
    spec = next(s for s in SPECS if s.name == "table1_localization")
    table = build(spec, collect(tmp_path)).set_index(["model", "method"])
    row = table.loc[("vgg16", "grad_cam")]
    assert row["loc err top-1"] == 55.0 and row["loc err top-1 (paper)"] == 56.51
    assert math.isclose(row["loc err top-1 Δ"], 55.0 - 56.51)
    assert math.isnan(row["cls err top-5"])  # missing stays missing
    lo, hi = wilson(55.0, 1000)
    assert row["loc err top-1 95% CI"] == f"[{lo:.1f}, {hi:.1f}]" and lo < 55.0 < hi
    assert math.isnan(table.loc[("resnet50", "grad_cam"), "loc err top-1 (paper)"])  # ours without a published row
    published_only = table.loc[("alexnet", "contrastive_excitation_backprop")]
    assert published_only["loc err top-1 (paper)"] == 92.6 and math.isnan(published_only["loc err top-1"])
    assert ("vgg16", "cam") not in table.index or math.isnan(table.loc[("vgg16", "cam"), "loc err top-1"])


def test_wilson_interval_by_hand():
    lo, hi = wilson(50.0, 100)  # p = 0.5, n = 100: 0.5 +- 1.96 * sqrt(0.25/100 + 1.96^2/40000) / 1.0384
    assert math.isclose(lo, 40.38, abs_tol=0.01) and math.isclose(hi, 59.62, abs_tol=0.01)


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
