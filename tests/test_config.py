"""Registry names equal config file names; every config and experiment composes."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.demo import jobs
from benchmark.methods import METHODS
from benchmark.metrics.base import METRICS, build_metric
from benchmark.models import MODELS

CONF = Path(__file__).resolve().parents[1] / "conf"


def _names(group):
    return {p.stem for p in (CONF / group).glob("*.yaml")}


def test_method_registry_equals_config_files():
    assert set(METHODS.names()) == _names("method")
    for path in (CONF / "method").glob("*.yaml"):
        assert OmegaConf.load(path).name == path.stem


def test_metric_registry_equals_config_files():
    build_metric("localization")  # imports every metric module
    assert set(METRICS.names()) == _names("metric")


def test_every_model_config_names_a_known_architecture():
    for path in (CONF / "model").glob("*.yaml"):
        spec = OmegaConf.load(path)
        if path.stem == "torchvision":  # the generic config: named after the architecture it builds
            assert OmegaConf.to_container(spec, resolve=True)["name"] == spec.arch
            continue
        assert spec.name == path.stem
        assert (spec.get("arch") or spec.name) in MODELS or spec.name in MODELS, path


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("experiment", sorted(_names("experiment")))
def test_every_job_of_every_experiment_resolves(experiment, tmp_path):
    """Every job of the sweep (every combination of its values), each assembled from one Hydra composition of
    the experiment as ``python -m benchmark.demo`` assembles them (``benchmark.demo.jobs``), then resolved.
    That assembly equals Hydra's composition of each job: checked on sample experiments by
    tests/test_demo_runner.py, and on every job of every experiment by ``make test-slow``
    (test_every_experiments_job_configs_equal_hydras_composition)."""
    overrides = [f"paths.results={tmp_path}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        composed = jobs._compose_experiment(experiment, overrides)
        params = OmegaConf.to_container(composed.hydra.sweeper.params) if composed.hydra.sweeper.get("params") else {}
        sweep = jobs.sweep_jobs(experiment, overrides, composed)
        seen = set()
        for job in sweep:
            config = jobs.assemble(composed, experiment, job)
            if config is None:  # what cannot be assembled is composed by Hydra, as the demo does
                config = OmegaConf.to_container(compose(config_name="config", overrides=job), resolve=True)
            assert experiment.startswith(config["experiment_name"])  # layer sweeps share one name
            seen |= set(job)
    expected = {f"{key}={value.strip()}" for key, values in params.items() for value in str(values).split(",")}
    assert sweep and expected <= seen  # each sweep value in some job


def test_config_typo_is_an_error_naming_the_key():
    with pytest.raises(Exception, match="threshhold"):
        _compose(["metric.threshhold=0.2"])
    with pytest.raises(TypeError, match="threshhold"):
        build_metric("localization", threshhold=0.2)


def test_unknown_group_option_lists_the_choices():
    with pytest.raises(Exception, match="grad_cam"):
        _compose(["method=grad_cma"])


def test_paths_cache_override_becomes_the_jobs_cache(tmp_path, monkeypatch):
    from benchmark.paths import cache_dir
    from benchmark.run import use_cache_dir

    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path / "env"))
    use_cache_dir({"paths": {"cache": str(tmp_path / "override")}})
    assert cache_dir() == (tmp_path / "override").resolve()
    use_cache_dir({"paths": {}})  # no setting: the environment stays as it is
    assert cache_dir() == (tmp_path / "override").resolve()


def test_a_later_job_in_the_same_process_composes_the_same_config(monkeypatch):
    """use_cache_dir runs in every job of a multirun; the next job's config (and hash) must not change."""
    from benchmark.run import use_cache_dir

    monkeypatch.delenv("BENCHMARK_CACHE", raising=False)

    def resolved():
        cfg = _compose(["experiment=demo", "model=toy_gap", "method=cam"])
        return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)

    first = resolved()
    use_cache_dir(first)
    assert resolved() == first
