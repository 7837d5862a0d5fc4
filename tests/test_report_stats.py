"""Tables a reviewer accepts: intervals and paired tests from the libraries, "your runs", LaTeX that compiles."""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau, wilcoxon
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from benchmark.report.__main__ import main
from benchmark.report.stats import holm, paired


def _run(root, experiment, model, method, metric, metrics, records=None, weights="IMAGENET1K_V1", dataset="ilsvrc2012_val",
         manifest=None, folder=None):
    run = root / "runs" / experiment / model / method / dataset / (folder or f"{metric}-0000")
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({
        "config": {"experiment_name": experiment, "model": {"weights": weights}, "dataset": {"root": manifest},
                   "metric": {"options": {}}},
        "model": model, "method": method, "dataset": dataset, "metric": metric, "status": "finished", "metrics": metrics,
        "protocol": {"normalization": "max"}}))
    if records is not None:
        records.to_parquet(run / "records.parquet")
    return run


def _loc_records(correct):
    return pd.DataFrame({"image_id": [f"img{i:03d}" for i in range(len(correct))], "class_id": 0,
                         "loc_correct_top1": np.asarray(correct, dtype=bool)})


def test_paired_binary_matches_statsmodels_mcnemar_and_self_comparison_is_zero():
    ours = np.array([1] * 30 + [0] * 10 + [1] * 12 + [0] * 48)  # 30 both, 10 only ref, 12 only ours, 48 neither
    ref = np.array([1] * 30 + [1] * 10 + [0] * 12 + [0] * 48)
    result = paired(ours, ref, binary=True)
    assert result["p"] == pytest.approx(mcnemar([[30, 12], [10, 48]], exact=True).pvalue)
    assert result["delta"] == pytest.approx(0.02) and result["lo"] < 0.02 < result["hi"] and result["n"] == 100
    same = paired(ours, ours, binary=True)
    assert (same["delta"], same["lo"], same["hi"], same["p"]) == (0.0, 0.0, 0.0, 1.0)


def test_paired_scores_match_scipy_wilcoxon_and_holm_matches_statsmodels():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.3, 0.1, 40), rng.normal(0.25, 0.1, 40)
    assert paired(a, b, binary=False)["p"] == pytest.approx(wilcoxon(a, b).pvalue)
    assert paired(a, a, binary=False)["p"] == 1.0
    p = [0.01, 0.04, 0.03, float("nan")]
    assert holm(p)[:3] == pytest.approx(list(multipletests(p[:3], method="holm")[1])) and np.isnan(holm(p)[3])


