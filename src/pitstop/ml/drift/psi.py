"""PSI with quantile bins from the reference and a floor on bin counts; KS from the sorted reference.

The reference profile (bin edges, bin counts, a sorted sample of the reference) is computed once,
stored with the model version, and reused for every comparison.

The statistics are judged with the sample size in mind. Under no drift PSI is biased upward, its
expectation about (bins - 1) * (1/n_ref + 1/n_cur) (a chi-square over n); readings of a slow
process repeat each other, so n is the *effective* number of rows, n / tau, with tau the
integrated autocorrelation time estimated on the reference by blocking (`effective_rows`) and
used for both windows. A feature's band is that of its PSI minus this expected noise (the band
limits raised by it), and a current window of fewer than `MIN_CURRENT_ROWS` rows or
`MIN_EFFECTIVE_ROWS` effective rows is "insufficient" (not enough data) instead of a band. The PSI and KS
values themselves are unchanged.

No large array is sorted whole. The profile's quantile edges and its sample are order statistics,
read through value buckets (`order_statistics`); the current window is placed among the sample's
points the same way (`rank_counts`), which gives the KS statistic from counts at the sample's
points and at the ends of the runs of current values between them (`_ks`); PSI counts are one
comparison pass per edge. Every result equals the straightforward computation's to the bit
(tests). Features go to up to `os.cpu_count()` threads when there is enough data to pay for them
(numpy releases the GIL in this work).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from pitstop.errors import InvalidInput

# PSI bands: below 0.1 stable, 0.1-0.2 monitor, 0.2-0.5 warn, 0.5 and above critical; each limit
# is raised by the PSI expected from sampling noise alone (`expected_psi`).
BANDS: tuple[tuple[float, str], ...] = ((0.5, "critical"), (0.2, "warn"), (0.1, "monitor"))
# Below this many current rows, or this many effective ones (rows over the reference's
# autocorrelation time), a feature's drift is "insufficient" (not enough data), not a band.
MIN_CURRENT_ROWS = 100
MIN_EFFECTIVE_ROWS = 10.0
INSUFFICIENT = "insufficient"
# Order of the bands; "insufficient" says nothing, so it ranks below "stable".
BAND_RANK = {INSUFFICIENT: -1, "stable": 0, "monitor": 1, "warn": 2, "critical": 3}
# Blocking (`effective_rows`): the largest block still leaves this many blocks.
MIN_BLOCKS = 8
DEFAULT_BINS = 10
# A bin's share never counts below this (half an observation in a 1,000-row window): a few rows in
# an empty bin must not cry wolf.
SHARE_FLOOR = 5e-4
# Sorted reference kept for KS: at most this many evenly spaced order statistics.
KS_SAMPLE = 10_000
KS_ALPHA = 0.05
# Below this many values in all, features are done one after another (threads cost more than they save).
PARALLEL_MIN_VALUES = 200_000

T = TypeVar("T")
R = TypeVar("R")


def band(psi: float, noise: float = 0.0) -> str:
    """The band of a PSI value whose expected value under no drift is `noise` (limits raised by it)."""
    for limit, name in BANDS:
        if psi >= limit + noise:
            return name
    return "stable"


def expected_psi(bins: int, reference_rows: float, current_rows: float) -> float:
    """PSI expected from sampling alone (no drift): (bins - 1) * (1/n_ref + 1/n_cur), effective rows."""
    return max(bins - 1, 0) * (1.0 / max(reference_rows, 1.0) + 1.0 / max(current_rows, 1.0))


def effective_rows(values: npt.NDArray[np.float64]) -> float:
    """How many independent rows the time-ordered `values` are worth: n / tau.

    tau (the integrated autocorrelation time, at least 1) by blocking: the variance of the means of
    blocks of 2, 4, 8, ... rows, times the block size, over the variance of the rows; for
    independent rows it stays near 1, for a slow process it grows with the block size until the
    blocks are longer than the process's memory. The largest over block sizes that leave at least
    `MIN_BLOCKS` blocks is taken (a memory longer than that is seen only partly). One pass over
    the rows, then halving sums of pairs of blocks.
    """
    n = len(values)
    if n < 2 * MIN_BLOCKS:
        return float(n)
    with np.errstate(all="ignore"):  # values near the float limits overflow: counted as independent
        centred = values - values.mean()
        variance = float(np.dot(centred, centred)) / n
    if not (0.0 < variance < np.inf):
        return float(n)
    tau, size, blocks = 1.0, 2, n // 2
    sums = centred[0 : 2 * blocks : 2] + centred[1 : 2 * blocks : 2]  # sums of blocks of `size` rows
    while blocks >= MIN_BLOCKS:
        spread = sums - sums.mean()
        tau = max(tau, float(np.dot(spread, spread)) / ((blocks - 1) * size * variance))
        blocks //= 2
        sums = sums[0 : 2 * blocks : 2] + sums[1 : 2 * blocks : 2]
        size *= 2
    return n / tau


@dataclass(frozen=True, slots=True)
class FeatureProfile:
    edges: npt.NDArray[np.float64]  # inner edges (bins - 1), strictly increasing
    counts: npt.NDArray[np.int64]
    sorted_sample: npt.NDArray[np.float64]
    rows: int
    # Independent rows the reference is worth (`effective_rows` of the values in time order);
    # None (profiles stored before it was kept): `rows`.
    effective: float | None = None

    @property
    def effective_rows(self) -> float:
        return float(self.rows) if self.effective is None else self.effective

    @classmethod
    def of(cls, values: npt.ArrayLike, bins: int = DEFAULT_BINS) -> FeatureProfile:
        return _profile(_finite(values), bins)

    def as_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "sorted_sample": self.sorted_sample.tolist(),
            "rows": self.rows,
            "effective_rows": self.effective_rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureProfile:
        effective = data.get("effective_rows")
        return cls(
            np.asarray(data["edges"], dtype=np.float64),
            np.asarray(data["counts"], dtype=np.int64),
            np.asarray(data["sorted_sample"], dtype=np.float64),
            int(data["rows"]),
            None if effective is None else float(effective),
        )


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    features: dict[str, FeatureProfile]

    @classmethod
    def of(cls, columns: Mapping[str, npt.ArrayLike], bins: int = DEFAULT_BINS) -> ReferenceProfile:
        names = list(columns)
        data = [_finite(columns[name]) for name in names]
        profiles = _map(lambda values: _profile(values, bins), data, sum(len(d) for d in data))
        return cls(dict(zip(names, profiles, strict=True)))

    def as_dict(self) -> dict[str, Any]:
        return {name: p.as_dict() for name, p in self.features.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        return cls({name: FeatureProfile.from_dict(p) for name, p in data.items()})


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    feature: str
    psi: float
    band: str
    ks_statistic: float
    ks_drifted: bool
    reference_share: list[float]
    current_share: list[float]
    noise: float = 0.0  # PSI expected from sampling alone (`expected_psi`): the band limits are raised by it
    current_rows: int = 0
    effective_current_rows: float = 0.0

    @property
    def drifted(self) -> bool:
        return self.band in ("warn", "critical")

    @property
    def excess(self) -> float:
        """PSI beyond what sampling alone gives (0 when not enough data); judged against 0.1 / 0.2 / 0.5."""
        return 0.0 if self.band == INSUFFICIENT else max(self.psi - self.noise, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "psi": round(self.psi, 6),
            "noise": round(self.noise, 6),
            "excess_psi": round(self.excess, 6),
            "current_rows": self.current_rows,
            "effective_current_rows": round(self.effective_current_rows, 1),
            "band": self.band,
            "drifted": self.drifted,
            "ks_statistic": round(self.ks_statistic, 6),
            "ks_drifted": self.ks_drifted,
            "reference_share": [round(s, 6) for s in self.reference_share],
            "current_share": [round(s, 6) for s in self.current_share],
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Input drift per feature and, for twins, drift of the residuals (measured minus predicted,
    per output) against the hold-out residuals. `band` is the worse of the two.

    Features in `excluded` (a model's ``drift_exclude``: seasonal inputs) are reported like the
    others but left out of every aggregate (max PSI, drifted share, bands): they move with the
    season, not with the model's health."""

    features: list[FeatureDrift]
    current_rows: int
    residuals: list[FeatureDrift] = field(default_factory=list)
    residual_rows: int = 0
    notes: list[str] = field(default_factory=list)
    excluded: frozenset[str] = frozenset()

    @property
    def counted(self) -> list[FeatureDrift]:
        """The input features that count toward the verdict (all but the excluded ones)."""
        return [f for f in self.features if f.feature not in self.excluded]

    @property
    def drifted_share(self) -> float:
        counted = self.counted
        return sum(f.drifted for f in counted) / len(counted) if counted else 0.0

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.counted), default=0.0)

    @property
    def residual_max_psi(self) -> float:
        return max((f.psi for f in self.residuals), default=0.0)

    @property
    def max_excess_psi(self) -> float:
        return max((f.excess for f in self.counted), default=0.0)

    @property
    def residual_max_excess_psi(self) -> float:
        return max((f.excess for f in self.residuals), default=0.0)

    @property
    def enough(self) -> bool:
        """Enough current rows to judge the inputs (else the band is "insufficient")."""
        return any(f.band != INSUFFICIENT for f in self.counted)

    @property
    def input_band(self) -> str:
        return worst_band(f.band for f in self.counted)

    @property
    def residual_band(self) -> str | None:
        return worst_band(f.band for f in self.residuals) if self.residuals else None

    @property
    def band(self) -> str:
        """The worse of input and residual drift; "insufficient" when the inputs cannot be judged."""
        if not self.enough:
            return INSUFFICIENT
        return worst_band([self.input_band, self.residual_band or INSUFFICIENT])

    def with_excluded(self, features: Iterable[str]) -> DriftReport:
        """This report with `features` left out of the verdict."""
        return replace(self, excluded=frozenset(features))

    def as_dict(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "enough": self.enough,
            "min_current_rows": MIN_CURRENT_ROWS,
            "max_psi": round(self.max_psi, 6),
            "max_excess_psi": round(self.max_excess_psi, 6),
            "input_band": self.input_band,
            "drifted_share": round(self.drifted_share, 4),
            "current_rows": self.current_rows,
            "excluded": sorted(self.excluded),
            "features": [{**f.as_dict(), "excluded": f.feature in self.excluded} for f in self.features],
            "residual_max_psi": round(self.residual_max_psi, 6),
            "residual_max_excess_psi": round(self.residual_max_excess_psi, 6),
            "residual_band": self.residual_band,
            "residual_rows": self.residual_rows,
            "residuals": [f.as_dict() for f in self.residuals],
            "notes": list(self.notes),
        }


