"""Thresholds turn scores into decisions. They are fitted separately from detectors."""

from __future__ import annotations

import abc
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt

from pitstop.core.registry import Registry
from pitstop.ml.base import Estimator, NotFittedError

BoolArray = npt.NDArray[np.bool_]


class Threshold(Estimator, abc.ABC):
    """Fitted on scores of normal data; ``is_anomalous(scores)`` flags scores above ``cutoff_``."""

    name: ClassVar[str]
    cutoff_: float

    @abc.abstractmethod
    def fit(self, scores: npt.ArrayLike, /) -> Self: ...

    def is_anomalous(self, scores: npt.ArrayLike, /) -> BoolArray:
        if not hasattr(self, "cutoff_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        return np.asarray(scores, dtype=np.float64) > self.cutoff_


def _finite(scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(scores, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if len(arr) == 0:
        raise ValueError("no finite scores to fit a threshold on")
    return arr


class FixedThreshold(Threshold):
    """A cut-off given by hand.

    Examples
    --------
    >>> FixedThreshold(value=3.0).fit([]).is_anomalous([2.0, 4.0]).tolist()
    [False, True]
    """

    name: ClassVar[str] = "fixed"

    def __init__(self, *, value: float) -> None:
        self.value = value

    def fit(self, scores: npt.ArrayLike, /) -> Self:
        self.cutoff_ = float(self.value)
        return self


class QuantileThreshold(Threshold):
    """The ``q`` quantile of the normal scores, times ``margin``.

    Examples
    --------
    >>> QuantileThreshold(q=0.5).fit([1.0, 2.0, 3.0]).cutoff_
    2.0
    """

    name: ClassVar[str] = "quantile"

    def __init__(self, *, q: float = 0.995, margin: float = 1.0) -> None:
        self.q = q
        self.margin = margin

    def fit(self, scores: npt.ArrayLike, /) -> Self:
        if not 0.0 < self.q <= 1.0:
            raise ValueError("q must be in (0, 1]")
        self.cutoff_ = float(np.quantile(_finite(scores), self.q)) * self.margin
        return self


class ContaminationThreshold(Threshold):
    """Flags the ``contamination`` share of the fitted scores (PyOD's convention)."""

    name: ClassVar[str] = "contamination"

    def __init__(self, *, contamination: float = 0.01) -> None:
        self.contamination = contamination

    def fit(self, scores: npt.ArrayLike, /) -> Self:
        if not 0.0 < self.contamination < 0.5:
            raise ValueError("contamination must be in (0, 0.5)")
        self.cutoff_ = float(np.quantile(_finite(scores), 1.0 - self.contamination))
        return self


class PotThreshold(Threshold):
    """Peaks over threshold: the score exceeded with probability ``risk``, times ``margin``.

    The scores above their ``init_q`` quantile are fitted with a generalized Pareto
    distribution (the extreme-value law of exceedances, as SPOT does), which extrapolates the
    tail beyond the scores seen: a cut-off for a false-alarm rate rarer than the fitted data
    could show by counting. ``risk`` is the chance per score; to aim at a number of false alarms
    per week, pass that number times the scoring period over a week. A light tail (negative
    shape) ends at a finite point, so past it a smaller risk no longer moves the cut-off: the
    ``margin`` is then what stands between the normal data seen and operating states never seen.
    ``max_shape`` bounds the fitted shape: 0 takes the tail as no heavier than exponential (the
    law of smoothed Gaussian noise), so a few transients in a short sample cannot push the
    cut-off out of reach. With fewer than ``min_peaks`` exceedances the highest score stands in
    for the fit.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.random.default_rng(0).exponential(size=20_000)
    >>> round(PotThreshold(risk=1e-4).fit(scores).cutoff_, 1)  # exact: ln(1e4) = 9.21
    9.2
    """

    name: ClassVar[str] = "pot"

    def __init__(
        self,
        *,
        risk: float = 1e-4,
        margin: float = 1.0,
        init_q: float = 0.98,
        min_peaks: int = 10,
        max_shape: float | None = None,
    ) -> None:
        self.risk = risk
        self.margin = margin
        self.init_q = init_q
        self.min_peaks = min_peaks
        self.max_shape = max_shape

    def fit(self, scores: npt.ArrayLike, /) -> Self:
        from scipy import stats  # imported on use: scipy.stats takes a while to load

        if not 0.0 < self.risk < 1.0 - self.init_q:
            raise ValueError(f"risk must be in (0, {1.0 - self.init_q:g}): rarer than the initial quantile")
        s = _finite(scores)
        start = float(np.quantile(s, self.init_q))
        peaks = s[s > start] - start
        self.peaks_ = len(peaks)
        if len(peaks) < self.min_peaks or float(peaks.std()) == 0.0:
            self.shape_, self.scale_ = 0.0, 0.0
            cutoff = float(s.max())
        else:
            shape, _, scale = stats.genpareto.fit(peaks, floc=0.0)
            if self.max_shape is not None and shape > self.max_shape:
                shape = self.max_shape
                scale = float(stats.genpareto.fit(peaks, f0=shape, floc=0.0)[2])
            self.shape_, self.scale_ = float(shape), float(scale)
            ratio = self.risk * len(s) / len(peaks)
            if abs(shape) < 1e-6:
                cutoff = start - scale * float(np.log(ratio))
            else:
                cutoff = start + scale / shape * (ratio ** (-shape) - 1.0)
        self.cutoff_ = float(cutoff) * self.margin
        return self


# -- alarm post-processing ------------------------------------------------------------------
# Both rules are causal (row t depends on rows <= t only), so they apply to a live stream as they
# do to a recorded one.


def refractory(flags: npt.ArrayLike, rows: int, /) -> BoolArray:
    """Keep an alarm only if no alarm was kept in the ``rows`` rows before it.

    One excursion then raises one alarm instead of one per row, which is what a person (and a
    benchmark that charges each extra alarm, such as NAB) wants.

    Examples
    --------
    >>> refractory([1, 1, 1, 0, 0, 1, 0, 1], 3).astype(int).tolist()
    [1, 0, 0, 0, 0, 1, 0, 0]
    """
    if rows < 0:
        raise ValueError("rows must be 0 or more")
    raw = np.asarray(flags, dtype=bool).ravel()
    out = np.zeros(len(raw), dtype=bool)
    last = -rows - 1
    for i in np.flatnonzero(raw).tolist():
        if i - last > rows:
            out[i] = True
            last = i
    return out


def k_of_n(flags: npt.ArrayLike, k: int, n: int, /) -> BoolArray:
    """Flag row t when at least ``k`` of the ``n`` rows ending at t are flagged.

    A persistence rule: isolated blips are dropped, lasting excursions are kept (from their
    k-th flagged row on).

    Examples
    --------
    >>> k_of_n([0, 1, 0, 1, 1, 1, 0, 0, 0], 2, 3).astype(int).tolist()
    [0, 0, 0, 1, 1, 1, 1, 0, 0]
    """
    if not 1 <= k <= n:
        raise ValueError("need 1 <= k <= n")
    raw = np.asarray(flags, dtype=bool).ravel().astype(np.int64)
    counts = np.cumsum(raw)
    counts[n:] = counts[n:] - counts[:-n]
    result: BoolArray = counts >= k
    return result


THRESHOLDS: tuple[str, ...] = (
    "pitstop.ml.thresholds:FixedThreshold",
    "pitstop.ml.thresholds:QuantileThreshold",
    "pitstop.ml.thresholds:ContaminationThreshold",
    "pitstop.ml.thresholds:PotThreshold",
)


def threshold_registry() -> Registry[Threshold]:
    registry: Registry[Threshold] = Registry("threshold", "pitstop.thresholds")
    registry.load(THRESHOLDS)
    return registry
