"""Recorded bench results and the docs tables rendered from them.

    python -m benchmark.perf.recorded --record results/bench/full   # copy a run's sections here
    python -m benchmark.perf.recorded --write                       # rewrite the docs' blocks
    python -m benchmark.perf.recorded                               # check: exit 1 if a block differs

A bench run (``python -m benchmark.perf [--sections engines,ecosystem]``) writes CSVs and
``run.json``; ``--record`` copies the CSVs of the sections it ran to ``results/recorded/bench/``
with ``<section>.json``: the run's machine facts (CPU, cores, threads, load average at start and
end), versions, date and commit. The docs hold generated blocks between ``<!-- bench:NAME -->``
and ``<!-- /bench -->``; every block is rendered from the recorded files only, so a figure about
the bench in the docs is one that a recorded run measured.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
from pathlib import Path

from benchmark.perf import estimates

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "results" / "recorded" / "bench"
DOCS = ("README.md", "docs/occlusion.md", "docs/ecosystem.md", "docs/tables.md")
SECTION_FILES = {"engines": "occlusion_engines", "ecosystem": "ecosystem"}
FACTS = ("date", "device", "cpu_model", "cpus", "threads", "load_avg_start", "load_avg_end", "wall_s", "budget_s")
GPUS = 8  # the N of the N-GPU estimates (the Slurm sweep's shard count in the docs' examples)
BLOCK = re.compile(r"(<!-- bench:([\w-]+) -->\n)(.*?)(<!-- /bench -->)", re.S)


def record(run_dir: Path, dest: Path = RECORDED) -> list[Path]:
    """Copy the CSVs of the sections ``run_dir`` ran, with their run facts, to ``dest``."""
    meta_path = Path(run_dir) / "run.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: no run.json; expected the --out folder of a benchmark.perf run")
    meta = json.loads(meta_path.read_text())
    if meta.get("quick", True):
        raise ValueError(f"{meta_path}: field 'quick' is {meta.get('quick')!r}; expected false (a full run)")
    facts = {k: meta.get(k) for k in FACTS}
    facts.update(torch=(meta.get("versions") or {}).get("torch"), commit=(meta.get("git") or {}).get("commit"),
                 dirty=(meta.get("git") or {}).get("dirty"), notes=meta.get("notes", []))
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for section, stem in SECTION_FILES.items():
        src = Path(run_dir) / f"{stem}.csv"
        if "all" not in meta.get("sections", ["all"]) and section not in meta["sections"]:
            continue
        if not src.is_file():
            raise FileNotFoundError(f"{src}: missing; run.json says section {section!r} ran")
        shutil.copyfile(src, dest / src.name)
        notes = [n for n in facts["notes"] if n.startswith({"engines": "occlusion engines", "ecosystem": "ecosystem"}[section])]
        (dest / f"{stem}.json").write_text(json.dumps({**facts, "notes": notes}, indent=2) + "\n")
        written += [dest / src.name, dest / f"{stem}.json"]
    return written


def _read(dest: Path, stem: str, fields: tuple[str, ...]) -> tuple[list[dict], dict]:
    """Rows of ``<stem>.csv`` (each with ``fields``) and the facts of ``<stem>.json``."""
    path = dest / f"{stem}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; record a full bench run (python -m benchmark.perf.recorded --record)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        for field in fields:
            if row.get(field) in (None, ""):
                raise ValueError(f"{path}: row {i + 2} has no field {field!r}; expected a value in every row")
    return rows, json.loads((dest / f"{stem}.json").read_text())


def _num(v: str, digits: int = 3) -> str:
    x = float(v)
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def _provenance(facts: dict) -> str:
    load = facts.get("load_avg_start") or [float("nan")]
    end = facts.get("load_avg_end") or [float("nan")]
    busy = load[0] > 0.5 * (facts.get("cpus") or 1) or end[0] > 0.5 * (facts.get("cpus") or 1)
    commit = (facts.get("commit") or "?")[:7] + (" plus uncommitted changes" if facts.get("dirty") else "")
    return (f"Recorded {facts.get('date')} at commit {commit}: {facts.get('cpu_model')}, {facts.get('cpus')} cores, "
            f"{facts.get('threads')} threads, torch {facts.get('torch')}, one-minute load average "
            f"{load[0]:.2f} at the start and {end[0]:.2f} at the end"
            + (" (a shared, loaded machine: absolute figures are low, ratios of contenders timed in the same rounds "
               "are the figures to compare)." if busy else "."))


ENGINE_FIELDS = ("model", "stride", "rounds", "captum_maps_per_s", "plain_maps_per_s", "incremental_maps_per_s",
                 "plain_vs_captum", "plain_flop_bound", "incremental_vs_captum", "incremental_flop_bound",
                 "incremental_vs_plain", "incremental_vs_plain_flop_bound", "gmac_per_window", "max_diff_rel")


def occlusion(dest: Path) -> str:
    """Maps/s of the three contenders, their ratios beside the FLOP bounds, targets, and the profile."""
    rows, facts = _read(dest, "occlusion_engines", ENGINE_FIELDS)
    out = ["| model | stride | rounds | maps/s Captum | plain | incremental | plain / Captum (bound) "
           "| incremental / Captum (bound) | incremental / plain (bound) | target | GMAC per window, incremental "
           "of full | max_diff_rel |", "|" + "---|" * 12]
    for r in rows:
        target = f"≥ {_num(r['target'])}×: {'met' if r['holds'] == 'True' else 'missed'}" if r.get("target") else "–"
        out.append(f"| {r['model']} | {r['stride']} | {r['rounds']} | {_num(r['captum_maps_per_s'])} "
                   f"| {_num(r['plain_maps_per_s'])} | {_num(r['incremental_maps_per_s'])} "
                   f"| {_num(r['plain_vs_captum'])} ({_num(r['plain_flop_bound'])}) "
                   f"| {_num(r['incremental_vs_captum'])} ({_num(r['incremental_flop_bound'])}) "
                   f"| {_num(r['incremental_vs_plain'])} ({_num(r['incremental_vs_plain_flop_bound'])}) "
                   f"| {target} | {r['gmac_per_window']} | {float(r['max_diff_rel']):.1e} |")
    out += ["", _provenance(facts), "", "Incremental time per graph node (largest eight, share of the call):", ""]
    out += [f"- {r['model']}, stride {r['stride']}: {r.get('profile') or '(not recorded)'}" for r in rows]
    return "\n".join(out)


def table2(dest: Path) -> str:
    """Table 2's occlusion wall time with each engine, from the recorded speed-up on VGG-16."""
    rows, facts = _read(dest, "occlusion_engines", ENGINE_FIELDS)
    est = estimates.table2_occlusion(rows, GPUS)
    out = [f"| engine | speed-up over plain | 1 GPU | {GPUS} GPUs (Slurm shards) |", "|---|---|---|---|"]
    out += [f"| {e['engine']} | {e['speedup']:.2f}× | {e['time_1_gpu']} | {e['time_n_gpus']} |" for e in est]
    stride = min(int(r["stride"]) for r in rows if r["model"] == "vgg16")
    out += ["", f"Speed-ups: VGG-16, patch 35, stride {stride} (the smallest timed), recorded {facts.get('date')} "
            f"(commit {(facts.get('commit') or '?')[:7]}); 2 510 images, {estimates.GPU_TFLOPS:g} effective TFLOP/s "
            "per GPU; `benchmark/perf/estimates.py:table2_occlusion`."]
    return "\n".join(out)