def worst_band(bands: Iterable[str]) -> str:
    return max(bands, key=BAND_RANK.__getitem__, default=INSUFFICIENT)


def psi(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike, floor: float = SHARE_FLOOR) -> float:
    """Population stability index of two count vectors over the same bins."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    p = np.maximum(ref / max(ref.sum(), 1.0), floor)
    q = np.maximum(cur / max(cur.sum(), 1.0), floor)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_statistic(sorted_reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic between a sorted reference and a current sample."""
    upto, below = rank_counts(sorted_reference, _finite(current))
    return _ks(sorted_reference, len(current), upto, below)


def _ks(ref: npt.NDArray[np.float64], m: int, upto: npt.NDArray[np.int64], below: npt.NDArray[np.int64]) -> float:
    """sup |F_ref - F_cur| over the pooled points, from the counts of `rank_counts`.

    At a reference point r: F_ref(r) = #{ref <= r}/n and F_cur(r) = #{cur <= r}/m. The current
    points with the same #{ref <= x} = k form a run between two reference points, along which
    F_ref = k/n stays and F_cur rises; its largest value, #{cur < ref[k]}/m at the run's last
    point, is one candidate. Its smallest value is not needed: where it is farther from k/n than
    the largest, it is below k/n, and F_cur at ref[k-1], where F_ref is k/n too, is lower still. So
    the maximum over these candidates is the maximum over all pooled points, and equal to it in
    floating point (the same quotients of the same counts).
    """
    n = len(ref)
    at_ref = np.abs(np.searchsorted(ref, ref, side="right") / n - upto / m)
    ends = np.append(below, m)  # ends[k] = #{cur < ref[k]}; ends[n] = m
    runs = np.diff(ends, prepend=0) > 0  # runs that hold at least one current point
    at_cur = np.abs(np.arange(n + 1)[runs] / n - ends[runs] / m)
    return float(max(at_ref.max(), at_cur.max(initial=0.0)))


