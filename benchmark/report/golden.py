"""Golden demo tables: compare a demo's tables with the committed ones, or record a finished demo's.

Usage::

    python -m benchmark.report.golden --check  [--tables results/tables]   # exit 1 on a difference
    python -m benchmark.report.golden --update [--tables results/tables] [--results results]
    python -m benchmark.report.golden --readme                             # rewrite README/docs blocks

``results/golden/demo_*.csv`` are the tables of one ``make demo`` with the shipped toy weights;
``results/golden/sample_records.csv`` holds the per-image records of a few jobs on the first
``SAMPLE_IMAGES`` images of each dataset, so a fast test can rerun those jobs on a tiny cache and
compare. Comparison rules: text and count columns (``COUNT_COLUMNS``) must be equal; a percentage
may differ by ``PERCENT_TOL`` points, any other rate (ρ, fractions) by ``FRACTION_TOL``, and the
modified pointing game's θ (a raw map value, about 0.02 on the demo) by ``THETA_REL`` of itself, a
p-value (columns ``p ...``) by ``P_TOL`` (one flipped image moves an exact McNemar p far more than the rate):
on another CPU, float differences in a map can move its maximum or its threshold by one pixel,
which flips the verdict of an image now and then (one image of 500 is 0.2 points).
"""

from __future__ import annotations

import argparse
import io
import math
import re
import shutil
import sys
from pathlib import Path

import pandas as pd

from benchmark.report.golden_docs import GOLDEN_DIR, rewrite_all
PERCENT_TOL = 0.5  # points: two flipped images of 500, about one of the smallest pointing class
FRACTION_TOL = 0.01  # correlations and fractions in [0, 1]
THETA_REL = 0.02  # θ's scale depends on the method: a relative tolerance
P_TOL = 0.05  # p-values of the paired tests
COUNT_COLUMNS = {"n", "n images", "n_images", "n difficult", "n NaN", "n calibration images", "degenerate",
                 "depth", "patch", "stride", "fill", "failed images", "n methods"}
PERCENT = re.compile(r"%|\berr\b|\bacc\b|loc_err|MaxBoxAcc")
INTERVAL = re.compile(r"^\[(-?[\d.]+), (-?[\d.]+)\]$")
SAMPLES = "sample_records.csv"
SAMPLE_IMAGES = 24
# jobs on the single-label val split: image i of a split depends only on (seed, split, i), so a tiny
# cache's first images are the demo's first images
SAMPLE_JOBS = (("demo", "toy_vgg", "grad_cam", "synthetic_val"), ("demo", "toy_gap", "cam", "synthetic_val"))
SAMPLE_COLUMNS = ("iou", "loc_correct_top1", "cls_correct_top1")
SAMPLE_TOL = {"iou": 0.02}  # verdicts (booleans) must be equal


def tolerance(column: str) -> float:
    """Allowed absolute difference of a numeric column (0 for counts; for θ, relative to its value)."""
    if column in COUNT_COLUMNS:
        return 0.0
    if column == "θ":
        return THETA_REL
    if column == "p" or column.startswith("p "):
        return P_TOL
    return PERCENT_TOL if PERCENT.search(column) else FRACTION_TOL