def test_demo_style_table_shows_delta_vs_grad_cam_with_interval_and_holm_p(tmp_path):
    rng = np.random.default_rng(0)
    ref = rng.random(60) < 0.7
    other = ref.copy()
    other[:15] = False  # 15 images lost (some were already wrong)
    _run(tmp_path, "demo", "toy_vgg", "grad_cam", "localization", {"loc_err_top1": 100 * (1 - ref.mean()), "n_images": 60},
         _loc_records(ref), dataset="synthetic_val")
    _run(tmp_path, "demo", "toy_vgg", "gradient", "localization", {"loc_err_top1": 100 * (1 - other.mean()), "n_images": 60},
         _loc_records(other), dataset="synthetic_val")
    assert main(["--results", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "tables" / "demo_localization.csv").set_index("method")
    delta = "Δ loc err top-1 (pp) vs grad_cam"
    lost = int((ref & ~other).sum())
    assert table.loc["gradient", delta] == pytest.approx(100 * lost / 60, abs=0.01)
    assert table.loc["gradient", "Δ loc err top-1 (pp) 95% CI low"] > 0
    assert table.loc["gradient", "Δ loc err top-1 (pp) 95% CI high"] >= table.loc["gradient", delta]
    assert table.loc["gradient", "p (Holm)"] == pytest.approx(round(mcnemar([[0, 0], [lost, 0]], exact=True).pvalue, 4))
    assert (table.loc["grad_cam", delta], table.loc["grad_cam", "p (Holm)"]) == (0.0, 1.0)
    notes = (tmp_path / "tables" / "demo_localization.md").read_text()
    assert "exact McNemar" in notes and "Holm" in notes and "Wilson" in notes
    from benchmark.report.golden_docs import block_text  # the demo figures of the docs show the comparison

    header = block_text("localization", tmp_path / "tables").splitlines()[2]
    assert "| loc err top-1 (%) |" in header and header.endswith("| Δ loc err top-1 (pp) vs grad_cam | p (Holm) |")


def test_pairs_on_different_images_are_refused_with_the_count(tmp_path):
    _run(tmp_path, "demo", "toy_vgg", "grad_cam", "localization", {"loc_err_top1": 50.0, "n_images": 10},
         _loc_records([1, 0] * 5), dataset="synthetic_val")
    _run(tmp_path, "demo", "toy_vgg", "gradient", "localization", {"loc_err_top1": 50.0, "n_images": 8},
         _loc_records([1, 0] * 4), dataset="synthetic_val")
    assert main(["--results", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "tables" / "demo_localization.csv").set_index("method")
    assert np.isnan(table.loc["gradient", "Δ loc err top-1 (pp) vs grad_cam"])
    md = (tmp_path / "tables" / "demo_localization.md").read_text()
    assert "toy_vgg/gradient: not compared with grad_cam" in md and "(2 of 10 (image, class) pairs" in md
    assert "Mixed sample sizes" in md


def test_random_weight_alexnet_on_own_photos_lands_under_your_runs(tmp_path):
    manifest = tmp_path / "mine"
    manifest.mkdir()
    (manifest / "meta.json").write_text(json.dumps({"dataset": "mydata", "split": "val", "num_images": 16}))
    for method, err in (("grad_cam", 68.3), ("gradient", 75.0)):
        _run(tmp_path, "table1", "alexnet", method, "localization",
             {"loc_err_top1": err, "loc_err_top5": 56.6, "n_images": 16}, _loc_records([1] * 5 + [0] * 11),
             weights=None, manifest=str(manifest))
    assert main(["--results", str(tmp_path), "--experiment", "table1"]) == 0
    published = pd.read_csv(tmp_path / "tables" / "table1_localization.csv")
    assert published["loc err top-1 (%)"].isna().all() and published["n images"].isna().all()
    yours = pd.read_csv(tmp_path / "tables" / "table1_localization_your_runs.csv").set_index("method")
    reason = yours.loc["grad_cam", "reason"]
    assert "random weights" in reason and "dataset mydata, not ilsvrc2012_val, 16 images" in reason
    assert not any("paper" in c or c.endswith(" Δ") for c in yours.columns)
    assert yours.loc["grad_cam", "loc err top-1 (%)"] == 68.3


def test_full_dataset_of_the_wrong_size_is_named(tmp_path):
    from benchmark.report.matching import mismatch

    manifest = tmp_path / "ilsvrc"
    manifest.mkdir()
    (manifest / "meta.json").write_text(json.dumps({"dataset": "ilsvrc2012_val", "split": "val", "num_images": 50000}))
    row = {"_weights": "IMAGENET1K_V1", "_root": str(manifest), "n_images": 16, "dataset": "ilsvrc2012_val"}
    assert mismatch(row, "ilsvrc2012_val") == ["dataset ilsvrc2012_val, 16 of 50,000 images"]
    assert mismatch({**row, "n_images": 50000}, "ilsvrc2012_val") == []


def test_agreement_table_is_kendall_tau_of_the_rankings(tmp_path):
    from benchmark.report.agreement import agreement_outputs
    from benchmark.report.tables import collect

    loc = {"a": 30.0, "b": 50.0, "c": 40.0, "d": 70.0}  # error: lower is better
    point = {"a": 80.0, "b": 70.0, "c": 50.0, "d": 20.0}
    for m in loc:
        _run(tmp_path, "mine", "net", m, "localization", {"loc_err_top1": loc[m], "n_images": 10}, dataset="ds")
        _run(tmp_path, "mine", "net", m, "pointing", {"acc_class_mean": point[m], "n_records": 10}, dataset="ds")
    written = agreement_outputs(collect(tmp_path), tmp_path / "out")
    assert {p.name for p in written} >= {"mine_agreement.csv", "mine_agreement.png", "mine_agreement.tex"}
    table = pd.read_csv(tmp_path / "out" / "mine_agreement.csv")
    tau = kendalltau([-loc[m] for m in "abcd"], [point[m] for m in "abcd"])
    assert table.loc[0, "Kendall τ"] == pytest.approx(round(tau.statistic, 3)) and table.loc[0, "n methods"] == 4


def test_every_tex_the_report_writes_compiles_with_pdflatex(tmp_path):
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex not installed (tools/install_tex.sh installs texlive-latex-base and -recommended)")
    manifest = tmp_path / "m"
    manifest.mkdir()
    (manifest / "meta.json").write_text(json.dumps({"dataset": "ilsvrc2012_val", "split": "val", "num_images": 50000}))
    _run(tmp_path, "table1", "vgg16", "grad_cam", "localization",
         {"loc_err_top1": 55.0, "loc_err_top5": 45.0, "cls_err_top1": 30.0, "n_images": 50000}, manifest=str(manifest))
    _run(tmp_path, "table1", "efficientnet_lite0", "grad_cam", "localization", {"loc_err_top1": 68.3, "n_images": 16},
         _loc_records([1] * 16), weights=None)
    _run(tmp_path, "demo_pointing_modified", "toy_gap_multi", "grad_cam", "pointing_modified",
         {"theta": 0.02, "accuracy": 70.0, "n_records": 40, "n_images": 8}, dataset="synthetic_multi_test")
    _run(tmp_path, "demo_occlusion", "toy_vgg", "grad_cam", "occlusion_correlation",
         {"mean_rho": 0.25, "ci95_low": 0.2, "ci95_high": 0.3, "n": 16, "n_nan": 0}, dataset="synthetic_val")
    _run(tmp_path, "my_exp_100%", "net", "grad_cam", "localization", {"loc_err_top1": 10.0}, dataset="d")  # bad name
    _run(tmp_path, "my_exp", "net_#1", "grad_cam", "pointing", {"acc_class_mean": 9.0, "acc_pooled": 90.0, "n_records": 12},
         dataset="d")
    _run(tmp_path, "my_exp", "net_#1", "grad_cam", "localization", {"loc_err_top1": 9.0, "n_images": 12}, dataset="d")
    _run(tmp_path, "my_exp", "net_#1", "gradient", "pointing", {"acc_class_mean": 8.0, "acc_pooled": 80.0, "n_records": 12},
         dataset="d")
    _run(tmp_path, "my_exp", "net_#1", "gradient", "localization", {"loc_err_top1": 19.0, "n_images": 12}, dataset="d")
    for i, n in ((4, 10), (9, 20)):
        _run(tmp_path, "demo_layers", "toy_vgg", f"grad_cam@features.{i}", "localization", {"loc_err_top1": 30.0, "n_images": n},
             dataset="synthetic_val")
    _run(tmp_path, "demo_ablations", "toy_vgg", "grad_cam_no_relu", "localization", {"loc_err_top1": 27.0, "n_images": 500},
         dataset="synthetic_val")
    _run(tmp_path, "demo_pointing", "toy_gap_multi", "grad_cam", "pointing",
         {"acc_class_mean": 80.0, "acc_pooled": 81.0, "n_records": 100, "difficult_n_records": 50}, dataset="synthetic_multi_test")
    _run(tmp_path, "pointing", "vgg16_voc07", "grad_cam", "pointing", {"acc_class_mean": 85.0, "n_records": 100},
         dataset="voc2007_test")
    assert main(["--results", str(tmp_path)]) == 1  # the bad name is skipped, the rest built
    texs = sorted((tmp_path / "tables").glob("*.tex"))
    assert {p.stem for p in texs} >= {"table1_localization", "table1_localization_your_runs", "demo_pointing_modified",
                                      "demo_occlusion", "my_exp_pointing", "my_exp_agreement", "demo_layers",
                                      "demo_ablations", "demo_pointing", "pointing", "pointing_your_runs"}
    doc = tmp_path / "all.tex"  # one document, one pdflatex run; the log names the table that fails
    doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\usepackage[margin=1cm,landscape]{geometry}"
                   "\\begin{document}\\tiny\n" + "".join(f"\\input{{{tex}}}\\clearpage\n" for tex in texs)
                   + "\\end{document}\n")
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"a table does not compile:\n{done.stdout[-3000:]}"
    assert f"Output written on all.pdf ({len(texs)} pages" in done.stdout


def test_pointing_run_on_own_data_labelled_voc_is_not_beside_the_published_numbers(tmp_path):
    manifest = tmp_path / "mine"
    manifest.mkdir()
    (manifest / "meta.json").write_text(json.dumps({"dataset": "mydata", "split": "test", "num_images": 16}))
    _run(tmp_path, "pointing", "vgg16_voc07", "grad_cam", "pointing", {"acc_class_mean": 90.0, "acc_pooled": 91.0,
         "n_records": 20, "n_images": 16}, weights="x", dataset="voc2007_test", manifest=str(manifest))
    assert main(["--results", str(tmp_path), "--experiment", "pointing"]) == 0
    published = pd.read_csv(tmp_path / "tables" / "pointing.csv")
    assert published["all: class-mean acc (%)"].isna().all()  # the published rows only
    yours = pd.read_csv(tmp_path / "tables" / "pointing_your_runs.csv")
    assert yours["all: class-mean acc (%)"].tolist() == [90.0] and "dataset mydata, not voc2007_test" in yours.loc[0, "reason"]
    assert not any("paper" in c or c.endswith(" Δ") for c in yours.columns)


def test_a_table3_run_under_another_normalization_than_its_card_is_one_of_your_runs(tmp_path):
    manifest = tmp_path / "m"
    manifest.mkdir()
    (manifest / "meta.json").write_text(json.dumps({"dataset": "ilsvrc2012_val", "split": "val", "num_images": 50000}))
    run = _run(tmp_path, "table3_ablations", "vgg16", "grad_cam", "localization", {"loc_err_top1": 60.0, "n_images": 50000},
               manifest=str(manifest))  # protocol normalization max; the card says minmax
    assert main(["--results", str(tmp_path), "--experiment", "table3"]) == 0
    yours = pd.read_csv(tmp_path / "tables" / "table3_ablations_your_runs.csv")
    assert "metric.options.normalization=max, the published protocol has minmax" in yours.loc[0, "reason"]
    summary = json.loads((run / "summary.json").read_text())
    summary["protocol"]["normalization"] = "minmax"
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["--results", str(tmp_path), "--experiment", "table3"]) == 0
    table = pd.read_csv(tmp_path / "tables" / "table3_ablations.csv")
    row = table[(table["method"] == "grad_cam") & table["loc err top-1 (%)"].notna()].iloc[0]
    assert row["loc err top-1 (%) Δ"] == pytest.approx(60.0 - 59.65)
    assert not (tmp_path / "tables" / "table3_ablations_your_runs.csv").exists()  # the old one does not linger


def test_class_mean_interval_brackets_the_class_mean():
    from benchmark.report.stats import class_mean_ci

    hits = np.array([1, 1, 1, 0] * 5 + [0, 0, 1] * 5, dtype=float)
    classes = np.array([0] * 20 + [1] * 15)
    lo, hi = class_mean_ci(hits, classes)
    estimate = (0.75 + 1 / 3) / 2
    assert lo < estimate < hi and 0.3 < lo and hi < 0.8
    assert class_mean_ci(np.ones(6), np.arange(6) % 2) == (1.0, 1.0)
