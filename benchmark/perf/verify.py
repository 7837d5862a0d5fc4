"""``python -m benchmark.perf --verify``: do the recorded bench ratios reproduce?

    python -m benchmark.perf --verify [--sections engines] [--budget 120] [--tolerance 0.25]
    make bench-verify

Reruns every recorded section (``sections.SECTIONS`` with a CSV in ``results/recorded/bench/``)
with the recorded settings, ``policy.VERIFY_ROUNDS`` rounds and a small budget, then compares each
fresh ratio (the median of its rounds) with its recorded range ``[R_min, R_max]`` widened by the
tolerance (``policy.verify_bounds``). A recording without a range (one made before ranges were
kept) counts as the range ``[R, R]``. Exit status: 0 every ratio inside, 1 some ratio outside,
2 nothing recorded to verify, 3 refused on a loaded machine (``--quiet-only``). The table is
printed and written to ``verify.csv`` in the run folder; a loaded run says so beside its verdict.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from benchmark.perf import report
from benchmark.perf.policy import verify_bounds
from benchmark.perf.recorded import RECORDED
from benchmark.perf.sections import SECTIONS

BUDGET_S = 120.0
COLUMNS = ["section", "row", "ratio", "recorded", "recorded_min", "recorded_max", "low", "high", "fresh", "inside"]


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV file as dicts of strings."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def recorded_sections(chosen: set[str], dest: Path | None = None) -> list[str]:
    """The registered sections (all, or those in ``chosen``) that have a recorded CSV under ``dest``."""
    dest = dest or RECORDED
    return [name for name, s in SECTIONS.items()
            if ("all" in chosen or name in chosen) and (Path(dest) / f"{s.stem}.csv").is_file()]


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def compare(section: str, recorded: list[dict], fresh: list[dict], tolerance: float) -> list[dict]:
    """One row per (recorded row, ratio): the recorded range, its widened bounds, the fresh value, inside or not.

    A recorded ratio that is empty (not measured there) is skipped; a fresh row that is missing or
    empty where the recording has a value counts as outside."""
    spec = SECTIONS[section]
    by_key = {tuple(r.get(k) for k in spec.keys): r for r in fresh}
    out = []
    for rec in recorded:
        key = tuple(rec.get(k) for k in spec.keys)
        for ratio in spec.ratios:
            mid = _float(rec.get(ratio))
            if math.isnan(mid):
                continue
            lo, hi = _float(rec.get(f"{ratio}_min")), _float(rec.get(f"{ratio}_max"))
            lo, hi = (mid, mid) if math.isnan(lo) or math.isnan(hi) else (lo, hi)
            low, high = verify_bounds(lo, hi, tolerance)
            value = _float((by_key.get(key) or {}).get(ratio))
            out.append({"section": section, "row": " ".join(map(str, key)), "ratio": ratio, "recorded": mid,
                        "recorded_min": lo, "recorded_max": hi, "low": low, "high": high, "fresh": value,
                        "inside": bool(low <= value <= high)})
    return out


def check(run_dir: Path, names: list[str], tolerance: float, dest: Path | None = None) -> list[dict]:
    """``compare`` for every section in ``names``: the run folder's CSVs against the recorded ones."""
    rows, dest = [], dest or RECORDED
    for name in names:
        stem = SECTIONS[name].stem
        rows += compare(name, read_rows(Path(dest) / f"{stem}.csv"), read_rows(Path(run_dir) / f"{stem}.csv"), tolerance)
    return rows


def report_and_status(run_dir: Path, names: list[str], tolerance: float, load_state: str,
                      dest: Path | None = None) -> int:
    """Print and write the verification table; the exit status (see the module docstring)."""
    dest = dest or RECORDED
    if not names:
        print(f"benchmark.perf --verify: no recorded section to verify under {dest}; record one first "
              "(make bench-record)", flush=True)
        return 2
    rows = check(run_dir, names, tolerance, dest)
    report.write_csv(Path(run_dir) / "verify.csv", rows)
    print(report.table(rows, COLUMNS, f"\nVerify: fresh ratios against the recorded [min, max] widened by "
                       f"{tolerance:g} ({load_state} machine)"), flush=True)
    outside = [r for r in rows if not r["inside"]]
    verdict = "every ratio inside its range" if not outside else f"{len(outside)} of {len(rows)} ratios outside"
    note = "" if load_state == "quiet" else " (measured on a loaded machine: rerun when it is quiet)"
    print(f"verify: {verdict}{note}", flush=True)
    return 1 if outside else 0
