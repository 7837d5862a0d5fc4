"""``python -m benchmark.report --experiment NAME`` builds a table for any experiment (issue 18)."""

import json

import pandas as pd

from benchmark.report.__main__ import main
from benchmark.report.generic import generic_tables
from benchmark.report.tables import collect


def _summary(root, experiment, model, method, metric, metrics, status="finished", run=None):
    run_dir = root / "runs" / experiment / model / method / "ds" / (run or f"{metric}-00000000")
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({
        "config": {"experiment_name": experiment}, "model": model, "method": method, "dataset": "ds",
        "metric": metric, "status": status, "metrics": metrics}))


def test_user_named_experiment_gets_a_table_per_metric(tmp_path, capsys):
    _summary(tmp_path, "byo_loc", "mynet", "grad_cam", "localization", {"loc_err_top1": 40.0, "n_images": 10})
    _summary(tmp_path, "byo_loc", "mynet", "center", "localization", {"loc_err_top1": 70.0, "n_images": 10})
    _summary(tmp_path, "byo_loc", "mynet", "cam", "localization", {}, status="not_applicable")
    _summary(tmp_path, "byo_loc", "mynet", "grad_cam", "pointing", {"acc_pooled": 90.0, "n_records": 12})
    _summary(tmp_path, "other", "mynet", "grad_cam", "pointing", {"acc_pooled": 1.0, "n_records": 1})
    main(["--results", str(tmp_path), "--experiment", "byo_loc"])
    assert "tables written:" in capsys.readouterr().out
    tables = tmp_path / "tables"
    assert sorted(p.name for p in tables.glob("*.md")) == ["byo_loc_localization.md", "byo_loc_pointing.md"]
    loc = pd.read_csv(tables / "byo_loc_localization.csv")
    assert list(loc.columns) == ["model", "method", "dataset", "status", "loc_err_top1", "loc_err_top1 95% CI low",
                                 "loc_err_top1 95% CI high", "n_images"]  # a Wilson interval beside every error rate
    assert list(loc["method"]) == ["center", "cam", "grad_cam"]  # the paper tables' method order
    assert list(loc["loc_err_top1"].fillna(-1)) == [70.0, -1, 40.0]
    assert list(loc["status"]) == ["finished", "not_applicable", "finished"]
    pointing = pd.read_csv(tables / "byo_loc_pointing.csv")
    assert list(pointing.columns) == ["model", "method", "dataset", "status", "acc_pooled", "acc_pooled 95% CI low",
                                      "acc_pooled 95% CI high", "n_records"]
    assert pointing.loc[0, "acc_pooled"] == 90.0 and "| 12 |" in (tables / "byo_loc_pointing.md").read_text()


def test_runs_differing_in_other_settings_are_told_apart_and_paper_experiments_are_left_out(tmp_path):
    _summary(tmp_path, "mine", "m", "grad_cam", "localization", {"loc_err_top1": 1.0}, run="localization-aaaa")
    _summary(tmp_path, "mine", "m", "grad_cam", "localization", {"loc_err_top1": 2.0}, run="localization-bbbb")
    _summary(tmp_path, "table1", "vgg16", "grad_cam", "localization", {"loc_err_top1": 3.0})
    from benchmark.report.tables import collect

    written = generic_tables(collect(tmp_path), tmp_path / "out")
    assert [p.name for p in written] == ["mine_localization.md", "mine_localization.csv", "mine_localization.tex"]
    table = pd.read_csv(tmp_path / "out" / "mine_localization.csv")
    # no setting recorded in these summaries: the run folder tells them apart
    assert list(table["settings"]) == ["localization-aaaa", "localization-bbbb"] and list(table["loc_err_top1"]) == [1.0, 2.0]


def test_a_figure_comes_before_its_interval_and_counts_last(tmp_path):
    _summary(tmp_path, "occ", "m", "grad_cam", "occlusion_correlation",
             {"ci95_high": 0.4, "ci95_low": 0.2, "mean_rho": 0.3, "n": 16, "n_nan": 0})
    written = generic_tables(collect(tmp_path), tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "occ_occlusion_correlation.csv")
    assert list(table.columns[4:]) == ["mean_rho", "ci95_low", "ci95_high", "n", "n_nan"] and len(written) == 3


def test_look_alike_rows_name_the_settings_that_differ(tmp_path):
    for run, threshold in (("localization-aaaa", 0.15), ("localization-bbbb", 0.3)):
        folder = tmp_path / "runs" / "mine" / "m" / "grad_cam" / "ds" / run
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({
            "config": {"experiment_name": "mine"}, "model": "m", "method": "grad_cam", "dataset": "ds",
            "metric": "localization", "status": "finished", "metrics": {"loc_err_top1": 10 * threshold, "n_images": 4},
            "protocol": {"threshold": threshold, "topk": 5}}))
    generic_tables(collect(tmp_path), tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "mine_localization.csv")
    assert table["settings"].tolist() == ["protocol.threshold=0.15", "protocol.threshold=0.3"]
