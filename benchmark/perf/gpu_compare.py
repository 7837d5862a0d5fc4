"""Records of one job on two devices compared within tolerances stated per metric column.

Rows are paired by ``(image_id, class_id)``. A column of integers, booleans or strings is a
*discrete outcome* (predictions, boxes, points, hits, correct flags): float rounding on another
device may flip one where two values tie or sit on a threshold, so such a column may differ in at
most ``DISCRETE_SHARE`` of the rows (at least one row), except the columns in ``EXACT``
(``degenerate``, ``error``: a map that fails on one device only is a defect), which may not differ
at all. A float column is compared on the rows whose discrete outcomes all agree (an IoU of two
different boxes says nothing about rounding), with the tolerance in ``FLOAT_TOLERANCES``:
``("rel", t)`` means ``|a - b| <= t * max(|a|, |b|)``, ``("abs", t)`` means ``|a - b| <= t``;
any other float column gets ``DEFAULT_FLOAT``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

KEYS = ("image_id", "class_id")
IGNORED = ("model", "method", "dataset")
EXACT = ("degenerate", "error", "occlusion_degenerate")
DISCRETE_SHARE = 0.05
FLOAT_TOLERANCES = {
    "map_max": ("rel", 1e-2),   # raw map scale: TF32/cuDNN kernels round differently
    "iou": ("abs", 1e-6),       # same box on both devices: the same IoU
    "distance_px": ("abs", 1e-6),  # same point: the same distance
    "rho": ("abs", 2e-2),       # Spearman correlation of two maps, each within rounding
    "logit": ("rel", 1e-2),
    "s": ("rel", 2e-2),         # the modified pointing game's normalized score
}
DEFAULT_FLOAT = ("rel", 1e-2)


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where two missing values are equal."""
    return ((a == b) | (a.isna() & b.isna())).to_numpy()


def allowed_differences(rows: int, column: str) -> int:
    """How many of ``rows`` paired rows may differ in a discrete ``column``."""
    return 0 if column in EXACT else max(1, math.floor(DISCRETE_SHARE * rows))


def compare_records(reference: pd.DataFrame, other: pd.DataFrame) -> dict:
    """Per column: rows that differ (discrete) or the largest difference (float), each against its tolerance."""
    keys = [k for k in KEYS if k in reference.columns]
    ref, oth = reference.set_index(keys).sort_index(), other.set_index(keys).sort_index()
    missing = sorted(set(map(str, ref.index)) ^ set(map(str, oth.index)))
    common = ref.index.intersection(oth.index)
    ref, oth = ref.loc[common], oth.loc[common]
    columns, agree, out = [c for c in ref.columns if c not in IGNORED], np.ones(len(common), bool), []
    floats = [c for c in columns if pd.api.types.is_float_dtype(ref[c]) and c not in EXACT]
    for c in columns:
        if c in floats:
            continue
        same = _same(ref[c], oth[c]) if c in oth.columns else np.zeros(len(common), bool)
        agree &= same
        n, allowed = int((~same).sum()), allowed_differences(len(common), c)
        out.append({"column": c, "kind": "discrete", "differ": n, "allowed": allowed, "ok": n <= allowed})
    for c in floats:
        kind, tol = FLOAT_TOLERANCES.get(c, DEFAULT_FLOAT)
        a, b = ref[c].to_numpy(float)[agree], oth[c].to_numpy(float)[agree] if c in oth.columns else np.full(agree.sum(), np.nan)
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(a - b))
        scale = np.maximum(np.abs(a), np.abs(b)) if kind == "rel" else np.ones_like(diff)
        worst = float(np.nanmax(np.where(both_nan, 0.0, diff / np.maximum(scale, 1e-30)), initial=0.0))
        bad = bool(np.isnan(diff).any())
        out.append({"column": c, "kind": f"float {kind}", "max_diff": worst, "tolerance": tol,
                    "rows_compared": int(agree.sum()), "ok": (not bad) and worst <= tol})
    return {"rows": len(common), "missing_rows": len(missing), "columns": out,
            "ok": not missing and all(c["ok"] for c in out)}
