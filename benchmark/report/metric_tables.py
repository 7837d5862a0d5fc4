"""The tables whose columns are not the localization ones: the layer sweep, pointing, modified pointing, occlusion.

Each gets a Wilson interval beside every pooled rate (``add_intervals``), the occlusion table its bootstrap
interval, and every table the paired comparison with the reference method (``benchmark.report.significance``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_bytes
from benchmark.report.matching import split_published, write_your_runs
from benchmark.report.significance import DEFAULT_REFERENCE, add_paired
from benchmark.report.pointing_tables import (  # noqa: F401  (re-exported)
    POINTING_COLUMNS, POINTING_MODIFIED_COLUMNS, POINTING_NOTE, _with_reference, finished_rows, pointing_modified_table,
    pointing_table,
    pointing_with_reference)
from benchmark.report.tables import INTERVAL_NOTE, METHOD_ORDER, add_intervals, collect, sample_size_notes, write_table


def layer_sweep_plot(frame: pd.DataFrame, experiment: str, out: Path) -> list[Path]:
    """Error vs depth for Grad-CAM at each layer (method labels ``grad_cam@<layer>``)."""
    runs = frame[(frame["experiment"] == experiment) & (frame["status"] == "finished")] if len(frame) else frame
    if not len(runs):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = runs[["model", "method", "loc_err_top1", "n_images"]].copy()
    table["layer"] = table["method"].str.split("@").str[1]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rows = []
    for model, group in table.groupby("model"):
        order = _layer_order(model, list(group["layer"]))
        group = group.set_index("layer").loc[order].reset_index()
        group["depth"] = range(1, len(group) + 1)
        rows.append(group)
        ax.plot(group["depth"], group["loc_err_top1"], marker="o", label=model)
        for depth, layer in zip(group["depth"], group["layer"]):
            ax.annotate(layer.replace("features.", "f"), (depth, group.set_index("depth").loc[depth, "loc_err_top1"]),
                        fontsize=6, xytext=(0, 4), textcoords="offset points", ha="center")
    ax.set_xlabel("layer depth (order in the network)")
    ax.set_ylabel("top-1 localization error (%)")
    ax.set_title("Grad-CAM layer sweep")
    ax.legend()
    fig.tight_layout()
    name = "demo_layers" if experiment.startswith("demo") else "table3_layers"
    path = Path(out) / f"{name}.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=120, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    plt.close(fig)
    merged = pd.concat(rows, ignore_index=True)[["model", "depth", "layer", "loc_err_top1", "n_images"]]
    merged = add_intervals(merged, ["loc_err_top1"], "n_images").rename(columns=lambda c: c.replace("loc_err_top1", "loc err top-1 (%)"))
    notes = [INTERVAL_NOTE, *sample_size_notes(merged.rename(columns={"n_images": "n images"}))]
    return [path, *write_table(merged, out, name, "Grad-CAM layer sweep: top-1 localization error (%) vs depth", notes)]


def _layer_order(model: str, layers: list[str]) -> list[str]:
    """Layers in forward order: numeric order of ``features.N``, else the names' natural order."""
    def key(layer):
        tail = layer.rsplit(".", 1)[-1]
        return (0, int(tail)) if tail.isdigit() else (1, layer)

    return sorted(dict.fromkeys(layers), key=key)


OCCLUSION_COLUMNS = {"mean_rho": "mean rho", "ci95_low": "mean rho 95% CI low", "ci95_high": "mean rho 95% CI high",
                     "n": "n", "n_nan": "n NaN"}
