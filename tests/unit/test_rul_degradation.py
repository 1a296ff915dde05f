"""The degradation-trend model: close to the true RUL, intervals near nominal, with 0 to 3 failures."""

from __future__ import annotations

import numpy as np
import pytest

from pitstop.ml.base import InvalidInputError, NotFittedError
from pitstop.ml.rul import DegradationRulModel, create
from pitstop.ml.rul.base import History
from pitstop.testing.rul import synthetic_runs


def _at(run: History, fraction: float) -> tuple[History, float]:
    assert run.failed_at is not None
    stop = int(fraction * run.failed_at)
    return History(run.unit, run.t[: stop + 1], run.X[: stop + 1], run.features), run.failed_at - run.t[stop]


def _score(model: DegradationRulModel, fraction: float, seeds: range) -> tuple[float, float, float]:
    errors, covered = [], []
    for seed in seeds:
        cut, truth = _at(synthetic_runs(1, seed=seed)[0], fraction)
        [e] = model.predict([cut])
        errors.append((e.median - truth) / truth)
        covered.append(e.lower <= truth <= e.upper)
    return float(np.median(np.abs(errors))), float(np.median(errors)), float(np.mean(covered))


@pytest.mark.parametrize("failures", [0, 1, 3])
def test_estimates_are_close_and_intervals_cover(failures: int) -> None:
    runs = synthetic_runs(failures, seed=1000) if failures else []
    model = DegradationRulModel(failure_level=5.0).fit(runs)
    coverages = []
    for fraction in (0.5, 0.6, 0.7, 0.8, 0.9):
        rel_error, bias, coverage = _score(model, fraction, range(40))
        assert rel_error < 0.2, (fraction, rel_error)
        assert abs(bias) < 0.08, (fraction, bias)
        coverages.append(coverage)
    # 80% nominal over the life; the bootstrap alone (no failures) runs narrow, the calibration on
    # a few runs can overshoot. Per stage of life it varies more than that.
    assert 0.6 <= np.mean(coverages) <= 0.97, coverages


def test_threshold_is_learned_from_failures() -> None:
    model = DegradationRulModel().fit(synthetic_runs(2, seed=7))
    assert model.threshold_ == pytest.approx(5.0, rel=0.1)
    assert model.n_failures_ == 2 and model.scale_ > 0
    assert DegradationRulModel(failure_level=3.0).fit([]).threshold_ == 3.0


def test_healthy_history_is_far_from_failure() -> None:
    run = synthetic_runs(1, seed=3)[0]
    young = History("u", run.t[:20], run.X[:20], run.features)
    [e] = DegradationRulModel(failure_level=5.0).fit([]).predict([young])
    assert e.lower >= 10 * 19 and e.upper >= e.median
    [learned] = DegradationRulModel().fit(synthetic_runs(3, seed=8)).predict([young])
    assert learned.lower > 30  # the shortest time from a visible trend to failure among the runs


def test_index_past_the_failure_level_means_no_life_left() -> None:
    t = np.arange(50.0)
    X = np.r_[np.ones(40), np.linspace(2, 8, 10)][:, None]
    [e] = DegradationRulModel(failure_level=5.0).fit([]).predict([History("u", t, X, ("health",))])
    assert e.median == e.lower == 0.0


def test_exponential_run_in_hours_with_a_window() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(0.0, 400.0)  # hours; failure at 480
    y = 1.0 + 4.0 * np.expm1(5 * t / 480) / np.expm1(5.0)
    X = (y * np.exp(rng.normal(0, 0.03, len(t))))[:, None]
    [e] = DegradationRulModel(failure_level=5.0, window=200.0).fit([]).predict([History("p", t, X, ("vib",))])
    assert e.median == pytest.approx(81, rel=0.15)
    assert e.lower < e.median < e.upper


def test_errors() -> None:
    with pytest.raises(InvalidInputError):
        DegradationRulModel().fit([])  # no failures and no level
    with pytest.raises(InvalidInputError):
        DegradationRulModel(failure_level=0.5).fit([])
    with pytest.raises(NotFittedError):
        DegradationRulModel(failure_level=5.0).predict(synthetic_runs(1, truncate=True))
    with pytest.raises(InvalidInputError):
        DegradationRulModel(feature="nope").fit(synthetic_runs(2))


def test_create_by_name_leaves_out_shared_settings_a_model_does_not_take() -> None:
    model = create("degradation", coverage=0.9, failure_level=4.0)
    assert isinstance(model, DegradationRulModel) and model.failure_level == 4.0 and model.coverage == 0.9
    gbm = create("gbm", coverage=0.9, failure_level=4.0)
    assert gbm.coverage == 0.9
    with pytest.raises(TypeError):
        create("gbm", no_such_param=1)


def test_a_load_swing_is_not_a_trend_below_the_minimum_rise() -> None:
    """Issue 16: healthy pumps and fans got `asset.rul_low` on their second day in the plant
    scorecard: a quiet first day, then the load swung the index 15 % up, many noise spreads
    above healthy. With `min_rise` 0.3 (the prognostics default) that is not wear; a rise of 60 %
    still is."""
    t = np.arange(60.0)
    quiet = 1.0 + 0.01 * np.sin(t[:30])
    swing = np.r_[quiet, 1.0 + 0.15 * np.sin(np.linspace(0, np.pi / 2, 30))]
    wear = np.r_[quiet, 1.0 + 0.6 * np.linspace(0, 1, 30) ** 2]
    plain, guarded = (
        DegradationRulModel(failure_level=5.0).fit([]),
        DegradationRulModel(failure_level=5.0, min_rise=0.3),
    )
    guarded.fit([])
    assert plain.predict([History("u", t, swing[:, None], ("health",))])[0].degrading
    assert not guarded.predict([History("u", t, swing[:, None], ("health",))])[0].degrading
    assert guarded.predict([History("u", t, wear[:, None], ("health",))])[0].degrading
    assert create("degradation", failure_level=5.0, min_rise=0.3).get_params()["min_rise"] == 0.3
    assert "min_rise" not in create("gbm", failure_level=5.0, min_rise=0.3).get_params()  # a shared setting
