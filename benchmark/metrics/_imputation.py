"""ROAD's noisy linear imputation (Rong et al., "A Consistent and Efficient Evaluation Strategy for Attribution
Methods", ICML 2022): each removed pixel becomes the weighted mean of its 8 neighbours, solved jointly.

For the removed pixels ``u`` the sparse system ``sum_n w_n (x_n - x_u) = 0`` (weights 1/6 for the 4
direct, 1/12 for the 4 diagonal neighbours; a neighbour outside the image drops out, known
neighbours go to the right-hand side) is solved per channel by ``scipy.sparse.linalg.spsolve``,
then ``noise * N(0, 1)`` is added to every imputed value. The system is the one of the authors'
code (``road_evaluation/imputations.py``, also in pytorch-grad-cam); here it is built in one
vectorized pass and the noise comes from a given generator.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import spsolve

NEIGHBOURS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12), (0, -1, 1 / 6), (-1, -1, 1 / 12),
              (1, 0, 1 / 6), (-1, 0, 1 / 6))  # (dy, dx, weight)


def linear_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """``image [C, H, W]`` with the pixels of ``removed [H, W]`` (bool) replaced by the solution of the system."""
    c, h, w = image.shape
    flat = image.reshape(c, -1).astype(np.float64)
    gone = np.asarray(removed, bool).ravel()
    idx = np.flatnonzero(gone)
    n = idx.size
    if n == 0:
        return image.copy()
    variable = np.full(h * w, -1)
    variable[idx] = np.arange(n)
    ys, xs = np.divmod(idx, w)
    weights_sum = np.ones(n)
    rhs = np.zeros((n, c))
    rows, cols, vals = [], [], []
    for dy, dx, weight in NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        weights_sum[~valid] -= weight
        rid, neighbour = np.flatnonzero(valid), ny[valid] * w + nx[valid]
        known = ~gone[neighbour]
        rhs[rid[known]] -= weight * flat[:, neighbour[known]].T
        rows.append(rid[~known])
        cols.append(variable[neighbour[~known]])
        vals.append(np.full(int((~known).sum()), weight))
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(-weights_sum)
    system = csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    solution = spsolve(system, rhs).reshape(n, c)
    out = flat.copy()
    out[:, idx] = solution.T
    return out.reshape(c, h, w)


def noisy_linear_imputation(image: torch.Tensor, removed: torch.Tensor, noise: float,
                            generator: torch.Generator | None) -> torch.Tensor:
    """``image [C, H, W]`` imputed where ``removed [H, W]``, plus ``noise`` x N(0, 1) on the imputed values."""
    filled = torch.from_numpy(linear_imputation(image.detach().cpu().double().numpy(), removed.cpu().numpy()))
    filled = filled.to(torch.float32)
    if noise:
        mask = removed.cpu().bool()
        filled[:, mask] += noise * torch.randn(filled.shape[0], int(mask.sum()), generator=generator)
    return filled.to(image.device)
