"""A health index from several features when no failure label exists.

Features are standardised on a healthy baseline (the first rows of a life). The index is the
first principal component of the standardised rows, the direction in which the asset moved
furthest from its healthy state, oriented so it rises with time (damage only accumulates) and
scaled so the healthy baseline sits at ``level`` with unit spread.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> damage = np.r_[np.zeros(100), np.linspace(0, 3, 100)]
>>> X = np.column_stack([damage, -2 * damage, np.zeros(200)]) + rng.normal(0, 0.1, (200, 3))
>>> hi = health_index(X, baseline=100)
>>> bool(abs(hi.values[:100].mean()) < 0.2 and hi.values[-1] > 10)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pitstop.ml.base import InvalidInputError, as_matrix
from pitstop.ml.rul.base import FloatArray


@dataclass(frozen=True)
class HealthIndex:
    """A fitted index: ``transform`` maps feature rows to one health value per row."""

    mean: FloatArray  # healthy mean of each feature
    scale: FloatArray  # healthy spread of each feature (1 where it was constant)
    weights: FloatArray  # unit-length direction of the first component, oriented to rise with damage
    spread: float  # healthy spread of the projection
    level: float  # where a healthy row lands
    values: FloatArray  # the index of the rows it was built from
    explained: float  # share of the standardised variance along the direction

    def transform(self, X: npt.ArrayLike) -> FloatArray:
        rows = as_matrix(X, n_features=len(self.mean))
        out: FloatArray = ((rows - self.mean) / self.scale) @ self.weights / self.spread + self.level
        return out


def health_index(X: npt.ArrayLike, *, baseline: int | None = None, level: float = 0.0) -> HealthIndex:
    """Build a health index from rows ``X`` (time order) whose first ``baseline`` rows are healthy.

    ``baseline`` defaults to the first fifth of the rows (at least 5). A feature constant over the
    baseline is standardised by its overall spread instead, so a step away from a constant still shows.
    """
    rows = as_matrix(X, min_rows=6)
    n = rows.shape[0]
    k = max(5, n // 5) if baseline is None else int(baseline)
    if not 2 <= k <= n:
        raise InvalidInputError(f"the healthy baseline needs 2 to {n} rows, got {k}")
    healthy = rows[:k]
    mean = healthy.mean(axis=0)
    scale = healthy.std(axis=0)
    overall = rows.std(axis=0)
    scale = np.where(scale > 1e-12, scale, np.where(overall > 1e-12, overall, 1.0))
    Z = (rows - mean) / scale
    # The first right-singular vector of the standardised rows (about the healthy mean, not the overall
    # one) is the direction of the largest departure from health.
    _, s, vt = np.linalg.svd(Z, full_matrices=False)
    w = vt[0]
    proj = Z @ w
    later = proj[k:] if n > k else proj
    if np.mean(later) < np.mean(proj[:k]) or (np.isclose(np.mean(later), np.mean(proj[:k])) and w.sum() < 0):
        w, proj = -w, -proj
    spread = float(proj[:k].std())
    spread = spread if spread > 1e-12 else 1.0
    explained = float(s[0] ** 2 / max(float(np.sum(s**2)), 1e-300))
    values = proj / spread + level
    return HealthIndex(mean, scale, w, spread, level, values, explained)
