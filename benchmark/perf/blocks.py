"""The docs' ``<!-- bench:NAME -->`` blocks, rendered from the recorded bench results only.

Every speed-up is shown as ``median [min–max]`` over the rounds of the recorded run
(``policy.ratio_stats``) with the number of rounds; a recording that kept no range (made before
ranges were recorded) says so instead of showing one. Under each table, the run's facts: date,
commit, CPU, cores, threads, torch, the one-minute load average at the start, the other processes'
CPU use during the sections, and the verdict quiet or loaded (``policy.load_state``).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from benchmark.perf import estimates, policy

GPUS = 8  # the N of the N-GPU estimates (the Slurm sweep's shard count in the docs' examples)


def read(dest: Path, stem: str, fields: tuple[str, ...]) -> tuple[list[dict], dict]:
    """Rows of ``<stem>.csv`` (each with ``fields``) and the facts of ``<stem>.json``."""
    path = Path(dest) / f"{stem}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; record a bench run (make bench-record)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        for field in fields:
            if row.get(field) in (None, ""):
                raise ValueError(f"{path}: row {i + 2} has no field {field!r}; expected a value in every row")
    return rows, json.loads((Path(dest) / f"{stem}.json").read_text())


def num(v, digits: int = 3) -> str:
    x = float(v)
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def ratio(row: dict, name: str, lo: str | None = None, hi: str | None = None) -> str:
    """``median [min–max]`` of a recorded ratio, or ``median [no range recorded]``."""
    low, high = row.get(lo or f"{name}_min"), row.get(hi or f"{name}_max")
    if low in (None, "") or high in (None, "") or math.isnan(float(low)):
        return f"{num(row[name])} [no range recorded]"
    return f"{num(row[name])} [{num(low)}–{num(high)}]"


def load_of(facts: dict) -> tuple[float, float, float, str]:
    """Load average at the start and end, the limit of a quiet run's start, and ``quiet`` or ``loaded``."""
    start = (facts.get("load_avg_start") or [math.nan])[0]
    end = (facts.get("load_avg_end") or [math.nan])[0]
    limit = facts.get("max_load") or policy.load_limit(facts.get("cpus") or 1)
    if facts.get("load_state"):
        return start, end, limit, facts["load_state"]
    if facts.get("other_cores_max") is None:  # a recording without the others' CPU use: the end's load decides too
        return start, end, limit, policy.load_state(max(start, end), limit)
    return start, end, limit, policy.load_state(start, limit, facts["other_cores_max"])


def load_words(facts: dict) -> str:
    """``load average S at the start, other processes C cores: quiet`` (``S to E`` where no other processes'
    CPU use is recorded)."""
    start, end, _, state = load_of(facts)
    if facts.get("other_cores_max") is not None:
        return f"load average {start:.2f} at the start, other processes {float(facts['other_cores_max']):.2f} cores: {state}"
    return f"load average {start:.2f} to {end:.2f}: {state}"


def provenance(facts: dict, rounds: list[int] | None = None) -> str:
    """One paragraph: where and when the run was recorded, its load, and what a loaded run means."""
    start, end, limit, state = load_of(facts)
    commit = (facts.get("commit") or "?")[:7] + (" plus uncommitted changes" if facts.get("dirty") else "")
    text = (f"Recorded {facts.get('date')} at commit {commit}: {facts.get('cpu_model')}, {facts.get('cpus')} cores, "
            f"{facts.get('threads')} threads, torch {facts.get('torch')}; one-minute load average {start:.2f} at the "
            f"start (at most {limit:.2f}, {policy.LOAD_PER_CORE:g} per core, for a quiet run)")
    if facts.get("other_cores_max") is not None:
        text += (f", other processes' CPU use {float(facts['other_cores_max']):.2f} cores at most during a section "
                 f"(at most {float(facts.get('max_other_cores') or policy.other_cpu_limit(facts.get('cpus'))):.2f})")
    else:
        text += f", {end:.2f} at the end"
    text += f": **{state}**."
    if rounds and min(rounds) < policy.MIN_ROUNDS:
        text += (f" {min(rounds)} rounds per comparison, fewer than the {policy.MIN_ROUNDS} a recording now runs.")
    if state == "loaded":
        text += (" On a loaded machine the other processes need not slow every contender alike, so these ratios "
                 "may not reproduce on a quiet one; `make bench-verify` checks them there.")
    return text


