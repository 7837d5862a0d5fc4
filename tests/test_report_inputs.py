"""The report on hostile or broken inputs: names are data, one bad summary never stops the others, tables as a set."""

import errno
import json

import pandas as pd
import pytest

from benchmark.report.__main__ import main


def _summary(root, experiment, method="grad_cam", metric="localization", path_name=None, text=None):
    run = root / "runs" / (path_name or "x") / "net" / method / "ds" / f"{metric}-0000"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(text if text is not None else json.dumps({
        "config": {"experiment_name": experiment}, "model": "net", "method": method, "dataset": "ds", "metric": metric,
        "status": "finished", "metrics": {"loc_err_top1": 40.0, "n_images": 10}}))
    return run / "summary.json"


@pytest.mark.parametrize("name", ["../../escaped", "ABSOLUTE", "~x", "a\x00b", "x" * 300, "é", "..", "-x"])
def test_a_summary_with_an_invalid_experiment_name_is_skipped_by_path(tmp_path, capsys, name):
    root = tmp_path / "root"
    name = str(tmp_path / "outside" / "ABS") if name == "ABSOLUTE" else name  # absolute, but under tmp_path
    bad = _summary(root, name, path_name="bad")
    _summary(root, "good", path_name="good")
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(["--results", str(root)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "not a valid name" in err
    assert (root / "tables" / "good_localization.md").is_file()  # the rest is built
    new = [p for p in tmp_path.rglob("*") if p not in before]
    assert all(root / "tables" in p.parents or p == root / "tables" for p in new), new


def test_shard_named_root_and_experiment_are_read(tmp_path, capsys):
    root = tmp_path / "shard-store" / "results"
    _summary(root, "shard-study", path_name="shard-study")
    assert main(["--results", str(root)]) == 0
    assert "shard-study_localization.md" in capsys.readouterr().out
    assert pd.read_csv(root / "tables" / "shard-study_localization.csv")["loc_err_top1"].tolist() == [40.0]


def test_a_truncated_summary_is_named_and_the_rest_is_built(tmp_path, capsys):
    broken = _summary(tmp_path, "a", path_name="a", text='{"config": {"experiment_name": "a"}, "model"')
    _summary(tmp_path, "b", path_name="b")
    assert main(["--results", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{broken}: unreadable summary (JSONDecodeError" in err and "1 summary file(s) skipped" in err
    assert (tmp_path / "tables" / "b_localization.csv").is_file()


def test_disk_full_during_tables_changes_nothing_and_names_the_path(tmp_path, capsys, monkeypatch):
    _summary(tmp_path, "a", path_name="a")
    assert main(["--results", str(tmp_path)]) == 0
    tables = tmp_path / "tables"
    before = {p.name: p.read_bytes() for p in tables.iterdir()}
    _summary(tmp_path, "a", method="gradient", path_name="a")  # a second row: every file of the set changes
    import benchmark.io as bio

    real = bio.os.replace

    def full(src, dst):
        if str(dst).endswith(".tex"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(bio.os, "replace", full)
    assert main(["--results", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "a_localization.tex" in err and str(tables) in err and "No table was changed" in err
    assert {p.name: p.read_bytes() for p in tables.iterdir()} == before  # old .md and .csv, no half-new set
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tables")]  # temporary folder removed


def test_tables_of_other_experiments_are_kept_when_one_is_rebuilt(tmp_path):
    _summary(tmp_path, "a", path_name="a")
    _summary(tmp_path, "b", path_name="b")
    assert main(["--results", str(tmp_path)]) == 0
    assert main(["--results", str(tmp_path), "--experiment", "a"]) == 0
    assert {p.name for p in (tmp_path / "tables").glob("*.md")} == {"a_localization.md", "b_localization.md"}


def test_console_lists_every_file_written(tmp_path, capsys):
    _summary(tmp_path, "a", path_name="a")
    assert main(["--results", str(tmp_path)]) == 0
    listed = capsys.readouterr().out.split("tables written: ")[1]
    for ext in ("md", "csv", "tex"):
        assert str(tmp_path / "tables" / f"a_localization.{ext}") in listed


def test_layer_table_warns_on_mixed_sample_sizes(tmp_path):
    from benchmark.report.metric_tables import layer_sweep_plot

    frame = pd.DataFrame([{"experiment": "demo_layers", "status": "finished", "model": "toy_vgg", "method": f"grad_cam@features.{i}",
                           "loc_err_top1": 40.0 + i, "n_images": n} for i, n in ((4, 10), (9, 20))])
    written = layer_sweep_plot(frame, "demo_layers", tmp_path)
    assert {p.name for p in written} == {"demo_layers.png", "demo_layers.md", "demo_layers.csv", "demo_layers.tex"}
    md = (tmp_path / "demo_layers.md").read_text()
    assert "Mixed sample sizes: n images is 10, 20" in md
    table = pd.read_csv(tmp_path / "demo_layers.csv")
    assert table["loc err top-1 (%) 95% CI low"].notna().all()


def test_a_kill_between_the_two_renames_is_recovered(tmp_path):
    from benchmark.report.publish import recover

    out = tmp_path / "tables"
    backup = tmp_path / ".tables.old"
    backup.mkdir()
    (backup / "a.md").write_text("old")
    recover(out)  # the new folder never arrived: the old set comes back
    assert (out / "a.md").read_text() == "old" and not backup.exists()
