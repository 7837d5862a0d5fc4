"""Batches by input shape: every batch one shape, square inputs batched as DataLoader batches them,
and a run with aspect-kept inputs gives the records of one image per batch (the same points, hits
and counts; a map's maximum to float rounding, since a batched convolution sums in another order)."""

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmark.data.buckets import input_batches, shape_batches
from benchmark.data.transforms import Preprocess
from benchmark.evaluate import evaluate
from benchmark.models.base import CONF_DIR


def test_equal_shapes_give_dataloaders_consecutive_batches():
    expected = [list(b) for b in torch.utils.data.BatchSampler(range(10), batch_size=4, drop_last=False)]
    assert shape_batches([(64, 64)] * 10, 4) == expected == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_mixed_shapes_by_hand():
    shapes = [(64, 80), (64, 64), (64, 80), (70, 64), (64, 80), (64, 64), (64, 80)]
    assert shape_batches(shapes, 2) == [[0, 2], [1, 5], [3], [4, 6]]
    assert shape_batches(shapes, 1) == [[i] for i in range(7)]  # one per batch: the old order


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_every_position_once_each_batch_one_shape_in_order(batch_size):
    shapes = [(64, 64 + (i * 7) % 5) for i in range(40)]
    batches = shape_batches(shapes, batch_size)
    assert sorted(p for b in batches for p in b) == list(range(40))
    assert all(len({shapes[p] for p in b}) == 1 and len(b) <= batch_size and b == sorted(b) for b in batches)
    assert [b[0] for b in batches] == sorted(b[0] for b in batches)
    with pytest.raises(ValueError, match="batch_size=0"):
        shape_batches(shapes, 0)


def test_only_shorter_side_inputs_differ_in_shape():
    sizes = [(48, 96), (96, 48), (64, 64), (50, 101)]
    square = Preprocess(64, (0.0,) * 3, (1.0,) * 3, "center_crop")
    assert input_batches(sizes, square, 3) == [[0, 1, 2], [3]]
    aspect = Preprocess(64, (0.0,) * 3, (1.0,) * 3, "shorter_side")
    assert [aspect.input_hw(h, w) for h, w in sizes] == [(64, 128), (128, 64), (64, 64), (64, 129)]
    assert all(tuple(aspect(torch.zeros(h, w, 3, dtype=torch.uint8).numpy()).shape[1:]) == aspect.input_hw(h, w)
               for h, w in sizes)
    assert input_batches(sizes, aspect, 3) == [[0], [1], [2], [3]]


def _config(root, results, batch_size, method):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[
            "model=toy_gap", f"method={method}", "dataset=synthetic_train", "metric=pointing", "model.preprocessing=shorter_side",
            f"dataset.root={root}", f"paths.results={results}", f"batch_size={batch_size}", "progress=false",
            "metric.options.smooth=0.02", "dataset.limit=48"])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("method", ["grad_cam", "gradient"])
def test_aspect_kept_run_in_shape_batches_equals_one_image_per_batch(tiny_synthetic, tmp_path, method):
    root = tiny_synthetic / "data" / "synthetic" / "manifests" / "train"  # 96 images, some of one input shape
    summaries, records = [], []
    for batch_size in (1, 16):
        summary = evaluate(_config(root, tmp_path / f"b{batch_size}", batch_size, method))
        summaries.append(summary)
        records.append(pd.read_parquet(tmp_path / summary["run_dir"] / "records.parquet"))
    from benchmark.data.readers import ManifestDataset

    sizes = ManifestDataset(root, limit=48).sizes_hw()
    prep = Preprocess(64, (0.0,) * 3, (1.0,) * 3, "shorter_side")
    assert max(len(b) for b in input_batches(sizes, prep, 16)) > 1  # some batch really holds several images
    assert summaries[0]["status"] == "finished" and summaries[0]["metrics"]["n_images"] == 48
    exact = [c for c in records[0].columns if c != "map_max"]
    pd.testing.assert_frame_equal(records[0][exact], records[1][exact], check_exact=True)
    pd.testing.assert_series_equal(records[0]["map_max"], records[1]["map_max"], check_exact=False, rtol=1e-5)
    assert summaries[0]["metrics"] == summaries[1]["metrics"]