ENGINE_FIELDS = ("model", "stride", "rounds", "captum_maps_per_s", "plain_maps_per_s", "incremental_maps_per_s",
                 "plain_vs_captum", "plain_flop_bound", "incremental_vs_captum", "incremental_flop_bound",
                 "incremental_vs_plain", "incremental_vs_plain_flop_bound", "gmac_per_window", "max_diff_rel")


def occlusion(dest: Path) -> str:
    """Maps/s of the three contenders, their ratios with ranges beside the FLOP bounds, targets, and the profile."""
    rows, facts = read(dest, "occlusion_engines", ENGINE_FIELDS)
    out = ["| model | stride | rounds | maps/s Captum | plain | incremental | plain / Captum (bound) "
           "| incremental / Captum (bound) | incremental / plain (bound) | target | GMAC per window, incremental "
           "of full | max_diff_rel |", "|" + "---|" * 12]
    for r in rows:
        target = f"≥ {num(r['target'])}×: {'met' if r['holds'] == 'True' else 'missed'}" if r.get("target") else "–"
        out.append(f"| {r['model']} | {r['stride']} | {r['rounds']} | {num(r['captum_maps_per_s'])} "
                   f"| {num(r['plain_maps_per_s'])} | {num(r['incremental_maps_per_s'])} "
                   f"| {ratio(r, 'plain_vs_captum')} ({num(r['plain_flop_bound'])}) "
                   f"| {ratio(r, 'incremental_vs_captum')} ({num(r['incremental_flop_bound'])}) "
                   f"| {ratio(r, 'incremental_vs_plain')} ({num(r['incremental_vs_plain_flop_bound'])}) "
                   f"| {target} | {r['gmac_per_window']} | {float(r['max_diff_rel']):.1e} |")
    ranged = all(r.get("incremental_vs_plain_min") not in (None, "") for r in rows)
    out += ["", "Ratios: median [min–max] of the per-round ratios." if ranged else "Ratios: of each contender's "
            "fastest call over the rounds (this recording kept no range).", "",
            provenance(facts, [int(r["rounds"]) for r in rows]), "",
            "Incremental time per graph node (largest eight, share of the call):", ""]
    out += [f"- {r['model']}, stride {r['stride']}: {r.get('profile') or '(not recorded)'}" for r in rows]
    return "\n".join(out)


def _table2_rows(rows: list[dict]) -> list[dict]:
    """``estimates.table2_occlusion`` plus, for the measured engine, the 1-GPU time at the ratio's min and max."""
    est = estimates.table2_occlusion(rows, GPUS)
    (_, images, model, _, _), = [p for p in estimates.PLAN if p[3] == "occlusion"]
    for e in est:
        e["range"] = ""
        if e["engine"] == "incremental, measured":
            ends = [estimates.occlusion_speedup(rows, model, f"incremental_vs_plain_{k}") if
                    rows and rows[0].get(f"incremental_vs_plain_{k}") not in (None, "") else None for k in ("max", "min")]
            if None not in ends:
                h = [estimates.duration(estimates.gpu_hours(images, estimates.occlusion_factor(224, s), model))
                     for s in ends]
                e["range"] = f" [{ends[1]:.2f}–{ends[0]:.2f}×: {h[0]} to {h[1]}]"
    return est


