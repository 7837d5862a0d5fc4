"""The paper tables and their demo counterparts: which runs, columns and published numbers.

``SPECS`` are the localization tables ``benchmark.report.tables.build`` makes from a ``TableSpec``;
the layer-sweep plot and the pointing, modified pointing and occlusion tables have their own
builders here (their columns are not the localization ones).
"""

from __future__ import annotations

import pandas as pd

from benchmark.report.metric_tables import (  # noqa: F401  (the tables of the other metrics, re-exported)
    SPECIAL_EXPERIMENTS, extra_outputs, occlusion_table, pointing_modified_table, pointing_table, pointing_with_reference)
from benchmark.report.matching import YOUR_RUNS_NOTE
from benchmark.report.significance import DEFAULT_REFERENCE, add_paired
from benchmark.report.tables import LOC_COLUMNS, TableSpec, build, sample_size_notes, table_notes

LOC = tuple(LOC_COLUMNS)
MAXBOX = {"maxboxacc": "MaxBoxAcc (%)", "maxboxacc_v2": "MaxBoxAccV2 (%)"}  # Choe et al., from the same maps
DEMO_NOTE = ("Synthetic val split (500 ILSVRC-format images), toy models. No published number is shown beside "
             "them: those are for ImageNet models on ILSVRC, a different task, and no difference between the two means anything.")

SPECS = [
    TableSpec("table1_localization", "Table 1: ILSVRC 2012 val weakly-supervised localization (error %)",
              ("table1", "table1_grabcut"), "localization", {**LOC_COLUMNS, **MAXBOX},
              reference="table1_localization.csv", compare=("loc_err_top1", "loc_err_top5"), dataset="ilsvrc2012_val",
              notes=("15 % of max, largest 8-connected segment, its box, IoU >= 0.5; devkit top-k rule.",)),
    TableSpec("table1_cam_protocol", "Table 1 rows made by CAM's ILSVRC pipeline (10 crops, dt_box; error %)",
              ("table1_cam",), "localization_cam", {**LOC_COLUMNS, **MAXBOX}, reference="table1_localization.csv",
              compare=("loc_err_top1", "loc_err_top5"), dataset="ilsvrc2012_val",
              notes=("CAM's released pipeline: 10 crops, softmax averaged, |map| merged, 8-bit JPEG heatmap, "
                     "dt_box 20/100/110, first box; devkit top-k rule.",
                     "gradient_cam_pipeline is the VGG-16 Backprop row under this pipeline (published as "
                     "gradient_grabcut).")),
    TableSpec("table3_ablations", "Table 3: VGG-16 top-1 localization error of the Grad-CAM design choices",
              ("table3_ablations", "table3_ablations_10crop"), ("localization", "localization_cam"),
              {"loc_err_top1": "loc err top-1 (%)", **MAXBOX}, reference="table3_ablations.csv", compare=("loc_err_top1",),
              extra=("crops", "normalization"), dataset="ilsvrc2012_val",
              notes=("crops 1: the ICCV supplement's single-crop reading; crops 10: the IJCV appendix's '10 crops' "
                     "(scores averaged, maps merged as a signed mean).",)),
    TableSpec("demo_localization", "Demo: weakly-supervised localization (error %)", ("demo", "demo_grabcut"),
              "localization", dict(LOC_COLUMNS), notes=(DEMO_NOTE,)),
    TableSpec("demo_cam_protocol", "Demo: CAM's ILSVRC pipeline on toy_gap (error %)", ("demo_cam_protocol",),
              "localization_cam", {**LOC_COLUMNS, **MAXBOX},
              notes=(DEMO_NOTE, "CAM's pipeline scaled to the 64-px input: frame 73, 10 crops of 64, |map| merged, "
                     "bicubic resize, 8-bit JPEG heatmap, dt_box 20/100/110, first box.")),
    TableSpec("demo_ablations", "Demo: Grad-CAM design choices on toy_vgg (top-1 localization error %)",
              ("demo_ablations", "demo_ablations_minmax"), "localization",
              {"loc_err_top1": "loc err top-1 (%)", "gt_known_loc_acc": "GT-known loc acc (%)", **MAXBOX},
              extra=("normalization",),
              notes=(DEMO_NOTE, "normalization: boxes at 15 % of the maximum (max) or at min + 15 % of the range (minmax).",
                     "Published numbers (VGG-16 on ILSVRC, for the same design choices): table3_ablations "
                     "(results/reference/table3_ablations.csv), not this table.")),
]


def spec_table(spec: TableSpec, frame: pd.DataFrame, reference: str = DEFAULT_REFERENCE):
    """The table of a ``TableSpec`` with its paired comparisons, its notes, and the "your runs" table (or None)."""
    yours: list[pd.DataFrame] = []
    table = build(spec, frame, yours=yours)
    metric = spec.metric if isinstance(spec.metric, str) else spec.metric[0]
    table, paired_notes = add_paired(table, metric, reference, group=("model", "dataset", *spec.extra))
    notes = table_notes(spec, table) + paired_notes
    mine = None
    if yours:
        mine, mine_notes = add_paired(yours[0], metric, reference, group=("model", "dataset", *spec.extra))
        mine_notes = [*sample_size_notes(mine), *mine_notes]
        mine = (mine, [YOUR_RUNS_NOTE, *[n for n in spec.notes if "card" not in n], *mine_notes])
        notes.append(f"{len(yours[0])} run(s) not matching the published protocol: see {spec.name}_your_runs.")
    return table, notes, mine




