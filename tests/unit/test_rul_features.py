"""Windowed features and the health index."""

from __future__ import annotations

import numpy as np
import pytest

from pitstop.ml.base import InvalidInputError
from pitstop.ml.rul.features import ewm, initial_level, rolling, window_features, window_names
from pitstop.ml.rul.health import health_index


def test_rolling_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)) * 5 + 1000
    w = 7
    f = rolling(X, w)
    for i in (0, 1, 3, 6, 30, 59):
        rows = X[max(0, i - w + 1) : i + 1]
        np.testing.assert_allclose(f[i, :3], rows.mean(axis=0))
        np.testing.assert_allclose(f[i, 3:6], rows.std(axis=0), atol=1e-6)
        slopes = [np.polyfit(np.arange(len(rows)), rows[:, j], 1)[0] if len(rows) > 1 else 0.0 for j in range(3)]
        np.testing.assert_allclose(f[i, 6:], slopes, atol=1e-8)


def test_features_are_causal() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 2))
    t = np.arange(80.0)
    full = window_features(X, t, (5, 30), smoothing=0.3, baseline=10)
    cut = window_features(X[:50], t[:50], (5, 30), smoothing=0.3, baseline=10)
    np.testing.assert_allclose(full[:50], cut)
    assert full.shape[1] == len(window_names(("a", "b"), (5, 30), baseline=10))


def test_smoothing_and_initial_level() -> None:
    x = np.array([[0.0], [10.0], [10.0]])
    np.testing.assert_allclose(ewm(x, 0.5)[:, 0], [0.0, 5.0, 7.5])
    np.testing.assert_allclose(ewm(x, 1.0), x)
    np.testing.assert_allclose(initial_level(np.arange(5.0)[:, None], 2)[:, 0], [0, 0.5, 0.5, 0.5, 0.5])


def test_health_index_rises_with_damage_and_is_zero_when_healthy() -> None:
    rng = np.random.default_rng(2)
    damage = np.r_[np.zeros(150), np.expm1(np.linspace(0, 3, 150))]
    X = np.column_stack([2 + 0.5 * damage, 7 - 1.5 * damage, np.full(300, 4.0), 0.3 * damage])
    X = X + rng.normal(0, [0.1, 0.2, 0.0, 0.05], X.shape)
    index = health_index(X, baseline=100)
    assert abs(index.values[:100].mean()) < 1e-9 and index.values[:100].std() == pytest.approx(1.0)
    assert index.values[-1] > 50  # far above healthy noise
    assert np.corrcoef(index.values, damage)[0, 1] > 0.95
    assert index.weights[1] < 0 < index.weights[0]  # pressure falls as damage grows
    np.testing.assert_allclose(index.transform(X), index.values)
    assert health_index(X, baseline=100, level=1.0).values[:100].mean() == pytest.approx(1.0)
    # the sign does not depend on the sign of the inputs
    flipped = health_index(-X, baseline=100)
    np.testing.assert_allclose(flipped.values, index.values, atol=1e-8)


def test_health_index_refuses_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        health_index(np.ones((3, 2)))
    with pytest.raises(InvalidInputError):
        health_index(np.ones((20, 2)), baseline=1)
    with pytest.raises(InvalidInputError):
        health_index(np.full((20, 2), np.nan))
