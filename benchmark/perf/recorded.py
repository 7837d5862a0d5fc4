"""Recorded bench results and the docs tables rendered from them.

    make bench-record                                                # a quiet machine: run, record, rewrite
    python -m benchmark.perf.recorded --record results/bench/record  # copy a run's recorded sections here
    python -m benchmark.perf.recorded --write                        # rewrite the docs' blocks
    python -m benchmark.perf.recorded                                # check: exit 1 if a block differs

A bench run (``python -m benchmark.perf [--sections engines,ecosystem,pipeline]``) writes CSVs and
``run.json``; ``--record`` copies the CSVs of the recorded sections it ran (``sections.SECTIONS``)
to ``results/recorded/bench/`` with ``<stem>.json``: the run's machine facts (CPU, cores, threads,
load average at start and end, quiet or loaded, rounds), versions, date and commit. It refuses a
run that breaks the recording policy (``policy.py``: a quick or verify run, fewer than
``MIN_ROUNDS`` rounds, a loaded machine unless ``--allow-loaded``), writing nothing. The docs hold
generated blocks between ``<!-- bench:NAME -->`` and ``<!-- /bench -->``; every block is rendered
from the recorded files only (``blocks.py``), so a figure about the bench in the docs is one that a
recorded run measured, shown with its range and its load.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from benchmark.perf import policy
from benchmark.perf.blocks import BLOCKS
from benchmark.perf.sections import SECTIONS

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "results" / "recorded" / "bench"
DOCS = ("README.md", "docs/occlusion.md", "docs/ecosystem.md", "docs/tables.md", "docs/performance.md")
FACTS = ("date", "device", "cpu_model", "cpus", "threads", "load_avg_start", "load_avg_end", "load_avg_between",
         "max_load", "other_cores_between", "other_cores_max", "max_other_cores", "load_state", "rounds",
         "wall_s", "budget_s")
BLOCK = re.compile(r"(<!-- bench:([\w-]+) -->\n)(.*?)(<!-- /bench -->)", re.S)


class RefusedRecording(ValueError):
    """A run that the recording policy does not accept (loaded machine, too few rounds, quick, verify)."""


def _policy_check(meta: dict, path: Path, allow_loaded: bool) -> None:
    """Raise ``RefusedRecording`` naming the field where ``meta`` breaks the recording policy."""
    for field, bad in (("quick", True), ("verify", True)):
        if meta.get(field, field == "quick") is bad:
            raise RefusedRecording(f"{path}: field {field!r} is {meta.get(field)!r}; expected false (a full run)")
    rounds = meta.get("rounds") or [0]
    if rounds[0] < policy.MIN_ROUNDS:
        raise RefusedRecording(f"{path}: field 'rounds' is {rounds!r}; expected at least {policy.MIN_ROUNDS} rounds "
                               "per comparison (run python -m benchmark.perf without --quick)")
    if meta.get("load_state") != "quiet" and not allow_loaded:
        raise RefusedRecording(
            f"{path}: field 'load_state' is {meta.get('load_state')!r} (load average {meta['load_avg_start'][0]:.2f} "
            f"at the start, limit {meta.get('max_load')}; {meta['load_avg_end'][0]:.2f} at the end; other processes "
            f"used {_cores(meta.get('other_cores_max'))} during a section, limit {_cores(meta.get('max_other_cores'))}); "
            "expected 'quiet': rerun on a quiet machine, or pass --allow-loaded to record it marked loaded")


def _cores(value) -> str:
    return "? cores" if value is None else f"{float(value):.2f} cores"


def record(run_dir: Path, dest: Path = RECORDED, allow_loaded: bool = False) -> list[Path]:
    """Copy the CSVs of the recorded sections ``run_dir`` ran, with their run facts, to ``dest``.

    Refused (``RefusedRecording``, nothing written) unless the run is a full one with at least
    ``policy.MIN_ROUNDS`` rounds on a quiet machine; ``allow_loaded`` records a loaded run, marked so."""
    meta_path = Path(run_dir) / "run.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: no run.json; expected the --out folder of a benchmark.perf run")
    meta = json.loads(meta_path.read_text())
    _policy_check(meta, meta_path, allow_loaded)
    facts = {k: meta.get(k) for k in FACTS}
    facts.update(torch=(meta.get("versions") or {}).get("torch"), commit=(meta.get("git") or {}).get("commit"),
                 dirty=(meta.get("git") or {}).get("dirty"))
    ran = [s for name, s in SECTIONS.items() if "all" in meta.get("sections", ["all"]) or name in meta["sections"]]
    for s in ran:
        if not (Path(run_dir) / f"{s.stem}.csv").is_file():
            raise FileNotFoundError(f"{Path(run_dir) / (s.stem + '.csv')}: missing; run.json says section {s.name!r} ran")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for s in ran:
        shutil.copyfile(Path(run_dir) / f"{s.stem}.csv", dest / f"{s.stem}.csv")
        notes = [n for n in meta.get("notes", []) if n.startswith(s.note_prefix)]
        (dest / f"{s.stem}.json").write_text(json.dumps({**facts, "notes": notes}, indent=2) + "\n")
        written += [dest / f"{s.stem}.csv", dest / f"{s.stem}.json"]
    return written


def render(text: str, dest: Path = RECORDED, source: str = "<text>") -> str:
    """``text`` with every ``<!-- bench:NAME -->`` block replaced by its rendering."""
    def one(m: re.Match) -> str:
        if m.group(2) not in BLOCKS:
            raise ValueError(f"{source}: block <!-- bench:{m.group(2)} -->; expected one of {', '.join(BLOCKS)}")
        return f"{m.group(1)}{BLOCKS[m.group(2)](dest)}\n{m.group(4)}"
    return BLOCK.sub(one, text)


def stale(root: Path = REPO, dest: Path = RECORDED) -> list[str]:
    """The docs whose blocks differ from their rendering from the recorded results."""
    return [doc for doc in DOCS if (root / doc).is_file()
            and render((root / doc).read_text(), dest, doc) != (root / doc).read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf.recorded", description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="a full run's --out folder: copy its sections' CSVs and facts")
    parser.add_argument("--write", action="store_true", help="rewrite the docs' blocks (default: only check them)")
    parser.add_argument("--allow-loaded", action="store_true",
                        help="record a run made on a loaded machine (the docs then say 'loaded' beside it)")
    args = parser.parse_args(argv)
    if args.record:
        try:
            paths = record(args.record, allow_loaded=args.allow_loaded)
        except (RefusedRecording, FileNotFoundError) as err:
            print(f"not recorded: {err}", file=sys.stderr)
            return 2
        for path in paths:
            print(f"recorded {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    if args.write:
        for doc in DOCS:
            path = REPO / doc
            if path.is_file() and (new := render(path.read_text(), RECORDED, doc)) != path.read_text():
                path.write_text(new)
                print(f"rewrote {doc}")
        return 0
    bad = stale()
    for doc in bad:
        print(f"{doc}: a bench block differs from results/recorded/bench (python -m benchmark.perf.recorded --write)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