# `rank_counts`: buckets per reference point, and how many reference points a bucket may hold
# before its values are searched for instead of compared one point at a time.
_PER_POINT, _STEPS = 2, 3


def rank_counts(
    ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For sorted `ref`: #{cur <= ref[j]} and #{cur < ref[j]} for every j, without sorting `cur`.

    Both are cumulative counts of where each current value falls among the reference points. The
    value's bucket (equal width between ref's ends, the same non-decreasing function of the value
    as in `order_statistics`) says which reference points lie below it for sure and which few
    share its bucket; those are compared directly, a few vector passes. Values whose bucket holds
    more points (ties, very uneven data) are binary-searched. Exact for any data.
    """
    n = len(ref)
    lo, hi = float(ref[0]), float(ref[-1])
    buckets = _PER_POINT * n + 2
    scale = (buckets - 2) / (hi - lo) if hi > lo else 0.0
    if not (0.0 < scale < np.inf) or len(cur) < 1_000:
        ordered = np.sort(cur)
        return (
            np.searchsorted(ordered, ref, side="right").astype(np.int64),
            np.searchsorted(ordered, ref, side="left").astype(np.int64),
        )

    def bucket(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        with np.errstate(over="ignore"):  # values near the float limits: ±inf, clipped below
            position = (x - lo) * scale
        np.clip(position, -1.0, buckets - 2.0, out=position)
        position += 1.0
        return position.astype(np.int64)

    start = np.searchsorted(bucket(ref), np.arange(buckets + 1), side="left")  # bucket b: ref[start[b]:start[b+1]]
    index = bucket(cur)
    first = start[index]
    held = start[index + 1] - first
    at_most, under = first.copy(), first.copy()  # #{ref <= c}, #{ref < c}
    for step in range(_STEPS):
        point = ref[np.minimum(first + step, n - 1)]
        inside = held > step
        at_most += inside & (point <= cur)
        under += inside & (point < cur)
    crowded = held > _STEPS
    if crowded.any():
        at_most[crowded] = np.searchsorted(ref, cur[crowded], side="right")
        under[crowded] = np.searchsorted(ref, cur[crowded], side="left")
    # c < ref[k] exactly when #{ref <= c} <= k; c <= ref[j] exactly when #{ref < c} <= j
    below = np.cumsum(np.bincount(at_most, minlength=n + 1))[:n]
    upto = np.cumsum(np.bincount(under, minlength=n + 1))[:n]
    return upto.astype(np.int64), below.astype(np.int64)


def _profile(data: npt.NDArray[np.float64], bins: int) -> FeatureProfile:
    """Quantile edges exactly as `np.quantile` (method "linear") gives them, counts per bin, and
    the evenly spaced order statistics, all from `order_statistics` (no full sort of large data)."""
    n = len(data)
    low, high, gamma = _quantile_ranks(n, np.linspace(0, 1, bins + 1)[1:-1])
    sample = np.linspace(0, n - 1, KS_SAMPLE).round().astype(np.int64) if n > KS_SAMPLE else np.arange(n)
    values = order_statistics(data, np.concatenate([low, high, sample]))
    k = len(low)
    inner = np.unique(_lerp(values[:k], values[k : 2 * k], gamma))
    below = np.array([np.count_nonzero(data < edge) for edge in inner], dtype=np.int64)
    counts = np.diff(below, prepend=0, append=n).astype(np.int64)
    return FeatureProfile(inner.astype(np.float64), counts, values[2 * k :], n, effective_rows(data))


def _quantile_ranks(
    n: int, q: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The two order statistics (0-based ranks) and the weight between them of `np.quantile`'s
    "linear" method, with numpy's own arithmetic, so that `_lerp` gives its result to the bit (tested)."""
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    gamma = virtual - previous
    low = np.clip(previous, 0, n - 1).astype(np.int64)
    high = np.clip(previous + 1, 0, n - 1).astype(np.int64)
    low[virtual >= n - 1] = n - 1
    return low, high, gamma