def table2(dest: Path) -> str:
    """Table 2's occlusion wall time with each engine, from the recorded speed-up on VGG-16."""
    rows, facts = read(dest, "occlusion_engines", ENGINE_FIELDS)
    out = [f"| engine | speed-up over plain | 1 GPU | {GPUS} GPUs (Slurm shards) |", "|---|---|---|---|"]
    out += [f"| {e['engine']} | {e['speedup']:.2f}×{e['range']} | {e['time_1_gpu']} | {e['time_n_gpus']} |"
            for e in _table2_rows(rows)]
    stride = min(int(r["stride"]) for r in rows if r["model"] == "vgg16")
    ranged = all(r.get("incremental_vs_plain_min") not in (None, "") for r in rows)
    how = "median [min–max] over rounds" if ranged else "fastest calls, no range recorded"
    out += ["", f"Speed-ups: VGG-16, patch 35, stride {stride} (the smallest timed), {how}, "
            f"recorded {facts.get('date')} (commit {(facts.get('commit') or '?')[:7]}, {load_words(facts)}); 2 510 images, {estimates.GPU_TFLOPS:g} effective TFLOP/s per GPU; "
            "`benchmark/perf/estimates.py:table2_occlusion`."]
    return "\n".join(out)


def table2_summary(dest: Path) -> str:
    """One sentence for the Table 2 entry of docs/tables.md."""
    rows, facts = read(dest, "occlusion_engines", ENGINE_FIELDS)
    est = {e["engine"]: e for e in _table2_rows(rows)}
    inc, flop, plain = est["incremental, measured"], est["incremental, FLOP bound"], est["plain"]
    return (f"- **Expected runtime on one GPU**: about {inc['time_1_gpu']} with the incremental occlusion engine "
            f"(its {inc['speedup']:.2f}× speed-up over plain forwards{inc['range']} measured on a CPU at "
            f"{load_words(facts).replace(': ', ', ')}; {flop['time_1_gpu']} at its FLOP-count ratio, {flop['speedup']:.2f}×; "
            f"{plain['time_1_gpu']} with `engine=plain`), almost all of it occlusion; {inc['time_n_gpus']} "
            f"({flop['time_n_gpus']}; {plain['time_n_gpus']}) on {GPUS} GPUs (`LAUNCHER=slurm`, "
            f"`dataset.num_shards={GPUS}`). From the recorded bench run: docs/occlusion.md.")


ECO_FIELDS = ("model", "family", "adapter", "adapter_maps_per_s", "library_maps_per_s", "adapter_over_library",
              "rounds")


