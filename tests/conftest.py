"""Shared fixtures. ``benchmark`` is imported first so torchvision imports on a CPU-only torch.

``make test`` runs the suite under pytest-xdist (``-n auto --dist loadfile``): each worker is its own
process with its own ``tmp_path_factory`` base folder, and every test file runs on one worker. So a
session fixture (``tiny_synthetic``) is made once per worker, in that worker's folders; a test writes
only under ``tmp_path`` (or a fixture's folder), never into the repository or another fixed path,
and changes the environment only through ``monkeypatch``.
"""

import os

os.environ["WANDB_MODE"] = "disabled"  # W&B stays off unless a test asks for offline mode
# One thread per process, here and in the processes tests start: xdist already runs a worker per core.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import benchmark  # noqa: E402,F401
import pytest  # noqa: E402
import torch  # noqa: E402

# One thread: the tests' tiny forwards gain nothing from more, and lose a lot on a shared machine.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """A tiny synthetic dataset and quickly trained toy models in their own cache folder (one per
    xdist worker, about 3 s), made ``$BENCHMARK_CACHE`` for the rest of the worker's session."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("BENCHMARK_CACHE")
    os.environ["BENCHMARK_CACHE"] = str(cache)
    from data_prep.synthetic import generate

    from benchmark.training.toy import train_toy

    generate(cache / "data" / "synthetic", seed=0, n_train=96, n_val=24)
    for name in ("toy_vgg", "toy_gap"):
        train_toy(name, recipe={"epochs": 1})
    yield cache
    if old is None:
        os.environ.pop("BENCHMARK_CACHE", None)
    else:
        os.environ["BENCHMARK_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_multi(tiny_synthetic):
    """Tiny multi-object scenes and a one-epoch toy_gap_multi where the demo configs look for them
    (``<cache>/data/synthetic_multi``, ``<cache>/models/toy_gap_multi.pt``): a test that reads them asks
    for this fixture, else the first job to need them builds the full-size scenes (about 10 s)."""
    from benchmark.training.multilabel import train_multilabel_toy
    from data_prep.synthetic_multi import prepare_all

    manifests = prepare_all(tiny_synthetic / "data" / "synthetic_multi", n_train=16, n_val=8, n_test=8)
    train_multilabel_toy("toy_gap_multi", recipe={"epochs": 1}, manifests=manifests)
    return manifests