def _num(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def _same(column: str, want, got) -> bool:
    if pd.isna(want) and pd.isna(got):
        return True
    a, b = _num(want), _num(got)
    if a is not None and b is not None:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        scale = max(abs(a), abs(b)) if column == "θ" else 1.0
        return abs(a - b) <= tolerance(column) * scale + 1e-9
    ia, ib = INTERVAL.match(str(want)), INTERVAL.match(str(got))
    if ia and ib:  # a printed confidence interval follows the rate it belongs to
        return all(abs(float(x) - float(y)) <= tolerance(column) + 0.05 for x, y in zip(ia.groups(), ib.groups()))
    return str(want) == str(got)


def compare_frames(name: str, golden: pd.DataFrame, fresh: pd.DataFrame) -> list[str]:
    """Differences between a golden table and a fresh one, one message per cell (empty: they agree)."""
    if list(golden.columns) != list(fresh.columns):
        return [f"{name}: columns {list(fresh.columns)}, golden {list(golden.columns)}"]
    if len(golden) != len(fresh):
        return [f"{name}: {len(fresh)} rows, golden {len(golden)}"]
    problems = []
    for i in range(len(golden)):
        for column in golden.columns:
            want, got = golden.iloc[i][column], fresh.iloc[i][column]
            if not _same(column, want, got):
                key = "/".join(str(golden.iloc[i][c]) for c in ("model", "method", "layer") if c in golden)
                problems.append(f"{name} row {i + 1} ({key}) column {column!r}: {got!r}, golden {want!r} "
                                f"(tolerance {tolerance(column)})")
    return problems


def compare_dirs(tables: Path, golden: Path = GOLDEN_DIR) -> list[str]:
    """Every golden ``demo_*.csv`` against the same file under ``tables`` (a missing one is a difference)."""
    problems = []
    for path in sorted(Path(golden).glob("demo_*.csv")):
        fresh = Path(tables) / path.name
        if not fresh.is_file():
            problems.append(f"{fresh}: missing (golden {path})")
            continue
        problems += compare_frames(path.name, pd.read_csv(path), pd.read_csv(fresh))
    return problems


def sample_records(results: Path, jobs=SAMPLE_JOBS, images: int = SAMPLE_IMAGES) -> pd.DataFrame:
    """The records of ``jobs`` for the first ``images`` image ids of each, in a stable order."""
    frames = []
    for experiment, model, method, dataset in jobs:
        folder = Path(results) / "runs" / experiment / model / method / dataset
        found = sorted(folder.glob("*/records.parquet"))  # <metric>-<folder hash>/ (benchmark.runs.identity)
        if len(found) != 1:
            raise FileNotFoundError(f"{folder}: {len(found)} run folders with records.parquet ({[str(p) for p in found]}); "
                                    "expected one: run the demo (make demo) into a fresh results folder first")
        records = pd.read_parquet(found[0])
        first = sorted(records["image_id"].unique())[:images]
        records = records[records["image_id"].isin(first)]
        keep = ["image_id", "class_id", *[c for c in SAMPLE_COLUMNS if c in records]]
        frame = records[keep].copy()
        frame.insert(0, "job", f"{experiment}/{model}/{method}/{dataset}")
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True).sort_values(["job", "image_id", "class_id"], kind="stable")
    return read_samples(io.StringIO(out.to_csv(index=False)))  # the same types as a golden file read back


def read_samples(source) -> pd.DataFrame:
    """Sample records from a CSV path or text buffer (image ids stay text: VOC ids have leading zeros)."""
    return pd.read_csv(source, dtype={"image_id": str})


def compare_samples(golden: pd.DataFrame, fresh: pd.DataFrame) -> list[str]:
    """Differences between golden sample records and those of a rerun of the same jobs."""
    keys = ["job", "image_id", "class_id"]
    merged = golden.merge(fresh, on=keys, how="outer", suffixes=("", " (fresh)"), indicator=True)
    problems = [f"{r.job} image {r.image_id} class {r.class_id}: only in the "
                f"{'golden' if r._merge == 'left_only' else 'fresh'} records"
                for r in merged[merged["_merge"] != "both"].itertuples()]
    both = merged[merged["_merge"] == "both"]
    for column in [c for c in golden.columns if c not in keys]:
        want, got = both[column], both[f"{column} (fresh)"]
        if column in SAMPLE_TOL:
            bad = ~(((want - got).abs() <= SAMPLE_TOL[column]) | (want.isna() & got.isna()))
        else:
            bad = ~((want == got) | (want.isna() & got.isna()))
        for _, r in both[bad].iterrows():
            problems.append(f"{r['job']} image {r['image_id']} class {r['class_id']} {column}: "
                            f"{r[f'{column} (fresh)']!r}, golden {r[column]!r}")
    return problems


def update(tables: Path, results: Path, golden: Path = GOLDEN_DIR) -> list[Path]:
    """Copy a finished demo's ``demo_*.csv`` and its sample records into ``golden``."""
    sources = sorted(Path(tables).glob("demo_*.csv"))
    if not sources:
        raise FileNotFoundError(f"{tables}: no demo_*.csv; run the demo (make demo) first")
    golden = Path(golden)
    golden.mkdir(parents=True, exist_ok=True)
    for old in golden.glob("demo_*.csv"):
        old.unlink()
    written = []
    for source in sources:
        shutil.copyfile(source, golden / source.name)
        written.append(golden / source.name)
    sample_records(results).to_csv(golden / SAMPLES, index=False)
    return [*written, golden / SAMPLES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.report.golden", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="compare the demo tables with the golden ones")
    action.add_argument("--update", action="store_true", help="record the demo tables as the golden ones")
    action.add_argument("--readme", action="store_true", help="rewrite the demo-figure blocks from the golden tables")
    parser.add_argument("--tables", type=Path, default=Path("results/tables"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    if args.update:
        for path in update(args.tables, args.results):
            print(f"golden: {path}")
        args.readme = True
    if args.readme:
        for path in rewrite_all():
            print(f"demo figures rewritten: {path}")
        return 0
    problems = compare_dirs(args.tables)
    for line in problems:
        print(line, file=sys.stderr)
    print(f"{args.tables}: " + ("matches the golden tables" if not problems else f"{len(problems)} difference(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
