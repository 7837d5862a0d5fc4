"""``python -m benchmark.demo.ecosystem``: pytorch-grad-cam and Captum methods beside Grad-CAM on the demo data.

``make demo-ecosystem`` runs it. It prepares the five real photos (``data_prep.real_photos``), runs
the unfinished jobs of the four ecosystem experiments in this process (as ``benchmark.demo`` does):

* ``demo_ecosystem``: localization (Table 1 protocol) on the synthetic val split, toy_vgg and toy_gap;
* ``demo_ecosystem_pointing``: the pointing game on the synthetic multi-object test split, toy_gap_multi;
* ``demo_ecosystem_photos_pointing`` / ``_localization``: the real photos with EfficientNet-Lite0,
  where Score-CAM and Ablation-CAM also run, for pointing only (one forward pass per channel and class:
  too slow for the other sweeps on two cores), and FullGrad does not (over 10 minutes for five photos);

then writes ``results/tables/demo_ecosystem.md`` and ``.csv`` from the runs' ``summary.json`` files
(never from printed output): one row per method, one column per (experiment, model, metric). Extra
arguments are Hydra overrides passed to every experiment; ``--table-only`` rebuilds the table from
the runs that exist without running anything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from benchmark.demo import plan, results_and_cache, run_plan
from benchmark.demo.runner import configure_logging
from benchmark.report.tables import collect as collect_runs, write_table

# the photos first: the table's Score-CAM and Ablation-CAM columns come from them
EXPERIMENTS = ("demo_ecosystem_photos_pointing", "demo_ecosystem_photos_localization", "demo_ecosystem_pointing",
               "demo_ecosystem")
# (experiment, metric key in summary.json, column title); the model is added to the title
COLUMNS = [("demo_ecosystem", "loc_err_top1", "synthetic loc err top-1 %"),
           ("demo_ecosystem", "gt_known_loc_acc", "synthetic GT-known loc acc %"),
           ("demo_ecosystem_pointing", "acc_class_mean", "synthetic pointing acc %"),
           ("demo_ecosystem_photos_pointing", "acc_pooled", "photos pointing acc %"),
           ("demo_ecosystem_photos_localization", "gt_known_loc_acc", "photos GT-known loc acc %")]


def family(method: str) -> str:
    return "pytorch-grad-cam" if method.startswith("pgc_") else "captum" if method.startswith("captum_") else "suite"


def collect(results: Path) -> pd.DataFrame:
    """One row per finished run of the ecosystem experiments: experiment, model, method, metrics.

    Run folders are found at any depth (``<model>/<method>/<dataset>/<metric>-<hash>``), shards through
    their merged summary, as the paper tables read them.
    """
    frames = []
    for exp in EXPERIMENTS:
        runs = collect_runs(results, exp)
        if len(runs):
            frames.append(runs[runs["status"] == "finished"].assign(experiment=exp))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """Methods x (experiment, model, metric) columns; Grad-CAM first, then by family and name."""
    columns = {}
    for exp, key, title in COLUMNS:
        part = runs[runs["experiment"] == exp] if len(runs) else runs
        for model in sorted(part["model"].unique()) if len(part) else []:
            sub = part[part["model"] == model]
            n = int(sub["n_images"].max())
            columns[f"{title} ({model}, n={n})"] = sub.set_index("method")[key]
    out = pd.DataFrame(columns)
    out.index.name = "method"
    order = sorted(out.index, key=lambda m: (m != "grad_cam", ["suite", "pytorch-grad-cam", "captum"].index(family(m)), m))
    out = out.loc[order]
    out.insert(0, "family", [family(m) for m in out.index])
    return out


def write(frame: pd.DataFrame, out: Path) -> list[Path]:
    """``demo_ecosystem.md``, ``.csv`` and ``.tex`` under ``out``, with a note on how they were made."""
    notes = ["Made by `python -m benchmark.demo.ecosystem` (`make demo-ecosystem`) from the runs' summary.json files. "
             "Synthetic: embedded data, toy models (`demo_ecosystem`, `demo_ecosystem_pointing`); photos: five real "
             "photos, EfficientNet-Lite0 with ImageNet weights. An empty cell: not run there (Score-CAM and "
             "Ablation-CAM run on the photos' pointing game only; FullGrad on the synthetic data only). Maps are raw; every metric applies its protocol's normalization."]
    return write_table(frame.reset_index(), out, "demo_ecosystem", "Ecosystem methods beside Grad-CAM (demo data)", notes)


def main(argv: list[str] | None = None) -> int:
    overrides = list(sys.argv[1:] if argv is None else argv)
    table_only = "--table-only" in overrides  # rebuild the table from the runs that exist, run nothing
    overrides = [o for o in overrides if o != "--table-only"]
    configure_logging()
    results, _ = results_and_cache(overrides)
    if not table_only:
        if subprocess.call([sys.executable, "-m", "data_prep.real_photos"]):
            return 1
        code = run_plan(plan(EXPERIMENTS, overrides), overrides)
        if code:
            return code
    for path in write(table(collect(results)), results / "tables"):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
