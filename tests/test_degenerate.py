"""One rule for maps that show nothing, and for logits that are not numbers.

A constant, all-zero or NaN map (for 10 crops: every crop's map) localizes nothing, points
nowhere and is counted as degenerate; NaN or infinite logits are never ranked into predictions.
"""

import io
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from benchmark.methods.base import Explanation, SaliencyMethod
from benchmark.metrics.base import prepare_or_record
from benchmark.metrics.localization import Localization
from benchmark.metrics.pointing import Pointing
from benchmark.metrics.pointing_modified import PointingModified
from benchmark.runs.store import RunStore, frame_bytes
from benchmark.data.transforms import Preprocess
from benchmark.types import NonFiniteLogits, Sample, top_classes

SIZE = 32
PREP = Preprocess(SIZE, (0.0,) * 3, (1.0,) * 3)


class Fixed(SaliencyMethod):
    """Maps given per call (``fill(n_maps) -> [n_maps, S, S]``) and logits ranking class 2 first."""

    name = "fixed"

    def __init__(self, fill, logits=None):
        super().__init__(self._logits, None)  # the "model": the fixed logits
        self.fill = fill
        self.fixed = logits if logits is not None else torch.tensor([[0.0, 1.0, 9.0, 2.0, 3.0, 4.0]])

    def _logits(self, images):
        return self.fixed[:len(images)] if len(self.fixed) > 1 else self.fixed.repeat(len(images), 1)

    def _explain(self, images, class_ids):
        b, k = class_ids.shape
        maps = self.fill(b * k).view(b, k, *images.shape[-2:]).float()
        return Explanation(maps=maps, logits=self._logits(images))


def _sample(image_id="img", hw=(60, 70), box=(5, 5, 60, 54), label=2):
    return Sample(image_id=image_id, image=np.full((*hw, 3), 128, np.uint8), labels=(label,),
                  boxes_xyxy=np.array([box], np.int64), box_labels=np.array([label]), box_difficult=np.zeros(1, bool))


@pytest.mark.parametrize("box,choice", [("dt_box", "first"), ("dt_box", "combined"), ("text", "first"),
                                        ("threshold", "first")])
