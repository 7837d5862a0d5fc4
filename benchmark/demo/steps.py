"""The steps of ``make demo`` around the experiments, run in the demo's process and timed.

Before: the embedded synthetic data (``python -m data_prep.synthetic``, a no-op when its recorded
hashes match), the pointing game's multi-object scenes (``python -m data_prep.synthetic_multi``,
likewise) and the shipped toy weights' check (``python -m benchmark.training``). After: the demo
tables (``python -m benchmark.report --experiment demo``), the real-photo figure
(``python -m benchmark.report.real_photos``) and the comparison with the golden tables
(``python -m benchmark.report.golden --check``). Each is the module's own ``main``, with the
demo's results and cache folders; a step that fails stops the demo with its exit code.
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.demo.times import Clock, step


def _call(main, argv: list[str]) -> int:
    """``main(argv)``'s exit code (None is 0; a ``SystemExit`` is its code, its message printed)."""
    threads = torch.get_num_threads()
    try:
        code = main(argv)
    except SystemExit as err:
        if isinstance(err.code, str):
            print(err.code, flush=True)
            return 1
        code = err.code
    finally:
        torch.set_num_threads(threads)  # a step may pin threads for its own reproducibility
    return int(code or 0)


def prepare(clock: Clock | None, cache: Path) -> int:
    """The embedded data and the shipped-weight check; the first failing step's code, else 0."""
    from data_prep.synthetic import main as synthetic
    from data_prep.synthetic_multi import main as synthetic_multi

    from benchmark.training.toy import main as weights

    with step(clock, "embedded data (generated or checked)"):
        code = _call(synthetic, ["--out", str(cache / "data" / "synthetic")])
        if not code:  # the pointing game's scenes too, before the workers start (each would wait for them)
            code = _call(synthetic_multi, ["--root", str(cache / "data" / "synthetic_multi")])
    if code:
        return code
    with step(clock, "shipped-weight check"):
        return _call(weights, [])


def finish(clock: Clock | None, results: Path) -> int:
    """Tables, real-photo figure, golden comparison; the first failing step's code, else 0."""
    from benchmark.report.__main__ import main as report
    from benchmark.report.golden import main as golden
    from benchmark.report.real_photos import main as real_photos

    with step(clock, "tables"):
        code = _call(report, ["--results", str(results), "--experiment", "demo"])
    if code:
        return code
    with step(clock, "real-photo figure"):
        code = _call(real_photos, ["--out", str(results / "figures")])
    if code:
        return code
    with step(clock, "comparison with the golden tables"):
        return _call(golden, ["--check", "--tables", str(results / "tables"), "--results", str(results)])
