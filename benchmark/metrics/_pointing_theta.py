"""Threshold calibration for the modified pointing game (Grad-CAM Sec. 4.3 and appendix; DESIGN 4.4).

A record (image, predicted class) has the map maximum ``s``, ``present`` (class in the GT labels)
and ``hit_if_accepted`` (present and the point hits the class's GT region). With threshold θ the
class is accepted iff ``s >= θ``; the outcome is a hit iff (accepted and ``hit_if_accepted``) or
(rejected and not ``present``). A record with a non-finite ``s`` is a miss at every θ.

Calibration split (decision): an image belongs to the calibration split iff the first 8 bytes of
``sha256(image_id)``, read as an unsigned integer over 2**64, are ``< fraction`` — deterministic,
independent of order, sharding and of every value in the records; or the records of a separate
run (another split) are the calibration set and every image of this run is evaluated. θ is chosen
from calibration records only: among the cuts between consecutive distinct calibration scores,
the one with the highest calibration accuracy (ties: the lowest cut); θ is the midpoint of the two
scores around the cut (the lowest score when accepting all is best; just above the highest when
rejecting all is best).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd


def calibration_mask(image_ids, fraction: float) -> np.ndarray:
    """Bool ``[N]``: which image ids fall in the hash-defined calibration split."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"pointing_modified option calibration_fraction={fraction}: expected 0 < fraction < 1")
    keys = [int.from_bytes(hashlib.sha256(str(i).encode()).digest()[:8], "big") / 2.0 ** 64 for i in image_ids]
    return np.asarray(keys, dtype=np.float64) < fraction


def _arrays(records: pd.DataFrame):
    s = records["s"].to_numpy(dtype=np.float64)
    finite = np.isfinite(s)
    good_accept = records["hit_if_accepted"].to_numpy(bool) & finite
    good_reject = ~records["present"].to_numpy(bool) & finite
    return s, finite, good_accept, good_reject


def accuracy_at(records: pd.DataFrame, thetas) -> np.ndarray:
    """Pooled accuracy (fraction) of ``records`` at each θ in ``thetas`` (vectorized by sorting)."""
    s, finite, good_accept, good_reject = _arrays(records)
    thetas = np.atleast_1d(np.asarray(thetas, dtype=np.float64))
    if len(s) == 0:
        return np.full(len(thetas), np.nan)
    order = np.argsort(s[finite], kind="stable")
    sorted_s = s[finite][order]
    cum_accept = np.concatenate([[0], np.cumsum(good_accept[finite][order])])
    cum_reject = np.concatenate([[0], np.cumsum(good_reject[finite][order])])
    below = np.searchsorted(sorted_s, thetas, side="left")  # records with s < θ: rejected
    hits = cum_reject[below] + (cum_accept[-1] - cum_accept[below])
    return hits / len(s)


def choose_theta(calibration: pd.DataFrame) -> tuple[float, float]:
    """θ maximizing calibration accuracy, and that accuracy (fraction); NaNs without finite scores."""
    s = calibration["s"].to_numpy(dtype=np.float64)
    levels = np.unique(s[np.isfinite(s)])
    if len(levels) == 0:
        return math.nan, math.nan
    cuts = np.append(levels, np.inf)  # cut j accepts s >= levels[j]; the last rejects everything
    acc = accuracy_at(calibration, cuts)
    j = int(np.argmax(acc))
    if j == 0:
        theta = float(levels[0])
    elif j == len(levels):
        theta = float(np.nextafter(levels[-1], np.inf))
    else:
        theta = float((levels[j - 1] + levels[j]) / 2)
    return theta, float(acc[j])


def curve(calibration: pd.DataFrame, evaluation: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) and accepted fraction vs θ on both splits, θ over every distinct finite score."""
    s = np.concatenate([calibration["s"].to_numpy(np.float64), evaluation["s"].to_numpy(np.float64)])
    levels = np.unique(s[np.isfinite(s)])
    thetas = np.append(levels, np.nextafter(levels[-1], np.inf)) if len(levels) else np.zeros(0)
    out = {"theta": thetas}
    for name, part in (("calibration", calibration), ("evaluation", evaluation)):
        out[f"accuracy_{name}"] = 100.0 * accuracy_at(part, thetas) if len(thetas) else np.zeros(0)
        ps = np.sort(part["s"].to_numpy(np.float64))
        accepted = len(ps) - np.searchsorted(ps, thetas, side="left") - np.isnan(ps).sum()
        out[f"accepted_fraction_{name}"] = accepted / max(len(ps), 1)
    return pd.DataFrame(out)


def outcome(records: pd.DataFrame, theta: float) -> np.ndarray:
    """Bool ``[N]`` hit per record at ``theta`` (the game's rule, one record at a time)."""
    s, _, good_accept, good_reject = _arrays(records)
    with np.errstate(invalid="ignore"):
        accepted = s >= theta
    return np.where(accepted, good_accept, good_reject)