def _lerp(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], gamma: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """numpy's interpolation for quantiles: from below under a weight of 0.5, from above from 0.5 on."""
    diff = b - a
    out: npt.NDArray[np.float64] = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


# Data smaller than this is simply sorted; larger goes through buckets (`order_statistics`).
SELECT_MIN = 100_000


def order_statistics(data: npt.NDArray[np.float64], ranks: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """`np.sort(data)[ranks]` for finite `data`, without sorting all of it when it is large.

    The values go into equal-width buckets between two extreme quantiles of a strided probe (the
    values beyond them into the two end buckets); the bucket number is a non-decreasing function
    of the value (rounded subtraction, multiplication by a positive scale, clipping, flooring), so
    the buckets are in value order. Counting them tells which bucket holds each wanted rank; only
    those buckets are gathered and sorted. Exact for any data; fast when the data spreads over the
    buckets (a few values each), and no slower than a sort plus a few passes when it does not.
    """
    n = len(data)
    if n < SELECT_MIN:
        return np.sort(data)[ranks]
    probe = np.sort(data[:: max(1, n // 4096)])
    cut = len(probe) // 1000
    lo, hi = float(probe[cut]), float(probe[len(probe) - 1 - cut])
    buckets = n // 4
    scale = (buckets - 2) / (hi - lo) if hi > lo else 0.0
    if not (0.0 < scale < np.inf):
        return np.sort(data)[ranks]
    with np.errstate(over="ignore"):  # values near the float limits: ±inf, clipped below
        position = (data - lo) * scale
    np.clip(position, -1.0, buckets - 2.0, out=position)
    position += 1.0
    index = position.astype(np.int64)
    counts = np.bincount(index, minlength=buckets)
    ends = np.cumsum(counts)  # ends[j] = how many values are in buckets 0..j
    holding = np.searchsorted(ends, ranks, side="right")
    wanted = np.zeros(buckets, dtype=bool)
    wanted[holding] = True
    chosen = np.sort(data[wanted[index]])
    kept = np.where(wanted, counts, 0)
    offset = np.cumsum(kept) - kept  # where each wanted bucket starts in `chosen`
    result: npt.NDArray[np.float64] = chosen[offset[holding] + ranks - (ends[holding] - counts[holding])]
    return result


def _map(func: Callable[[T], R], items: list[T], values: int) -> list[R]:
    """`func` over `items`, on threads when they hold enough `values` in all to pay for them."""
    workers = min(len(items), os.cpu_count() or 1)
    if workers < 2 or values < PARALLEL_MIN_VALUES:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))


def compare(profile: ReferenceProfile, current: Mapping[str, npt.ArrayLike]) -> DriftReport:
    """Drift of every profiled feature in ``current`` (columns by name) against the reference."""
    missing = sorted(set(profile.features) - set(current))
    if missing:
        raise InvalidInput(f"current data lacks features {missing}")
    names = list(profile.features)
    data = [_finite(current[name]) for name in names]
    work = [(name, profile.features[name], cur) for name, cur in zip(names, data, strict=True)]
    results = _map(lambda item: _drift_of(*item), work, sum(len(d) for d in data))
    return DriftReport(results, len(data[-1]) if data else 0)


def _drift_of(name: str, ref: FeatureProfile, cur: npt.NDArray[np.float64]) -> FeatureDrift:
    below_edges = np.array([np.count_nonzero(cur < edge) for edge in ref.edges], dtype=np.int64)
    counts = np.diff(below_edges, prepend=0, append=len(cur)).astype(np.int64)
    value = psi(ref.counts, counts)
    d = _ks(ref.sorted_sample, len(cur), *rank_counts(ref.sorted_sample, cur))
    # Both tests judged on effective rows: neighbouring readings of a slow process are not independent.
    # The process's memory is the reference's (the current window's own would grow with the drift
    # it should show: a trend looks like memory).
    n_eff = ref.effective_rows
    m_eff = len(cur) * n_eff / ref.rows
    n, m = min(n_eff, KS_SAMPLE), m_eff
    critical = np.sqrt(-np.log(KS_ALPHA / 2) / 2) * np.sqrt((n + m) / (n * m))
    noise = expected_psi(len(ref.counts), n_eff, m_eff)
    enough = len(cur) >= MIN_CURRENT_ROWS and m_eff >= MIN_EFFECTIVE_ROWS
    return FeatureDrift(
        name,
        value,
        band(value, noise) if enough else INSUFFICIENT,
        d,
        bool(enough and d > critical),
        (ref.counts / ref.counts.sum()).tolist(),
        (counts / counts.sum()).tolist(),
        noise,
        len(cur),
        m_eff,
    )


def _finite(values: npt.ArrayLike | Sequence[float]) -> npt.NDArray[np.float64]:
    data = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(data)
    if not finite.all():
        data = data[finite]
    if len(data) < 2:
        raise InvalidInput("drift needs at least 2 finite values per feature")
    return data
