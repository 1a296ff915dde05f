"""The fast drift paths give the straightforward computations' results to the bit: quantile edges
as `np.quantile`, counts as binning every value, order statistics as a full sort, KS as the
maximum over every pooled point (and as scipy's `ks_2samp`), threads or not."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from scipy.stats import ks_2samp

from pitstop.ml.drift import ReferenceProfile, compare
from pitstop.ml.drift import psi as drift
from pitstop.ml.drift.psi import (
    KS_SAMPLE,
    SELECT_MIN,
    FeatureProfile,
    ks_statistic,
    order_statistics,
    rank_counts,
)

Array = npt.NDArray[np.float64]
rng = np.random.default_rng(11)

SHAPES: dict[str, Callable[[int], Array]] = {
    "normal": lambda n: rng.normal(0, 1, n),
    "heavy tails": lambda n: rng.standard_cauchy(n),
    "ties": lambda n: np.round(rng.normal(0, 1, n), 1),
    "three values": lambda n: rng.integers(0, 3, n).astype(np.float64),
    "constant": lambda n: np.full(n, 7.0),
    "float limits": lambda n: np.concatenate([rng.normal(0, 1, n - 3), [1.7e308, -1.7e308, 5e-324]]),
    "skewed": lambda n: rng.exponential(1, n) ** 8,
}


def plain_ks(sorted_reference: Array, current: Array) -> float:
    """The KS statistic over every pooled point (what pitstop computed before)."""
    cur = np.sort(current)
    points = np.concatenate([sorted_reference, cur])
    f_ref = np.searchsorted(sorted_reference, points, side="right") / len(sorted_reference)
    f_cur = np.searchsorted(cur, points, side="right") / len(cur)
    return float(np.max(np.abs(f_ref - f_cur)))


def plain_profile(values: Array, bins: int = 10) -> FeatureProfile:
    """The profile by full sort, `np.quantile` and binning every value (what pitstop computed before)."""
    inner = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1)
    ordered = np.sort(values)
    if len(ordered) > KS_SAMPLE:
        ordered = ordered[np.linspace(0, len(ordered) - 1, KS_SAMPLE).round().astype(np.int64)]
    return FeatureProfile(inner, counts.astype(np.int64), ordered, len(values))


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("n", [SELECT_MIN - 1, SELECT_MIN, 250_001])
def test_order_statistics_are_those_of_a_full_sort(shape: str, n: int) -> None:
    data = SHAPES[shape](n)
    rng.shuffle(data)
    ranks = np.concatenate([rng.integers(0, n, 300), [0, n - 1], np.linspace(0, n - 1, 2_000).round()]).astype(np.int64)
    assert np.array_equal(order_statistics(data, ranks), np.sort(data)[ranks])


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("n", [2, 3, 17, 9_999, 10_001, 150_000])
def test_profile_is_the_plain_profile(shape: str, n: int) -> None:
    data = SHAPES[shape](max(n, 4))[:n]
    fast, plain = FeatureProfile.of(data), plain_profile(data)
    assert np.array_equal(fast.edges, plain.edges)
    assert np.array_equal(fast.counts, plain.counts)
    assert np.array_equal(fast.sorted_sample, plain.sorted_sample)
    assert fast.rows == plain.rows


@pytest.mark.parametrize("shape", list(SHAPES))
def test_rank_counts_are_those_of_binary_searches_in_the_sorted_sample(shape: str) -> None:
    reference = np.sort(SHAPES[shape](3_000))
    for current in (SHAPES[shape](30_000), np.concatenate([reference, reference[:500]]), SHAPES[shape](999)):
        ordered = np.sort(current)
        upto, below = rank_counts(reference, current)
        assert np.array_equal(upto, np.searchsorted(ordered, reference, side="right"))
        assert np.array_equal(below, np.searchsorted(ordered, reference, side="left"))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_ks_is_the_maximum_over_every_pooled_point_and_scipys(shape: str) -> None:
    reference = np.sort(SHAPES[shape](5_000))
    for current in (SHAPES[shape](20_000) * 0.9 + 0.05, SHAPES[shape](7), reference[::3].copy()):
        assert ks_statistic(reference, current) == plain_ks(reference, current)
        # the reference below KS_SAMPLE rows is kept whole: the statistic is the two-sample one
        assert ks_statistic(reference, current) == pytest.approx(ks_2samp(reference, current).statistic, abs=1e-12)


def test_reports_are_the_same_with_and_without_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = {f"f{i}": SHAPES[shape](60_000) for i, shape in enumerate(SHAPES)}
    current = {f"f{i}": SHAPES[shape](20_000) + 0.1 * i for i, shape in enumerate(SHAPES)}
    monkeypatch.setattr(drift, "PARALLEL_MIN_VALUES", 0)
    threaded = compare(ReferenceProfile.of(reference), current)
    monkeypatch.setattr(drift, "PARALLEL_MIN_VALUES", 10**12)
    profile = ReferenceProfile.of(reference)
    serial = compare(profile, current)
    assert threaded == serial
    for feature in serial.features:
        ref = profile.features[feature.feature]
        assert feature.ks_statistic == plain_ks(ref.sorted_sample, current[feature.feature])
        plain = plain_profile(reference[feature.feature])
        assert np.array_equal(ref.counts, plain.counts) and np.array_equal(ref.edges, plain.edges)