OCCLUSION_SETTINGS = ("patch", "stride", "fill", "resolution")
def occlusion_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows model x method (finished ``occlusion_correlation`` runs), the Table-2 columns and setting."""
    columns = ["model", "method", "dataset", *OCCLUSION_COLUMNS.values(), *OCCLUSION_SETTINGS, "path"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    done = frame[(frame["metric"] == "occlusion_correlation") & (frame["status"] == "finished")]
    if done.empty:
        return pd.DataFrame(columns=columns)
    table = done[["model", "method", "dataset", *OCCLUSION_COLUMNS, "path"]].rename(columns=OCCLUSION_COLUMNS)
    setting = [json.loads((Path(p) / "summary.json").read_text()).get("protocol", {}) for p in done["path"]]
    table[["n", "n NaN"]] = table[["n", "n NaN"]].astype("Int64")  # float after a merge with other metrics
    for key in OCCLUSION_SETTINGS:
        table[key] = [s.get(key, "input" if key == "resolution" else None) for s in setting]  # runs before the option: input
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    table = table.assign(_k=table["method"].map(lambda m: (order.get(m, len(order)), m)))
    return table.sort_values(["model", "_k"]).drop(columns="_k").reset_index(drop=True)[columns]


def write_occlusion_table(results_root: Path, out_dir: Path, experiment: str,
                          reference: str = DEFAULT_REFERENCE) -> pd.DataFrame:
    """Build ``occlusion_table`` for one experiment and write ``<experiment>.md|csv|tex`` with notes."""
    runs, others = split_published(collect(Path(results_root), experiment), experiment)
    write_your_runs(occlusion_table, others, "occlusion_correlation", reference, out_dir, experiment,
                    f"{experiment}: rank correlation with occlusion")
    table = occlusion_table(runs)
    if not table.empty:
        table, paired_notes = add_paired(table, "occlusion_correlation", reference)
        setting = "; ".join(sorted({f"patch {p}, stride {s}, fill {f}, {r} pixels" for p, s, f, r in
                                    zip(table["patch"], table["stride"], table["fill"], table["resolution"])}))
        notes = [f"Spearman rank correlation with occlusion maps ({setting}; fill in normalized input space), "
                 "GT class with the highest logit, at the resolution named; mean over images with a "
                 "95 % percentile bootstrap interval; n NaN: constant maps, excluded. Grad-CAM Table 2 used "
                 "patch 35, stride 1 on 2510 VOC 2007 val images.", *sample_size_notes(table), *paired_notes]
        write_table(table, Path(out_dir), experiment, f"{experiment}: rank correlation with occlusion", notes)
    return table


def metric_tables(frame: pd.DataFrame, out: Path, experiment: str | None, results: Path,
                  reference: str = DEFAULT_REFERENCE) -> list[Path]:
    """The pointing, modified pointing and occlusion tables."""
    written: list[Path] = []
    builders = {
        "pointing": (pointing_table, "Pointing game (Zhang et al.): accuracy (%)"),
        "pointing_modified": (pointing_modified_table, "Grad-CAM's modified pointing game: θ and accuracy (%)"),
    }
    for exp in ("demo_pointing", "demo_pointing_torchray", "demo_pointing_modified", "pointing", "pointing_torchray",
                "pointing_modified"):
        if experiment is not None and not exp.startswith(experiment):
            continue
        runs = frame[frame["experiment"] == exp] if len(frame) else frame
        if not len(runs):
            continue
        build, title = builders[exp.removeprefix("demo_").removesuffix("_torchray")]
        title += " under TorchRay's protocol (smoothed pixel-space maps, aspect kept)" if "torchray" in exp else ""
        metric = "pointing_modified" if "modified" in exp else "pointing"
        runs, others = split_published(runs, exp)
        written += write_your_runs(build, others, metric, reference, out, exp, title, [POINTING_NOTE])
        table = build(runs)
        table, notes = add_paired(table, metric, reference)
        notes = [POINTING_NOTE, *sample_size_notes(table), *notes]
        if exp in ("pointing", "pointing_torchray"):  # the published numbers were made under pointing_torchray's protocol
            table = pointing_with_reference(table)
        elif exp == "pointing_modified":
            table = _with_reference(table, "pointing_modified.csv", ["method"], "accuracy (%)", "accuracy")
        written += write_table(table, out, exp, title, notes)
    for exp in ("demo_occlusion", "table2_occlusion"):
        if (experiment is None or exp.startswith(experiment)) and len(frame) and (frame["experiment"] == exp).any():
            write_occlusion_table(results, out, exp, reference)
            written += sorted(p for p in Path(out).glob(f"{exp}*") if p.name.startswith((f"{exp}.", f"{exp}_your_runs.")))
    return written


# experiments with a layout of their own besides SPECS': the layer sweeps and the other metrics' tables
SPECIAL_EXPERIMENTS = ("demo_layers", "table3_layers", "demo_pointing", "demo_pointing_torchray", "demo_pointing_modified",
                       "pointing", "pointing_torchray", "pointing_modified", "demo_occlusion", "table2_occlusion")


def extra_outputs(frame: pd.DataFrame, out: Path, experiment: str | None, results: Path,
                  reference: str = DEFAULT_REFERENCE) -> list[Path]:
    """The layer-sweep plots and the tables of the other metrics (pointing, occlusion)."""
    written: list[Path] = []
    for exp in ("demo_layers", "table3_layers"):
        if experiment is None or exp.startswith(experiment):
            written += layer_sweep_plot(frame, exp, out)
    return written + metric_tables(frame, out, experiment, results, reference)
