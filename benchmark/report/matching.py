"""Does a run match the protocol of the published numbers it would stand beside? (DESIGN 4.8)

``mismatch(row, dataset)`` gives the reasons a run (a row of ``benchmark.report.tables.collect``) is not
comparable with a published number, or an empty list. Checked: the model weights (a run with neither
torchvision ``weights`` nor a ``checkpoint`` has random weights); the dataset identity read from the
manifest's ``meta.json`` (its ``dataset`` name, not the config's ``dataset.name`` label, and, where the
manifest says, its split); and the image count, which must be the full published set (``FULL_SIZES``,
else the manifest's ``num_images``). Rows that mismatch go to a separate "your runs" table with the reasons
and without a difference column. The protocol settings are the experiment's own (each paper table reads
only the experiments of its protocol cards' ``reproduced_by``), and a card's ``metric.options.*`` settings
are compared with the summary's ``protocol`` block when the summary records them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# published evaluation sets: (split, full image count)
FULL_SIZES = {"ilsvrc2012_val": ("val", 50000), "voc2007_test": ("test", 4952), "voc2007_val": ("val", 2510),
              "coco2014_val": ("val", 40504)}


def manifest_meta(root) -> dict | None:
    """The manifest's ``meta.json`` (a dict), or None when it cannot be read."""
    if not isinstance(root, str) or not root:
        return None
    try:
        meta = json.loads((Path(root) / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _count(value) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else int(round(number))


def mismatch(row, dataset: str, card: dict | None = None) -> list[str]:
    """Why ``row`` cannot stand beside a number published on ``dataset`` (empty: it can)."""
    reasons = []
    if not row.get("_weights") and not row.get("_checkpoint"):
        reasons.append("random weights (model.weights and model.checkpoint unset)")
    meta = manifest_meta(row.get("_root"))
    name = meta.get("dataset") if meta else None
    split, full = FULL_SIZES.get(dataset, (None, meta.get("num_images") if meta else None))
    n = _count(row.get("n_images"))
    if meta is None:
        reasons.append(f"dataset {row.get('dataset')}: its manifest's meta.json cannot be read, so its identity is unknown")
    elif name != dataset:
        reasons.append(f"dataset {name}, not {dataset}" + (f", {n:,} images" if n is not None else ""))
    elif split and meta.get("split", split) != split:
        reasons.append(f"dataset {name} split {meta.get('split')}, not {split}")
    if meta is not None and name == dataset and full and n != full:
        reasons.append(f"dataset {name}, {n if n is not None else '?'} of {full:,} images")
    for key, value in ((card or {}).get("settings") or {}).items():
        if key.startswith("metric.options.") and isinstance(row.get("_protocol"), dict):
            got = row["_protocol"].get(key.removeprefix("metric.options."))
            if got is not None and got != value:
                reasons.append(f"{key}={got}, the published protocol has {value}")
    return reasons


# experiments whose tables show published numbers (besides the TableSpecs): their dataset, None = the row's own
PUBLISHED = {"pointing": None, "pointing_torchray": None, "pointing_modified": "coco2014_val",
             "table2_occlusion": "voc2007_val"}
YOUR_RUNS_NOTE = ("Your runs: these runs do not match the protocol of the published numbers (reason column), so no "
                  "published number or difference is shown beside them.")


def split_published(runs, experiment: str):
    """``runs`` of a published experiment split into those matching its protocol and the others (with ``reason``)."""
    import pandas as pd

    if experiment not in PUBLISHED or not len(runs):
        return runs, runs.iloc[0:0].assign(reason=pd.Series(dtype=str))
    fixed = PUBLISHED[experiment]
    reasons = ["; ".join(mismatch(r, fixed or (r.get("dataset") if r.get("dataset") in FULL_SIZES else "voc2007_test")))
               if r.get("status") == "finished" else "" for r in runs.to_dict("records")]
    bad = pd.Series([bool(x) for x in reasons], index=runs.index)
    return runs[~bad], runs[bad].assign(reason=[x for x in reasons if x])


def write_your_runs(build, others, metric: str, reference: str, out, name: str, title: str, notes=()) -> list:
    """The "your runs" table of a published experiment: ``build(others)`` with reasons and paired columns."""
    from benchmark.report.significance import add_paired
    from benchmark.report.writers import sample_size_notes, write_table

    if not len(others):
        return []
    table = build(others)
    reason = dict(zip(others["path"], others["reason"]))
    table = table.assign(reason=[reason.get(p) for p in table["path"]])
    table, paired_notes = add_paired(table, metric, reference)
    notes = [YOUR_RUNS_NOTE, *notes, *sample_size_notes(table), *paired_notes]
    return write_table(table, out, f"{name}_your_runs", f"{title}: your runs (not comparable with the published numbers)",
                       notes)
