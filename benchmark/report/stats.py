"""Intervals and paired tests for the tables, from statsmodels and scipy (nothing hand-written).

* ``proportion_ci``: Wilson 95 % interval of k successes in n (``statsmodels.stats.proportion.proportion_confint``).
* ``mean_ci``: 95 % percentile bootstrap interval of a mean (``scipy.stats.bootstrap``, seeded, 2000 resamples).
* ``paired``: one method against a reference on the same samples: the mean difference, its paired
  95 % bootstrap interval (resampling samples, i.e. the per-sample differences), and a p-value: exact
  McNemar (``statsmodels.stats.contingency_tables.mcnemar(exact=True)``) for binary outcomes, Wilcoxon
  signed-rank (``scipy.stats.wilcoxon``) for scores. With no difference on any sample the p-value is 1
  (no discordant pair; Wilcoxon is undefined there).
* ``holm``: Holm-corrected p-values of one table (``statsmodels.stats.multitest.multipletests``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
PROPORTION_METHOD = "Wilson score"
BOOTSTRAP_METHOD = "percentile bootstrap (2000 resamples, seed 0)"


def proportion_ci(successes: int, n: int) -> tuple[float, float]:
    """Wilson 95 % interval of a proportion, as fractions in [0, 1] (NaN, NaN when n is 0)."""
    if not n:
        return math.nan, math.nan
    lo, hi = proportion_confint(int(successes), int(n), alpha=1 - CONFIDENCE, method="wilson")
    return float(lo), float(hi)


def _bootstrap(values: np.ndarray) -> tuple[float, float]:
    if len(values) < 2 or np.all(values == values[0]):
        return (float(values[0]),) * 2 if len(values) else (math.nan, math.nan)
    res = stats.bootstrap((values,), np.mean, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                          method="percentile", rng=np.random.default_rng(SEED))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_ci(values) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of the finite ``values``."""
    values = np.asarray(values, dtype=float)
    return _bootstrap(values[np.isfinite(values)])


def class_mean_ci(hits, classes) -> tuple[float, float]:
    """95 % percentile bootstrap interval of a class-mean rate (mean over classes of per-class means),
    resampling records (a class absent from a resample does not count in it)."""
    hits, classes = np.asarray(hits, dtype=float), np.asarray(classes)
    if len(hits) < 2:
        return (math.nan, math.nan) if not len(hits) else (float(hits[0]),) * 2
    codes = np.unique(classes, return_inverse=True)[1]

    def statistic(index, axis=-1):
        index = np.atleast_2d(index).astype(int)
        out = np.empty(len(index))
        for row, idx in enumerate(index):
            count = np.bincount(codes[idx])
            present = count > 0
            out[row] = (np.bincount(codes[idx], weights=hits[idx])[present] / count[present]).mean()
        return out if out.size > 1 else out[0]

    res = stats.bootstrap((np.arange(len(hits)),), statistic, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                          method="percentile", rng=np.random.default_rng(SEED), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired(ours, reference, binary: bool) -> dict:
    """``ours - reference`` on the same samples (arrays in the same order): mean difference, paired
    95 % interval, two-sided p-value and the number of samples compared."""
    a, b = np.asarray(ours, dtype=float), np.asarray(reference, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if not len(a):
        return {"delta": math.nan, "lo": math.nan, "hi": math.nan, "p": math.nan, "n": 0}
    diff = a - b
    lo, hi = _bootstrap(diff)
    if not np.any(diff):
        p = 1.0
    elif binary:
        only_ours, only_ref = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
        both, neither = int(((a == 1) & (b == 1)).sum()), int(((a == 0) & (b == 0)).sum())
        p = float(mcnemar([[both, only_ours], [only_ref, neither]], exact=True).pvalue)
    else:
        p = float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
    return {"delta": float(diff.mean()), "lo": lo, "hi": hi, "p": p, "n": int(len(a))}


def holm(pvalues) -> list[float]:
    """Holm-corrected p-values (NaN stays NaN and is not counted among the tests)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out.tolist()
