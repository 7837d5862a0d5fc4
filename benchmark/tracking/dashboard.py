"""A W&B workspace for the benchmark: one section per paper table, bar plots grouped by method.

``python -m benchmark.tracking.dashboard --entity E --project P [--filter EXPR] [--name N] [--save]``
builds the workspace (``wandb_workspaces``) and prints its sections; only ``--save`` sends it to
W&B. It reads the summary metrics ``benchmark.tracking.wandb_logger`` logs as ``<metric>/<name>`` (the
names of ``summary.json``'s ``metrics``), and the run config's ``method.label`` to group bars.

Sections: Table 1 (localization and classification error, Grad-CAM paper Table 1), Table 2 (rank
correlation with occlusion), Table 3 (ablations: top-1 localization error per Grad-CAM variant),
the pointing game (Zhang et al.) and the modified pointing game (Grad-CAM Sec. 4.3). Each bar is
the mean over the runs of a method in view, with their min-max range: narrow the view to one
experiment or model with ``--filter "Config('experiment_name') == 'table1'"`` (a workspace has one
run set for all its sections) or in the app.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

GROUP_BY = "method.label"


@dataclass(frozen=True)
class TableView:
    """One paper table: its section title, the metric that feeds it, and bar plots of its keys."""

    title: str
    metric: str
    plots: tuple[tuple[str, tuple[str, ...]], ...]  # (plot title, summary metric names)


TABLES = (
    TableView("Table 1: weakly-supervised localization (ILSVRC val, error %)", "localization", (
        ("Localization error (%)", ("loc_err_top1", "loc_err_top5")),
        ("Classification error (%)", ("cls_err_top1", "cls_err_top5")),
        ("GT-known localization accuracy (%)", ("gt_known_loc_acc",)))),
    TableView("Table 2: rank correlation with occlusion (VOC 2007 val)", "occlusion_correlation", (
        ("Mean Spearman rank correlation", ("mean_rho",)),
        ("95 % bootstrap interval", ("ci95_low", "ci95_high")))),
    TableView("Table 3: Grad-CAM design choices (top-1 localization error %)", "localization", (
        ("Top-1 localization error (%) per variant", ("loc_err_top1",)),)),
    TableView("Pointing game (accuracy %)", "pointing", (
        ("Class-mean accuracy (%): all / difficult", ("acc_class_mean", "difficult_acc_class_mean")),
        ("Pooled accuracy (%): all / difficult", ("acc_pooled", "difficult_acc_pooled")))),
    TableView("Modified pointing game (top-5, with rejection)", "pointing_modified", (
        ("Accuracy (%)", ("accuracy",)),
        ("Calibrated threshold θ", ("theta",)))),
)


def metric_keys(view: TableView, names: tuple[str, ...]) -> list[str]:
    """W&B summary keys of a view's metric names (``<metric>/<name>``, as the logger writes them)."""
    return [f"{view.metric}/{name}" for name in names]


def section(view: TableView) -> ws.Section:
    """Bar plots grouped by method (mean, min-max), then the first plot's metric per run."""
    panels = [wr.BarPlot(title=title, metrics=metric_keys(view, names), groupby=wr.Config(GROUP_BY),
                         groupby_aggfunc="mean", groupby_rangefunc="minmax", orientation="v")
              for title, names in view.plots]
    first_title, first_names = view.plots[0]
    panels.append(wr.BarPlot(title=f"{first_title}, per run", metrics=metric_keys(view, first_names[:1]),
                             orientation="h", max_runs_to_show=100))
    return ws.Section(name=view.title, panels=panels, is_open=True)


def build_workspace(entity: str, project: str, name: str = "Grad-CAM benchmark", filters: str = "") -> ws.Workspace:
    """The workspace object (nothing is sent until ``.save()``)."""
    return ws.Workspace(entity=entity, project=project, name=name, sections=[section(v) for v in TABLES],
                        runset_settings=ws.RunsetSettings(filters=filters))


def describe(workspace: ws.Workspace) -> str:
    lines = [f"workspace {workspace.name!r} for {workspace.entity}/{workspace.project}"]
    for sec in workspace.sections:
        lines.append(f"  {sec.name}")
        lines += [f"    {p.title}: {', '.join(map(str, p.metrics))}" for p in sec.panels]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> ws.Workspace:
    parser = argparse.ArgumentParser(description="Build (and with --save, save) the benchmark's W&B workspace.")
    parser.add_argument("--entity", required=True, help="W&B entity (user or team)")
    parser.add_argument("--project", required=True, help="W&B project the runs were logged to")
    parser.add_argument("--name", default="Grad-CAM benchmark", help="workspace (view) name")
    parser.add_argument("--filter", default="", help="run filter, e.g. \"Config('experiment_name') == 'table1'\"")
    parser.add_argument("--save", action="store_true", help="save the workspace to W&B (needs network and a key)")
    args = parser.parse_args(argv)
    workspace = build_workspace(args.entity, args.project, args.name, args.filter)
    print(describe(workspace))
    if args.save:
        workspace.save()
        print(f"saved: {workspace.url}")
    else:
        print("not saved (pass --save to send it to W&B)")
    return workspace


if __name__ == "__main__":
    main()
