"""The published pointing numbers sit beside the runs of the fine-tuned models that reproduce them."""

import math

import pandas as pd

from benchmark.report.specs import pointing_with_reference


def _table(rows):
    return pd.DataFrame(rows, columns=["model", "method", "dataset", "all: class-mean acc (%)",
                                       "difficult: class-mean acc (%)", "n"])


def test_fine_tuned_runs_meet_their_architectures_published_rows():
    table = pointing_with_reference(_table([
        ("vgg16_voc07", "grad_cam", "voc2007_test", 86.0, 73.0, 4952),
        ("vgg16_voc07", "center", "voc2007_test", 69.0, 42.0, 4952),
        ("resnet50_coco14", "grad_cam", "coco2014_val", 57.0, float("nan"), 40137),
    ]))
    rows = table.set_index(["model", "method", "dataset"])
    vgg = rows.loc[("vgg16_voc07", "grad_cam", "voc2007_test")]
    assert vgg["all: class-mean acc (%) (paper)"] == 86.6 and vgg["difficult: class-mean acc (%) (paper)"] == 74.0
    assert math.isclose(vgg["all: class-mean acc (%) Δ"], -0.6) and math.isclose(vgg["difficult: class-mean acc (%) Δ"], -1.0)
    center = rows.loc[("vgg16_voc07", "center", "voc2007_test")]
    assert center["all: class-mean acc (%) (paper)"] == 69.6 and center["difficult: class-mean acc (%) (paper)"] == 42.4
    coco = rows.loc[("resnet50_coco14", "grad_cam", "coco2014_val")]
    assert coco["all: class-mean acc (%) (paper)"] == 57.3
    # no published row is left beside a run of its own architecture as a second, unmatched row
    assert not ((table["model"] == "vgg16") & (table["method"] == "grad_cam")
                & (table["dataset"] == "voc2007_test")).any()
    # published rows no run matched stay once each, both subsets on one row
    unmatched = table[(table["model"] == "resnet50") & (table["method"] == "deconvnet")]
    assert len(unmatched) == 1 and unmatched["all: class-mean acc (%) (paper)"].item() == 68.6
    assert unmatched["difficult: class-mean acc (%) (paper)"].item() == 44.7
    assert unmatched["all: class-mean acc (%)"].isna().all()
