"""The randomization figure and its table: per-layer means of the runs' records, one line per method."""

import pandas as pd
import pytest

from benchmark.report.sanity_figure import sanity_figures


def _run(tmp_path, method, values):
    folder = tmp_path / "runs" / method
    folder.mkdir(parents=True)
    rows = [{"image_id": f"i{k}", "class_id": 0, "layers": ["fc", "conv"],
             **{f"cascading_{m}": list(v) for m in ("spearman", "spearman_abs", "ssim", "hog")}}
            for k, v in enumerate(values)]
    pd.DataFrame(rows).to_parquet(folder / "records.parquet")
    return {"experiment": "demo_sanity", "model": "toy", "method": method, "metric": "sanity_model_randomization",
            "status": "finished", "path": str(folder)}


def test_figure_and_table_hold_the_per_layer_means(tmp_path):
    frame = pd.DataFrame([_run(tmp_path, "gradient", [(1.0, 0.2), (0.5, 0.0)]),
                          _run(tmp_path, "grad_cam", [(0.8, 0.4), (0.6, 0.2)]),
                          {"experiment": "demo", "model": "toy", "method": "x", "metric": "localization",
                           "status": "finished", "path": str(tmp_path)}])
    written = sanity_figures(frame, tmp_path / "tables")
    assert sorted(p.name for p in written) == [f"demo_sanity_toy_randomization.{ext}" for ext in ("csv", "md", "png", "tex")]
    assert all(p.stat().st_size > 0 for p in written)
    table = pd.read_csv(tmp_path / "tables" / "demo_sanity_toy_randomization.csv")
    gradient = table[table["method"] == "gradient"].set_index("layer")
    assert gradient.loc["fc", "ssim"] == pytest.approx(0.75) and gradient.loc["conv", "hog"] == pytest.approx(0.1)
    assert list(gradient["step"]) == [1, 2]
    assert sanity_figures(frame.iloc[2:], tmp_path / "none") == []
    assert sanity_figures(frame, tmp_path / "other", experiment="sanity_checks") == []


def test_a_model_name_that_is_a_path_writes_nothing(tmp_path, capsys):
    run = _run(tmp_path, "gradient", [(1.0, 0.2)])
    frame = pd.DataFrame([{**run, "model": "../../escape"}])
    assert sanity_figures(frame, tmp_path / "out" / "tables") == []
    assert not list(tmp_path.rglob("*escape*")) and not (tmp_path / "out").exists()
    assert "skipped: the randomization figure" in capsys.readouterr().err