def test_constant_crop_maps_localize_nothing_in_the_ten_crop_protocol(box, choice):
    """Constant crops (+3, -2) merge by |map| sums into the crops' coverage pattern; before the
    per-crop check that gave a near-whole-image box and a correct localization of a box covering
    81 % of the image."""
    from benchmark.metrics.cam_localization import CamLocalization

    metric = CamLocalization(box=box, box_choice=choice, jpeg_quality=0)
    values = torch.tensor([3.0, -2.0] * 5)
    method = Fixed(lambda n: values.repeat(n // 10)[:, None, None].expand(n, SIZE, SIZE))
    sample = _sample()
    (row,) = metric.prepare_batch([sample], torch.zeros(1, 3, SIZE, SIZE), method, PREP)()
    assert row["degenerate"] and not row["has_box"] and row["n_boxes"] == 0
    assert not row["gt_known_correct"] and not row["loc_correct_top1"] and not row["loc_correct_top5"]
    assert row["cls_correct_top1"]  # classification is scored as usual
    # one informative crop is enough to localize: the check is "every crop", per crop
    informative = torch.zeros(10, SIZE, SIZE)
    informative[0, 2:30, 2:30] = 1.0
    (row,) = metric.prepare_batch([sample], torch.zeros(1, 3, SIZE, SIZE), Fixed(lambda n: informative), PREP)()
    assert not row["degenerate"] and row["has_box"]


@pytest.mark.parametrize("value", [0.0, 0.7, float("nan")])
def test_a_map_that_shows_nothing_points_nowhere_and_is_counted(value):
    metric = Pointing()
    rows = metric.score_batch([_sample()], torch.zeros(1, 3, SIZE, SIZE),
                              Fixed(lambda n: torch.full((n, SIZE, SIZE), value)), PREP)
    assert [(r["point_x"], r["point_y"], r["hit"], r["degenerate"]) for r in rows] == [(-1, -1, False, True)]
    assert metric.aggregate(pd.DataFrame(rows))["n_degenerate"] == 1
    loc = Localization()
    (row,) = loc.score_batch([_sample()], torch.zeros(1, 3, SIZE, SIZE),
                             Fixed(lambda n: torch.full((n, SIZE, SIZE), value)), PREP)
    assert row["degenerate"] and not row["has_box"] and not row["gt_known_correct"]


def test_modified_pointing_reports_its_reject_all_baseline():
    """Constant maps for the top 5 classes: every record points nowhere; the accuracy is at most
    the reject-all baseline (the share of absent classes), which the summary now states."""
    metric = PointingModified(calibration_fraction=0.5)
    samples = [_sample(f"img{i}") for i in range(12)]
    rows = metric.score_batch(samples, torch.zeros(12, 3, SIZE, SIZE), Fixed(lambda n: torch.zeros(n, SIZE, SIZE)), PREP)
    assert all((r["point_x"], r["point_y"], r["degenerate"]) == (-1, -1, True) for r in rows)
    summary = metric.aggregate(pd.DataFrame(rows))
    assert summary["accuracy_reject_all"] == pytest.approx(80.0)  # class 2 present, 4 of the top 5 absent
    assert summary["accuracy"] <= summary["accuracy_reject_all"]
    assert summary["n_degenerate"] == summary["n_records"]


def test_nan_logits_stop_the_run_naming_the_first_image_or_become_error_rows():
    logits = torch.tensor([[0.0, 1.0, 9.0, 2.0, 3.0, 4.0], [float("nan")] * 6, [0.0, float("inf"), 1, 2, 3, 4]])
    method = Fixed(lambda n: torch.rand(n, SIZE, SIZE), logits)
    samples = [_sample("good"), _sample("bad_nan"), _sample("bad_inf")]
    images = torch.zeros(3, 3, SIZE, SIZE)
    for metric in (Localization(), PointingModified()):
        with pytest.raises(NonFiniteLogits, match=r"image 'bad_nan' \(and 1 more in its batch\): the model's "
                                                  r"logits are NaN or infinite"):
            metric.prepare_batch(samples, images, method, PREP)
        finish, errors = prepare_or_record(metric, samples, images, method, PREP, "record")
        assert [e["image_id"] for e in errors] == ["bad_nan", "bad_inf"]
        assert all("NonFiniteLogits" in e["error"] for e in errors)
        assert {r["image_id"] for r in finish()} == {"good"}  # the rest of the batch is scored
    with pytest.raises(NonFiniteLogits):
        prepare_or_record(Localization(), samples, images, method, PREP, "raise")


def test_equal_logits_rank_in_class_order():
    logits = torch.tensor([[1.0, 5.0, 5.0, 0.0, 5.0]])
    assert top_classes(logits, 3, ["a"]).tolist() == [[1, 2, 4]]
    assert top_classes(torch.zeros(1, 7), 5, ["a"]).tolist() == [[0, 1, 2, 3, 4]]


def test_records_have_one_arrow_schema_and_column_order_whatever_the_part_split(tmp_path):
    rows = [{"image_id": "a", "class_id": 1, "error": None, "iou": 0.5},
            {"image_id": "b", "class_id": -1, "error": "OSError: truncated"}]
    one_part, two_parts, error_first = (RunStore(tmp_path / name) for name in ("one", "two", "three"))
    for store, parts in ((one_part, [rows]), (two_parts, [rows[:1], rows[1:]]), (error_first, [rows[::-1]])):
        store.parts.mkdir(parents=True)
        for part in parts:
            store.write_part(part)
        store.finalize({})
    a = (tmp_path / "one" / "records.parquet").read_bytes()
    b = (tmp_path / "two" / "records.parquet").read_bytes()
    types = [pq.read_table(io.BytesIO(data)).schema.field("error").type for data in (a, b)]
    assert types[0] == types[1]
    assert a == b == (tmp_path / "three" / "records.parquet").read_bytes()  # the error row first: same columns
    assert frame_bytes(pd.DataFrame(rows)) == frame_bytes(pd.read_parquet(io.BytesIO(a)))


def test_a_model_with_nan_logits_stops_the_run_or_records_every_image_as_failed(tiny_synthetic, tmp_path):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import benchmark.run  # noqa: F401  (schemas and resolvers)
    from benchmark.evaluate import evaluate
    from benchmark.models import build_model
    from benchmark.models.base import CONF_DIR

    model, _ = build_model("toy_gap", weights="random")
    state = dict(model.state_dict())
    state["fc.bias"] = torch.full_like(state["fc.bias"], float("nan"))
    path = tmp_path / "nan_head.pt"
    torch.save(state, path)
    base = ["model=toy_gap", f"model.checkpoint={path}", "method=grad_cam", "dataset.limit=4", "batch_size=2",
            "progress=false", f"paths.results={tmp_path / 'results'}"]

    def config(extra):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return OmegaConf.to_container(compose(config_name="config", overrides=base + extra), resolve=True)

    with pytest.raises(NonFiniteLogits, match=r"image 'SYNTH_val_00000001' \(and 1 more in its batch\)"):
        evaluate(config(["experiment_name=raise"]))
    from benchmark.evaluate import NothingScoredError

    with pytest.raises(NothingScoredError, match="every one of the 4 images failed"):  # no image scored: no result
        evaluate(config(["experiment_name=record", "on_error=record"]))
    run_dir = next((tmp_path / "results" / "runs" / "record").glob("**/summary.json")).parent
    summary = json.loads((run_dir / "summary.json").read_text())
    records = RunStore(run_dir).load()[0]
    assert summary["status"] == "failed" and summary["errors"]["n_images"] == 4 and summary["metrics"] == {}
    assert records["error"].str.startswith("NonFiniteLogits").all()
    assert "pred_1" not in records or records["pred_1"].isna().all()  # nothing ranked