def table2_summary(dest: Path) -> str:
    """One sentence for the Table 2 entry of docs/tables.md."""
    rows, _ = _read(dest, "occlusion_engines", ENGINE_FIELDS)
    est = {e["engine"]: e for e in estimates.table2_occlusion(rows, GPUS)}
    inc, flop, plain = est["incremental, measured"], est["incremental, FLOP bound"], est["plain"]
    return (f"- **Expected runtime on one GPU**: about {inc['time_1_gpu']} with the incremental occlusion engine "
            f"(its {inc['speedup']:.2f}× speed-up over plain forwards measured on a CPU; {flop['time_1_gpu']} at "
            f"its FLOP-count ratio, {flop['speedup']:.2f}×; {plain['time_1_gpu']} with `engine=plain`), almost all "
            f"of it occlusion; {inc['time_n_gpus']} ({flop['time_n_gpus']}; {plain['time_n_gpus']}) on {GPUS} "
            f"GPUs (`LAUNCHER=slurm`, `dataset.num_shards={GPUS}`). From the recorded bench run: docs/occlusion.md.")


ECO_FIELDS = ("model", "family", "adapter", "adapter_maps_per_s", "library_maps_per_s", "adapter_over_library",
              "min", "max", "rounds")


def ecosystem(dest: Path) -> str:
    """Each adapter family's maps/s against its library called directly."""
    rows, facts = _read(dest, "ecosystem", ECO_FIELDS)
    out = ["| model | family | adapter | adapter maps/s | library maps/s | adapter / library [min, max] | rounds |",
           "|---|---|---|---|---|---|---|"]
    out += [f"| {r['model']} | {r['family']} | `{r['adapter']}` | {_num(r['adapter_maps_per_s'])} "
            f"| {_num(r['library_maps_per_s'])} | {_num(r['adapter_over_library'])} "
            f"[{_num(r['min'])}, {_num(r['max'])}] | {r['rounds']} |" for r in rows]
    return "\n".join(out + ["", _provenance(facts)])


BLOCKS = {"occlusion": occlusion, "table2": table2, "table2-summary": table2_summary, "ecosystem": ecosystem}


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
    args = parser.parse_args(argv)
    if args.record:
        for path in record(args.record):
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
