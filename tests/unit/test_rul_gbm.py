"""The LightGBM RUL model: accurate on synthetic wear, intervals near nominal, regimes, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pitstop.ml.base import InvalidInputError, NotFittedError
from pitstop.ml.rul import GbmRulModel
from pitstop.ml.rul.base import History
from pitstop.ml.rul.evaluation import bounds, interval_coverage, rmse
from pitstop.ml.rul.gbm import find_regimes
from pitstop.testing.rul import synthetic_runs

FAST: dict[str, Any] = {"n_estimators": 120, "learning_rate": 0.08, "folds": 4}


@pytest.fixture(scope="module")
def fitted() -> GbmRulModel:
    return GbmRulModel(cap=125.0, smoothing=0.5, baseline=10, **FAST).fit(synthetic_runs(40, seed=11))


def _truth(test: list[History]) -> np.ndarray:
    return np.array([h.meta["truth_failed_at"] - h.t[-1] for h in test])


def test_accuracy_and_interval_coverage_near_nominal(fitted: GbmRulModel) -> None:
    test = synthetic_runs(300, seed=12, truncate=True)
    med, lo, hi = bounds(fitted.predict(test))
    truth = np.minimum(_truth(test), fitted.cap)
    assert rmse(med, truth) < 15.0
    assert 0.72 <= interval_coverage(lo, hi, truth) <= 0.88
    # near failure the interval is narrower than for a unit that still looks healthy
    width = hi - lo
    assert np.median(width[truth < 30]) < np.median(width[truth >= 100])


def test_out_of_fold_predictions_cover_every_training_row(fitted: GbmRulModel) -> None:
    oof = fitted.oof_
    assert len(oof["predicted"]) == len(oof["rul"]) == len(oof["unit"])
    assert len(fitted.models_) == 4
    assert "flat" not in {n.split("_")[0] for n in fitted.feature_names_}  # the constant column is dropped


def _with_regimes(runs: list[History], seed: int, regimes: int = 3) -> list[History]:
    """The runs with an operating setting that takes ``regimes`` levels and moves the temperature."""
    rng = np.random.default_rng(seed)
    out = []
    for h in runs:
        regime = rng.integers(0, regimes, len(h.t)).astype(float)
        X = h.X.copy()
        X[:, 1] += 20.0 * regime  # temperature depends strongly on the operating condition
        X = np.column_stack([X, regime * 10 + rng.normal(0, 0.1, len(h.t))])
        feats = (*h.features, "setting")
        out.append(History(h.unit, h.t, X, feats, h.failed_at, dict(h.meta)))
    return out


def test_regime_normalisation_removes_operating_conditions() -> None:
    train = _with_regimes(synthetic_runs(30, seed=21), 1)
    test = _with_regimes(synthetic_runs(120, seed=22, truncate=True), 2)
    truth = np.minimum(_truth(test), 125.0)
    plain = GbmRulModel(columns=("temp",), regimes=0, **FAST).fit(train)
    normed = GbmRulModel(columns=("temp",), regimes=3, regime_columns=("setting",), **FAST).fit(train)
    found = GbmRulModel(columns=("temp",), regime_columns=("setting",), **FAST).fit(train)
    assert found.regimes_ == 3  # found from the setting alone
    err_plain = rmse(plain.predict_median(test), truth)
    err_normed = rmse(normed.predict_median(test), truth)
    assert err_normed < 0.8 * err_plain
    assert rmse(found.predict_median(test), truth) == pytest.approx(err_normed)


@pytest.mark.parametrize("levels", [2, 6])
def test_find_regimes_counts_distinct_operating_points(levels: int) -> None:
    rng = np.random.default_rng(levels)
    points = rng.uniform(0, 100, (levels, 3))
    inputs = points[rng.integers(0, levels, 5000)] + rng.normal(0, 0.2, (5000, 3))
    assert find_regimes(inputs) == levels


def test_find_regimes_sees_one_regime_in_noise_and_drift() -> None:
    rng = np.random.default_rng(0)
    assert find_regimes(rng.normal(0, 1, (5000, 2))) == 1  # noise around one operating point
    assert find_regimes(rng.uniform(0, 1, (5000, 1))) == 1  # an input spread evenly over its range
    assert find_regimes(np.column_stack([np.linspace(0, 5, 3000), np.full(3000, 100.0)])) == 1  # a slow drift
    assert find_regimes(np.full((100, 2), 7.0)) == 1  # constant settings


def test_regime_inputs_are_never_features_even_with_one_regime() -> None:
    runs = synthetic_runs(8, seed=3)
    rng = np.random.default_rng(0)
    noisy = [
        History(h.unit, h.t, np.column_stack([h.X, rng.normal(0, 1, len(h.t))]), (*h.features, "setting"), h.failed_at)
        for h in runs
    ]
    model = GbmRulModel(regime_columns=("setting",), **FAST).fit(noisy)
    assert model.regimes_ == 1
    assert not any(n.startswith("setting") for n in model.feature_names_)


def test_errors(fitted: GbmRulModel) -> None:
    with pytest.raises(NotFittedError):
        GbmRulModel().predict(synthetic_runs(1, truncate=True))
    with pytest.raises(InvalidInputError):
        GbmRulModel(**FAST).fit(synthetic_runs(1))  # one run cannot hold any unit out
    with pytest.raises(InvalidInputError):
        GbmRulModel(**FAST).fit(synthetic_runs(3, truncate=True))  # no failures at all
    with pytest.raises(InvalidInputError):
        GbmRulModel(columns=("nope",), **FAST).fit(synthetic_runs(3))
    with pytest.raises(InvalidInputError):
        GbmRulModel(regimes=2, **FAST).fit(synthetic_runs(3))  # regimes need their columns
    with pytest.raises(InvalidInputError):
        GbmRulModel(regimes=-1, regime_columns=("temp",), **FAST).fit(synthetic_runs(3))
    h = synthetic_runs(1, truncate=True)[0]
    with pytest.raises(InvalidInputError):
        fitted.predict([History("x", h.t, h.X[:, :3], h.features[:3])])
    with pytest.raises(InvalidInputError):
        fitted.predict([History("x", h.t[::-1].copy(), h.X, h.features)])
