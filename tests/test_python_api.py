"""The Python API: ``from benchmark import ...`` is lazy, and docs/python_api.md's examples run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "python_api.md"


def _python(code: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENCHMARK_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_import_benchmark_is_light_and_the_api_is_lazy(tmp_path):
    code = ("import sys, benchmark\n"
            "heavy = [m for m in ('benchmark.models', 'benchmark.methods', 'benchmark.metrics', 'benchmark.evaluate',"
            " 'hydra', 'torchvision') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "from benchmark import build_model, build_method, build_metric, evaluate\n"
            "import benchmark.evaluate as module\n"
            "assert module.ConfigError and callable(evaluate) and evaluate is benchmark.evaluate\n"
            "assert build_model.__module__ == 'benchmark.models.base' and 'build_metric' in dir(benchmark)\n"
            "print('ok')\n")
    out = _python(code, tmp_path, tmp_path / "cache")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


def test_the_documented_examples_run(tmp_path):
    """Every Python block of the doc, in order, in one fresh interpreter, without ``import benchmark.run``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3
    check = ("\nimport sys, json\n"
             "assert 'benchmark.run' not in sys.modules\n"
             "print('RESULT', json.dumps({'maps': list(maps.shape), "
             " 'records': summary['counts']['records'], 'status': summary['status'], 'metric': summary['metric']}))\n")
    out = _python("\n".join(blocks) + check, tmp_path, tmp_path / "cache")  # the photos are made there
    assert out.returncode == 0, out.stderr[-4000:]
    result = out.stdout.strip().splitlines()[-1]
    assert result.startswith("RESULT") and '"maps": [1, 224, 224]' in result, out.stdout
    assert '"status": "finished"' in result and '"metric": "localization"' in result and '"records": 5' in result
    runs = tmp_path / "results" / "runs" / "python_api"
    labels = sorted(p.relative_to(runs).parts[1] for p in runs.rglob("summary.json"))  # <model>/<label>/...
    assert labels == ["grad_cam", "my_maps"], labels
