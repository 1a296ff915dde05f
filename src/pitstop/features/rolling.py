"""Rolling statistics and windowing over 1-D series, vectorized with numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def sliding_windows(x: npt.ArrayLike, size: int, step: int = 1) -> FloatArray:
    """Windows of ``size`` samples every ``step`` samples, as a read-only ``(n_windows, size)`` view.

    Samples after the last whole window are dropped.

    Examples
    --------
    >>> sliding_windows([0, 1, 2, 3, 4], size=2, step=2).tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    if size < 1 or step < 1:
        raise ValueError("size and step must be at least 1")
    series = np.asarray(x, dtype=np.float64)
    if series.ndim != 1:
        raise ValueError("sliding_windows takes a 1-D series")
    if len(series) < size:
        return np.empty((0, size), dtype=np.float64)
    return np.lib.stride_tricks.sliding_window_view(series, size)[::step]


def rolling_stats(x: npt.ArrayLike, window: int) -> dict[str, FloatArray]:
    """Trailing rolling mean, std (population), min and max over ``window`` samples.

    Every output has the length of ``x``; the first ``window - 1`` values are NaN. The mean and
    std come from cumulative sums of the values centred on the series mean (stable enough for
    sensor data); min and max from a strided view.

    Examples
    --------
    >>> stats = rolling_stats([1.0, 2.0, 3.0, 4.0], window=2)
    >>> stats["mean"].tolist()
    [nan, 1.5, 2.5, 3.5]
    >>> stats["max"].tolist()
    [nan, 2.0, 3.0, 4.0]
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    series = np.asarray(x, dtype=np.float64)
    if series.ndim != 1:
        raise ValueError("rolling_stats takes a 1-D series")
    n = len(series)
    out = {name: np.full(n, np.nan) for name in ("mean", "std", "min", "max")}
    if n < window:
        return out
    centred = series - series.mean()
    c1 = np.concatenate(([0.0], np.cumsum(centred)))
    c2 = np.concatenate(([0.0], np.cumsum(centred * centred)))
    s1 = c1[window:] - c1[:-window]
    s2 = c2[window:] - c2[:-window]
    mean = s1 / window
    out["mean"][window - 1 :] = mean + series.mean()
    out["std"][window - 1 :] = np.sqrt(np.maximum(s2 / window - mean * mean, 0.0))
    view = np.lib.stride_tricks.sliding_window_view(series, window)
    out["min"][window - 1 :] = view.min(axis=1)
    out["max"][window - 1 :] = view.max(axis=1)
    return out
