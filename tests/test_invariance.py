"""Discrete outcomes do not depend on threads, batch size, shards or part size; floats agree closely.

Each job runs on the tiny synthetic data three ways: one torch thread, one image per batch, one
record per part; two threads, several images per batch, large parts; and split into two shards
that ``benchmark.runs.merge`` joins. Discrete columns (points, boxes, hits, flags, predicted
classes, error rows) must be identical; float columns within ``FLOAT_TOLERANCE`` of the column's
scale (docs/reliability.md, "Determinism").
"""

import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.data.manifest import read_manifest, write_manifest
from benchmark.data.transforms import Preprocess, bilinear_resize
from benchmark.evaluate import evaluate
from benchmark.metrics._pointing_core import first_argmax
from benchmark.models.base import CONF_DIR
from benchmark.runs import merge
from benchmark.runs.store import RunStore

FLOAT_TOLERANCE = 1e-6  # of max |column|

JOBS = {
    "localization": ["metric=localization", "method=grad_cam"],
    "localization_cam": ["metric=localization_cam", "method=cam", "metric.options.jpeg_quality=0"],
    "pointing": ["metric=pointing", "method=center"],
    "pointing_torchray": ["metric=pointing", "method=gradient", "metric.options.smooth=0.02",
                          "model.preprocessing=shorter_side"],
    "pointing_modified": ["metric=pointing_modified", "method=grad_cam"],
    "occlusion_correlation": ["metric=occlusion_correlation", "method=grad_cam", "metric.options.stride=8",
                              "metric.options.bootstrap=100", "metric.options.figure_images=0"],
}


