from __future__ import annotations

import doctest

import numpy as np
import pytest

import pitstop.ml.detectors.novelty as novelty_module
from pitstop.ml.base import InvalidInputError, NotFittedError
from pitstop.ml.detectors import ValueNoveltyDetector, detector_registry
from pitstop.ml.thresholds import FixedThreshold, k_of_n, refractory


def test_docstring_examples_run() -> None:
    assert doctest.testmod(novelty_module).failed == 0


def test_a_step_raises_one_alarm_at_its_first_row() -> None:
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(0, 1, 800), rng.normal(10, 1, 200)]
    scores = ValueNoveltyDetector(warmup=50).score_learn(x)
    alarms = np.flatnonzero(refractory(FixedThreshold(value=0.1).fit([]).is_anomalous(scores), 300))
    assert alarms.tolist() == [800]


def test_a_seen_level_scores_zero_and_a_new_one_scores_its_distance() -> None:
    det = ValueNoveltyDetector(warmup=1).fit([0.0, 1.0, 2.0, 10.0])
    # nearest remembered value / range (10): exact hits are 0, a value beyond the range scores > 1
    np.testing.assert_allclose(det.score([2.0, 6.0, 25.0]), [0.0, 0.4, 1.5])


def test_old_values_are_forgotten() -> None:
    seen_then_left = np.r_[np.full(20, 5.0), np.linspace(0.0, 1.0, 200)]
    long_memory = ValueNoveltyDetector(warmup=1, memory=1000).fit(seen_then_left)
    short_memory = ValueNoveltyDetector(warmup=1, memory=100).fit(seen_then_left)
    assert long_memory.score([5.0])[0] == 0.0
    assert short_memory.score([5.0])[0] > 1.0  # the level 5 left the memory: new again


def test_protection_keeps_a_new_level_abnormal() -> None:
    rng = np.random.default_rng(5)
    x = np.r_[rng.normal(0, 1, 500), rng.normal(10, 1, 300)]
    learning = ValueNoveltyDetector(warmup=50).score_learn(x)
    protected = ValueNoveltyDetector(warmup=50, protect_above=0.5).score_learn(x)
    assert learning[-100:].max() < 0.1  # the new level has become normal
    assert protected[-100:].min() > 0.5  # it never does when protected


def test_flat_history_and_scoring_do_not_learn() -> None:
    det = ValueNoveltyDetector(warmup=2).fit(np.full(30, 45.0))
    before = det.score([45.0, 45.1])
    assert before[0] == 0.0 and np.isfinite(before[1]) and before[1] > 1.0
    det.score(np.full(100, 45.1))
    assert np.array_equal(det.score([45.0, 45.1]), before)


def test_refuses_bad_input_and_bad_params() -> None:
    with pytest.raises(NotFittedError):
        ValueNoveltyDetector().score_one(1.0)
    det = ValueNoveltyDetector().fit(np.zeros(10))
    with pytest.raises(InvalidInputError):
        det.learn_one(float("inf"))
    with pytest.raises(InvalidInputError):
        ValueNoveltyDetector().fit(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="memory"):
        ValueNoveltyDetector(memory=1).fit(np.zeros(10))


def test_registered_by_name() -> None:
    assert isinstance(detector_registry().create("value_novelty"), ValueNoveltyDetector)


def test_refractory_keeps_one_alarm_per_excursion() -> None:
    flags = np.zeros(100, dtype=bool)
    flags[[10, 11, 12, 30, 41, 90]] = True
    assert np.flatnonzero(refractory(flags, 20)).tolist() == [10, 41, 90]
    assert np.array_equal(refractory(flags, 0), flags)
    with pytest.raises(ValueError, match="rows"):
        refractory(flags, -1)


def test_k_of_n_drops_blips_and_keeps_runs() -> None:
    flags = np.zeros(30, dtype=bool)
    flags[[3, 10, 11, 12, 13]] = True
    kept = k_of_n(flags, 3, 4)
    assert np.flatnonzero(kept).tolist() == [12, 13, 14]  # 3 of the 4 rows ending there
    assert np.array_equal(k_of_n(flags, 1, 1), flags)
    with pytest.raises(ValueError, match="k <= n"):
        k_of_n(flags, 5, 4)
