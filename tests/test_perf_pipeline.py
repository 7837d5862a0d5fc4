"""The host-pipeline section's inputs and rows (benchmark/perf/pipeline.py)."""

import numpy as np
import pytest
from PIL import Image

from benchmark.data.readers import load_rgb
from benchmark.perf import pipeline


def test_bench_jpegs_are_ilsvrc_like(tmp_path):
    paths = pipeline.make_jpegs(tmp_path, 3)
    sizes = []
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            sizes.append(im.size)
    assert sizes == [(500, 375), (375, 500), (500, 375)]
    assert not np.array_equal(load_rgb(paths[0]), load_rgb(paths[2]))  # different photos, not one repeated


def test_simplejpeg_decodes_to_the_pixels_pil_gives(tmp_path):
    sj = pytest.importorskip("simplejpeg", reason="simplejpeg (the bench extra) is not installed")
    for p in pipeline.make_jpegs(tmp_path, 4):
        assert np.array_equal(sj.decode_jpeg(p.read_bytes(), colorspace="RGB"), load_rgb(p))


def test_pipeline_rows_and_cores_per_gpu(tmp_path):
    notes = []
    rows = {r["step"]: r for r in pipeline.run({"images": 2, "models": ("vgg16",), "max_workers": 1}, 0.5, (1, 1),
                                               notes, device_ips={"vgg16": 1000.0})}
    per_image = 1 / rows["decode + preprocess"]["images_per_s"] + 1 / rows["to_original + box"]["images_per_s"]
    cores = rows["cores per GPU, vgg16"]
    assert cores["cores_per_gpu"] == pytest.approx(1000.0 * per_image) and "measured" in cores["note"]
    assert rows["draft scale for 224"]["note"].endswith("at 1/1 for a 224 x 224 input")  # 375 px: no DCT reduction
    assert rows["loader, num_workers 1"]["images_per_s"] > 0


def test_forward_rate_on_a_device_replaces_the_flop_assumption():
    import torch

    from benchmark.perf.sections import forward_ips

    assert forward_ips("toy_vgg", torch.device("cpu"), batch=2, size=64, calls=2) > 0  # what --device cuda passes on
