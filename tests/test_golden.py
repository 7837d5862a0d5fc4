"""Golden demo tables: the comparison rules, a rerun of sample jobs, README blocks, the full demo (slow)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmark.report import golden, golden_docs
from benchmark.models import shipped

REPO = Path(__file__).resolve().parents[1]


def _run(args, cache, cwd=REPO):
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_CACHE"}  # not a tiny cache another test set
    env = {**env, "PYTHONUNBUFFERED": "1"} | ({"BENCHMARK_CACHE": str(cache)} if cache else {})
    out = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_every_demo_table_is_golden():
    names = {p.name for p in golden.GOLDEN_DIR.glob("demo_*.csv")}
    assert names >= {"demo_localization.csv", "demo_ablations.csv", "demo_cam_protocol.csv", "demo_layers.csv",
                     "demo_pointing.csv", "demo_pointing_modified.csv", "demo_occlusion.csv"}
    for name in names:  # no published number and no difference from one beside toy numbers (Δ vs a method is fine)
        columns = pd.read_csv(golden.GOLDEN_DIR / name).columns
        assert not [c for c in columns if "paper" in c.lower() or "published" in c.lower()], name


def test_every_demo_experiment_has_a_golden_table():
    from benchmark.demo import EXPERIMENTS
    from benchmark.report.specs import SPECS

    names = {p.name for p in golden.GOLDEN_DIR.glob("demo_*.csv")}
    covered = {e for spec in SPECS if f"{spec.name}.csv" in names for e in spec.experiments}
    generic = {e for e in EXPERIMENTS if any(n.startswith(f"{e}_") for n in names)}  # <experiment>_<metric>.csv
    assert [e for e in EXPERIMENTS if f"{e}.csv" not in names and e not in covered | generic] == []


def test_counts_are_exact_and_rates_within_their_tolerance():
    table = pd.read_csv(golden.GOLDEN_DIR / "demo_localization.csv")
    assert golden.compare_frames("t", table, table.copy()) == []
    near = table.copy()
    near.loc[0, "loc err top-1 (%)"] += 0.4  # within 0.5 points
    assert golden.compare_frames("t", table, near) == []
    far = table.copy()
    far.loc[0, "loc err top-1 (%)"] += 0.6
    assert "column 'loc err top-1 (%)'" in golden.compare_frames("t", table, far)[0]
    count = table.copy()
    count.loc[0, "n images"] += 1
    assert "column 'n images'" in golden.compare_frames("t", table, count)[0]
    occ = pd.read_csv(golden.GOLDEN_DIR / "demo_occlusion.csv")
    rho = occ.copy()
    rho.loc[0, "mean rho"] += 0.02  # a correlation: tolerance 0.01
    assert golden.compare_frames("o", occ, rho) and golden.tolerance("mean rho") == golden.FRACTION_TOL
    assert golden.compare_frames("o", occ, occ.iloc[1:]) == [f"o: {len(occ) - 1} rows, golden {len(occ)}"]
    theta = pd.read_csv(golden.GOLDEN_DIR / "demo_pointing_modified.csv")
    near, far = theta.copy(), theta.copy()
    near["θ"] = near["θ"] * 1.01  # θ is a raw map value: compared relative to itself
    far["θ"] = far["θ"] * 1.05
    assert golden.compare_frames("m", theta, near) == [] and golden.compare_frames("m", theta, far)


def test_demo_tables_present_here_match_the_golden_ones():
    tables = REPO / "results" / "tables"
    present = [p for p in golden.GOLDEN_DIR.glob("demo_*.csv") if (tables / p.name).is_file()]
    if not present:
        pytest.skip("no demo tables under results/tables (make demo writes them)")
    problems = []
    for path in present:
        problems += golden.compare_frames(path.name, pd.read_csv(path), pd.read_csv(tables / path.name))
    assert problems == []


def _sample_jobs(results, cache, extra=()):
    """The sample jobs as ``make demo`` runs them (``benchmark.demo``: its plan, its in-process runner)."""
    from benchmark.demo import plan, run_plan

    assert os.environ["BENCHMARK_CACHE"] == str(cache)
    for experiment, model, method, _ in golden.SAMPLE_JOBS:
        overrides = [f"model={model}", f"method={method}", f"dataset.limit={golden.SAMPLE_IMAGES}", "batch_size=8",
                     "progress=false", f"paths.results={results}", *(extra if model == "toy_vgg" else ())]
        jobs = plan([experiment], overrides)
        assert len(jobs[experiment]) == 1
        assert run_plan(jobs, overrides, workers=1) == 0
    return golden.sample_records(results)


def test_sample_jobs_rerun_as_recorded_and_fail_with_altered_weights(tiny_synthetic, tmp_path):
    """The tiny cache's val images 1-24 are the default val images 1-24 (one generator per image)."""
    recorded = golden.read_samples(golden.GOLDEN_DIR / golden.SAMPLES)
    assert golden.compare_samples(recorded, _sample_jobs(tmp_path / "same", tiny_synthetic)) == []
    state = torch.load(shipped.weight_path("toy_vgg"), weights_only=True)
    state["features.0.weight"] = state["features.0.weight"] * 1.5  # an altered toy weight file
    altered = tmp_path / "toy_vgg_altered.pt"
    torch.save(state, altered)
    fresh = _sample_jobs(tmp_path / "altered", tiny_synthetic, [f"model.checkpoint={altered}"])
    problems = golden.compare_samples(recorded, fresh)
    assert problems and all(p.startswith("demo/toy_vgg/grad_cam") for p in problems)


def test_readme_and_docs_figures_equal_the_golden_tables(tmp_path):
    docs = golden_docs.documents()
    blocks = {m.group(2) for path in docs if path.is_file() for m in golden_docs.BLOCK.finditer(path.read_text())}
    assert blocks == set(golden_docs.BLOCKS)  # every demo table is quoted somewhere, from its golden file
    for path in docs:
        if path.is_file():
            text = path.read_text()
            assert golden_docs.rewrite_text(text) == text, f"{path}: run python -m benchmark.report.golden --readme"
    changed = tmp_path / "golden"
    shutil.copytree(golden.GOLDEN_DIR, changed)
    table = pd.read_csv(changed / "demo_pointing.csv")
    table.loc[0, "all: class-mean acc (%)"] += 1
    table.to_csv(changed / "demo_pointing.csv", index=False)
    readme = (REPO / "README.md").read_text()
    assert golden_docs.rewrite_text(readme, changed) != readme or "golden:pointing" not in readme


@pytest.mark.slow
def test_full_demo_reproduces_the_golden_tables(tmp_path):
    """The whole demo (about 10-25 min on 2 cores) into a fresh results folder, then the comparison."""
    results = tmp_path / "results"
    _run(["-m", "benchmark.training"], None)
    _run(["-m", "benchmark.demo", f"paths.results={results}"], None)
    _run(["-m", "benchmark.report", "--results", str(results), "--experiment", "demo"], None)
    assert golden.compare_dirs(results / "tables") == []


def test_p_value_columns_have_their_own_tolerance():
    assert golden.tolerance("p (Holm)") == golden.P_TOL and golden.tolerance("failed images") == 0.0
    table = pd.DataFrame({"model": ["m"], "method": ["g"], "p (Holm)": [0.20]})
    near, far = table.copy(), table.copy()
    near["p (Holm)"] += 0.04
    far["p (Holm)"] += 0.06
    assert golden.compare_frames("t", table, near) == [] and "p (Holm)" in golden.compare_frames("t", table, far)[0]
