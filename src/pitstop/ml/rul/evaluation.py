"""Scoring remaining-life estimates: RMSE, the NASA/PHM08 score, interval coverage, early/late errors.

The C-MAPSS conventions (shared/datasets/README.md, section 1): one prediction per test unit at
its last row; the truth may be capped at the training cap (``cap_truth``) and a report says which;
the NASA score is a **sum** over units, with late predictions (d = predicted - true >= 0)
penalised more than early ones.

Examples
--------
>>> nasa_score([110.0], [100.0])  # ten cycles late
1.718...
>>> rmse([90.0, 110.0], [100.0, 100.0])
10.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pitstop.ml.base import InvalidInputError
from pitstop.ml.rul.base import FloatArray, RulEstimate


def _pair(predicted: npt.ArrayLike, truth: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(predicted, dtype=np.float64).ravel()
    y = np.asarray(truth, dtype=np.float64).ravel()
    if p.shape != y.shape or p.size == 0:
        raise InvalidInputError(f"need as many predictions as truths (>0), got {p.size} and {y.size}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(y))):
        raise InvalidInputError("predictions and truths must be finite")
    return p, y


def cap_truth(truth: npt.ArrayLike, cap: float) -> FloatArray:
    """The capped-truth convention: ``min(y, cap)``."""
    return np.minimum(np.asarray(truth, dtype=np.float64), cap)


def rmse(predicted: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """Root mean squared error over units."""
    p, y = _pair(predicted, truth)
    return float(np.sqrt(np.mean((p - y) ** 2)))


def nasa_score(predicted: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """PHM08 score, summed over units: exp(-d/13)-1 when early (d<0), exp(d/10)-1 when late (d>=0)."""
    p, y = _pair(predicted, truth)
    d = p - y
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def early_late(predicted: npt.ArrayLike, truth: npt.ArrayLike) -> dict[str, float]:
    """Error = predicted - true: late (>0, the failure comes before the prediction) and early counts."""
    p, y = _pair(predicted, truth)
    d = p - y
    return {
        "n": float(d.size),
        "late": float(np.sum(d > 0)),
        "early": float(np.sum(d < 0)),
        "mean_error": float(d.mean()),
        "mean_abs_error": float(np.abs(d).mean()),
        "median_abs_error": float(np.median(np.abs(d))),
    }


def bounds(estimates: Sequence[RulEstimate]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Medians, lower and upper bounds of estimates as arrays."""
    return (
        np.array([e.median for e in estimates], dtype=np.float64),
        np.array([e.lower for e in estimates], dtype=np.float64),
        np.array([e.upper for e in estimates], dtype=np.float64),
    )


def interval_coverage(lower: npt.ArrayLike, upper: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """Share of truths inside their closed interval [lower, upper]."""
    lo, y = _pair(lower, truth)
    hi, _ = _pair(upper, truth)
    return float(np.mean((lo <= y) & (y <= hi)))


def coverage_of(estimates: Sequence[RulEstimate], truth: npt.ArrayLike) -> float:
    """Share of truths inside the estimates' intervals."""
    _, lo, hi = bounds(estimates)
    return interval_coverage(lo, hi, truth)


def report(estimates: Sequence[RulEstimate], truth: npt.ArrayLike, *, cap: float | None = None) -> dict[str, float]:
    """RMSE, NASA score, coverage and mean interval width of estimates against ``truth`` (capped if ``cap``)."""
    y = np.asarray(truth, dtype=np.float64)
    if cap is not None:
        y = cap_truth(y, cap)
    med, lo, hi = bounds(estimates)
    return {
        "rmse": rmse(med, y),
        "nasa": nasa_score(med, y),
        "coverage": interval_coverage(lo, hi, y),
        "mean_width": float(np.mean(hi - lo)),
    }