def _config(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def _records(overrides, threads: int) -> pd.DataFrame:
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        summary = evaluate(_config(overrides))
    finally:
        torch.set_num_threads(old)
    return RunStore(summary["run_dir"]).load()[0]


def assert_same_records(a: pd.DataFrame, b: pd.DataFrame, where: str) -> None:
    """Discrete columns identical, float columns within ``FLOAT_TOLERANCE`` of the column's scale."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b), where
    for name in a.columns:
        x, y = a[name], b[name]
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
            xs, ys = x.to_numpy(np.float64), y.to_numpy(np.float64)
            assert np.array_equal(np.isnan(xs), np.isnan(ys)), f"{where}: NaNs of {name}"
            finite = ~np.isnan(xs)
            scale = max(np.abs(xs[finite]).max(initial=0.0), 1e-30)
            worst = np.abs(xs[finite] - ys[finite]).max(initial=0.0)
            assert worst <= FLOAT_TOLERANCE * scale, f"{where}: {name} differs by {worst} (scale {scale})"
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), f"{where}: discrete column {name} differs"


def _broken_copy(tiny_synthetic, tmp_path) -> list[str]:
    """Overrides pointing at a copy of the val manifest whose third image is truncated."""
    src = read_manifest(tiny_synthetic / "data" / "synthetic" / "manifests" / "val")
    images = tmp_path / "images"
    shutil.copytree(src.image_root, images)
    path = images / src.table.loc[2, "path"]
    path.write_bytes(path.read_bytes()[:200])
    write_manifest(tmp_path / "broken", src.table, {**src.meta, "image_root": str(images)})
    return [f"dataset.root={tmp_path / 'broken'}", "dataset.generate=null", "on_error=record"]


def _invariance(job: str, tiny_synthetic, tmp_path, limit: int = 6, extra=()) -> None:
    torchray = "model.preprocessing=shorter_side" in JOBS[job]
    common = ["model=toy_gap", *JOBS[job], f"dataset.limit={limit}", "progress=false", "num_workers=0", *extra]
    serial = _records([*common, "batch_size=1", "part_size=1", f"paths.results={tmp_path / 'a'}"], threads=1)
    batched = _records([*common, f"batch_size={1 if torchray else 4}", "part_size=512",
                        f"paths.results={tmp_path / 'b'}"], threads=2)
    assert len(serial) >= limit
    assert_same_records(serial, batched, f"{job}: 1 thread, batch 1, part 1 vs 2 threads, batch 4, part 512")
    schemas = [pq.read_schema(p).remove_metadata() for p in sorted(tmp_path.glob("[ab]/runs/**/records.parquet"))]
    assert len(schemas) == 2 and schemas[0] == schemas[1]  # one Arrow schema whatever the part size
    shards = tmp_path / "c"
    for shard in (0, 1):
        _records([*common, "batch_size=1" if torchray else "batch_size=2", "dataset.num_shards=2",
                  f"dataset.shard={shard}", f"dataset.limit={limit // 2}", f"paths.results={shards}"], threads=2)
    (merged,) = merge.merge_all(shards, strict=True)
    assert_same_records(serial, RunStore(merged).load()[0], f"{job}: unsharded vs 2 shards merged")


@pytest.mark.parametrize("job", sorted(JOBS))
def test_discrete_outcomes_do_not_depend_on_threads_batches_parts_or_shards(job, tiny_synthetic, tmp_path):
    _invariance(job, tiny_synthetic, tmp_path, limit=4)


def test_error_rows_and_their_schema_do_not_depend_on_batches_parts_or_shards(tiny_synthetic, tmp_path):
    """``on_error=record`` with a truncated image: the error row and the column types are the same
    at part size 1 (an error-only part) and 512 (one part mixing both)."""
    _invariance("localization", tiny_synthetic, tmp_path, extra=_broken_copy(tiny_synthetic, tmp_path / "data"))
    records = RunStore(next(tmp_path.glob("a/runs/**/records.parquet")).parent).load()[0]
    assert records["error"].notna().sum() == 1 and "JPEG" in records["error"].dropna().iloc[0]


def test_resize_to_original_is_the_same_for_any_thread_count_and_any_number_of_maps():
    torch.manual_seed(0)
    maps = F.interpolate(torch.rand(3, 1, 14, 14), size=(224, 224), mode="bilinear", align_corners=False)[:, 0]
    prep = Preprocess(224, (0.0,) * 3, (1.0,) * 3)
    old = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            for hw in ((375, 500), (100, 77)):
                together = prep.to_original(maps, hw)
                alone = torch.cat([prep.to_original(maps[i:i + 1], hw) for i in range(3)])
                assert torch.equal(together, alone), (threads, hw)  # F.interpolate differs here by 1.8e-7
                outs.append((hw, together))
    finally:
        torch.set_num_threads(old)
    for hw, out in outs:
        assert torch.equal(out, next(o for h, o in outs if h == hw))
        reference = F.interpolate(maps[None], size=hw, mode="bilinear", align_corners=False)[0]
        assert (out - reference).abs().max() <= 2e-6 * reference.abs().max()


@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_resize_by_hand(align_corners):
    m = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    out = bilinear_resize(m, (4, 4), align_corners)
    assert torch.allclose(out, F.interpolate(m[None], size=(4, 4), mode="bilinear", align_corners=align_corners)[0])
    if not align_corners:  # source x = (i + 0.5) / 2 - 0.5 clamped at 0: 0, 0.25, 0.75, 1
        assert out[0, 0].tolist() == [0.0, 0.25, 0.75, 1.0]
    constant = bilinear_resize(torch.full((1, 5, 7), 0.1), (13, 11), align_corners)
    assert torch.all(constant == torch.tensor(0.1))  # a constant map stays exactly constant


def test_point_ignores_float_noise_between_tied_pixels():
    m = np.zeros((4, 5), np.float32)
    m[1, 3] = np.float32(0.8)
    m[2, 1] = np.nextafter(np.float32(0.8), np.float32(1))  # one ulp above: the same peak up to rounding
    assert first_argmax(m) == (3, 1)  # the first of the two in row-major order, whichever rounded higher
    assert first_argmax(m, near_tie=0.0) == (1, 2)
    m[2, 1] = np.float32(0.8 * (1 + 1e-5))  # a real difference wins
    assert first_argmax(m) == (1, 2)
