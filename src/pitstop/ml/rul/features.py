"""Windowed features of one history, vectorized over rows (cumulative sums, no per-row loop).

Row ``i`` sees only rows ``<= i`` (trailing windows, shorter at the start of a history), so the
features at a history's last row are what a model could know at that moment.

Examples
--------
>>> x = np.arange(6, dtype=float)[:, None]
>>> f = rolling(x, 3)
>>> f[-1]  # mean, std, slope of the last three rows 3, 4, 5
array([4.        , 0.81649658, 1.        ])
"""

from __future__ import annotations

import numpy as np

from pitstop.ml.rul.base import FloatArray


def _window_sums(c: FloatArray, w: int) -> FloatArray:
    """Sum over the trailing window of ``w`` rows of the series whose cumulative sum (with a 0 row) is ``c``."""
    n = c.shape[0] - 1
    hi = np.arange(1, n + 1)
    lo = np.maximum(hi - w, 0)
    out: FloatArray = c[hi] - c[lo]
    return out


def rolling(X: FloatArray, w: int) -> FloatArray:
    """Trailing mean, std and least-squares slope (per row) over ``w`` rows: (n, 3 * columns).

    Columns are [means..., stds..., slopes...]. A window of one row has std and slope 0.
    """
    n, _ = X.shape
    zero = np.zeros((1, X.shape[1]))
    idx = np.arange(n, dtype=np.float64)[:, None]
    # Centre values on the first row so the cumulative sums keep their precision.
    Xc = X - X[:1]
    c1 = np.vstack([zero, np.cumsum(Xc, axis=0)])
    c2 = np.vstack([zero, np.cumsum(Xc * Xc, axis=0)])
    cj = np.vstack([zero, np.cumsum(Xc * idx, axis=0)])
    k = np.minimum(np.arange(1, n + 1), w).astype(np.float64)[:, None]
    s1, s2, sj = _window_sums(c1, w), _window_sums(c2, w), _window_sums(cj, w)
    mean = s1 / k
    var = np.maximum(s2 / k - mean * mean, 0.0)
    jbar = idx - (k - 1.0) / 2.0
    sjj = k * (k * k - 1.0) / 12.0
    slope = np.divide(sj - jbar * s1, sjj, out=np.zeros_like(s1), where=sjj > 0)
    return np.hstack([mean + X[:1], np.sqrt(var), slope])


def ewm(X: FloatArray, alpha: float) -> FloatArray:
    """Exponential smoothing down the rows, started at the first row (``alpha`` = 1: no smoothing)."""
    if alpha >= 1.0:
        return X.copy()
    from scipy.signal import lfilter

    zi = (1.0 - alpha) * X[:1]
    out: FloatArray = lfilter([alpha], [1.0, alpha - 1.0], X, axis=0, zi=zi)[0]
    return out


def initial_level(X: FloatArray, k: int) -> FloatArray:
    """Per row, the mean of the history's first ``k`` rows seen so far (causal: row i uses rows <= i)."""
    n = X.shape[0]
    c = np.cumsum(X, axis=0)
    upto = np.minimum(np.arange(n), k - 1)
    out: FloatArray = c[upto] / (upto + 1.0)[:, None]
    return out


def window_features(
    X: FloatArray,
    t: FloatArray,
    windows: tuple[int, ...],
    *,
    smoothing: float = 1.0,
    with_time: bool = True,
    baseline: int = 0,
) -> FloatArray:
    """Per row: the (smoothed) current values, rolling features at each window, the change since the
    history's first ``baseline`` rows (when > 0) and the time itself."""
    S = ewm(X, smoothing)
    parts = [S]
    parts.extend(rolling(S, w) for w in windows)
    if baseline > 0:
        parts.append(S - initial_level(S, baseline))
    if with_time:
        parts.append((t - t[0])[:, None])
    return np.hstack(parts)


def window_names(
    columns: tuple[str, ...], windows: tuple[int, ...], *, with_time: bool = True, baseline: int = 0
) -> list[str]:
    names = list(columns)
    for w in windows:
        names += [f"{c}_mean{w}" for c in columns]
        names += [f"{c}_std{w}" for c in columns]
        names += [f"{c}_slope{w}" for c in columns]
    if baseline > 0:
        names += [f"{c}_change" for c in columns]
    if with_time:
        names.append("time")
    return names