def ecosystem(dest: Path) -> str:
    """Each adapter family's maps/s against its library called directly."""
    rows, facts = read(dest, "ecosystem", ECO_FIELDS)
    out = ["| model | family | adapter | adapter maps/s | library maps/s | adapter / library [min–max] | rounds |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:  # recordings before the _min/_max columns named the range min and max
        lo, hi = ("adapter_over_library_min", "adapter_over_library_max") if "adapter_over_library_min" in r else ("min", "max")
        out.append(f"| {r['model']} | {r['family']} | `{r['adapter']}` | {num(r['adapter_maps_per_s'])} "
                   f"| {num(r['library_maps_per_s'])} | {ratio(r, 'adapter_over_library', lo, hi)} | {r['rounds']} |")
    return "\n".join(out + ["", provenance(facts, [int(r["rounds"]) for r in rows])])


GRADCAM_FIELDS = ("model", "ratio", "value", "value_min", "value_max")


def gradcam(dest: Path) -> str:
    """Grad-CAM's ratios against pytorch-grad-cam, Captum and a plain forward, one column per model."""
    if not (Path(dest) / "gradcam_ratios.csv").is_file():
        return ("Not recorded yet: `make bench-record` on a quiet machine records it "
                "(`python -m benchmark.perf --sections gradcam` prints it now).")
    rows, facts = read(dest, "gradcam_ratios", GRADCAM_FIELDS)
    models = sorted({r["model"] for r in rows})
    cells = {(r["ratio"], r["model"]): r for r in rows}
    out = ["| ratio | " + " | ".join(models) + " | target |", "|---|" + "---|" * (len(models) + 1)]
    for name in dict.fromkeys(r["ratio"] for r in rows):
        got = [cells.get((name, m)) for m in models]
        target = next((r["target"] for r in got if r and r.get("target")), "")
        line = [ratio(r, "value") + ("" if not r.get("holds") else ", met" if r["holds"] == "True" else ", missed")
                if r else "–" for r in got]
        out.append(f"| {name} | " + " | ".join(line) + f" | {target.replace('>=', '≥').replace('<=', '≤') or '–'} |")
    rounds = [int(float(r["rounds"])) for r in rows if r.get("rounds")]
    return "\n".join(out + ["", "Ratios: median [min–max] of the per-round ratios; a speed option's target counts as "
                             "met only where its maps stayed within the option's stated tolerance.", "",
                             provenance(facts, rounds)])


PIPELINE_FIELDS = ("step", "images")


def pipeline(dest: Path) -> str:
    """The host pipeline's rates per core, the loader's per worker count, and the cores one GPU needs."""
    if not (Path(dest) / "pipeline.csv").is_file():
        return ("Not recorded yet: `make bench-record` on a quiet machine records it "
                "(`python -m benchmark.perf --sections pipeline` prints it now).")
    rows, facts = read(dest, "pipeline", PIPELINE_FIELDS)
    out = ["| step | images/s | per | ratio [min–max] | cores per GPU | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = [num(r["images_per_s"]) if r.get("images_per_s") else "–", r.get("per") or "–",
                 ratio(r, "ratio") if r.get("ratio") else "–",
                 num(r["cores_per_gpu"]) if r.get("cores_per_gpu") else "–", r.get("note") or ""]
        out.append(f"| {r['step']} | " + " | ".join(cells) + " |")
    rounds = [int(float(r["rounds"])) for r in rows if r.get("rounds") and r.get("ratio")]
    return "\n".join(out + ["", provenance(facts, rounds)])


def gpu_check(dest: Path) -> str:
    """The recorded ``make gpu-check`` (``results/recorded/gpu/gpu_check.json``): agreement, Table 1 jobs, engines."""
    path = Path(dest).parent / "gpu" / "gpu_check.json"
    if not path.is_file():
        return ("Not run on a GPU yet: `make gpu-check` on a CUDA machine writes `results/gpu_check/gpu_check.json` "
                "(with `ARGS=--record` it also keeps it in `results/recorded/gpu/` for this block).")
    doc = json.loads(path.read_text())
    agree = doc["agreement"]
    failed = [f"{r['metric']}/{r['method']}" for r in agree if not r["ok"]]
    out = [f"{doc['device']}, torch {doc['torch']}, {doc['date']} (commit {(doc['git'].get('commit') or '?')[:7]}): "
           f"{len(agree) - len(failed)} of {len(agree)} (metric, method) jobs on {doc['limit']} images agree with the "
           "CPU within the stated tolerances" + (f"; differ: {', '.join(failed)}." if failed else "."), "",
           "| model | images/s, device | serial | bound by the slowest phase | ms/image: host before | device "
           "| host after | device share |", "|---|---|---|---|---|---|---|---|"]
    out += [f"| {t['model']} | {num(t['device_images_per_s'])} | {num(t['serial_images_per_s'])} "
            f"| {num(t['bound_images_per_s'])} | {num(t['host_prepare_ms_per_image'])} "
            f"| {num(t['device_ms_per_image'])} | {num(t['host_post_ms_per_image'])} | {t['device_share']:.0%} |"
            for t in doc["table1"]]
    out += ["", "| model | stride | rounds | maps/s Captum | plain | incremental | incremental / Captum "
            "| incremental / plain |", "|---|---|---|---|---|---|---|---|"]
    out += [f"| {e['model']} | {e['stride']} | {e['rounds']} | {num(e['captum_maps_per_s'])} "
            f"| {num(e['plain_maps_per_s'])} | {num(e['incremental_maps_per_s'])} | {num(e['incremental_vs_captum'])} "
            f"| {num(e['incremental_vs_plain'])} |" for e in doc["engines"]]
    return "\n".join(out)


BLOCKS = {"occlusion": occlusion, "table2": table2, "table2-summary": table2_summary, "ecosystem": ecosystem,
          "pipeline": pipeline, "gradcam": gradcam, "gpu-check": gpu_check}
