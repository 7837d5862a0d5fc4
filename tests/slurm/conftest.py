"""Fixtures of the Slurm tests: a private one-node cluster for the session, a small dataset, and a
helper that runs ``python -m benchmark -m hydra/launcher=slurm ...`` against that cluster.

Every test here is marked ``slurm`` (run by ``make test-slurm``, left out of ``make test``). Where
the cluster cannot run (not root, no package registry to install Slurm from), they skip and say why.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from private_cluster import PrivateCluster, Unavailable, ensure_installed
from slurm_jobs import N_VAL


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slurm)


@pytest.fixture(scope="session")
def slurm_cluster():
    """The private cluster: started once for the session, its daemons stopped by pid at the end."""
    folder = Path(tempfile.mkdtemp(prefix="slurm-"))  # a short path: munge's socket name has a length limit
    try:
        ensure_installed()
        cluster = PrivateCluster(folder, cpus=12).start()
    except Unavailable as err:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"no private Slurm cluster here: {err}")
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_cache(tmp_path_factory):
    """A cache folder holding a small synthetic dataset (the toy models' shipped weights are used)."""
    from data_prep.synthetic import generate

    cache = tmp_path_factory.mktemp("slurm-cache")
    generate(cache / "data" / "synthetic", seed=0, n_train=16, n_val=N_VAL)
    return cache
