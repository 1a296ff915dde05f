from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.ml.base import InvalidInputError, NotFittedError
from pitstop.ml.detectors import (
    EwmaZScoreDetector,
    IsolationForestDetector,
    PcaDetector,
    ReconstructionDetector,
    RobustZScoreDetector,
    detector_registry,
)
from pitstop.ml.thresholds import ContaminationThreshold, FixedThreshold, QuantileThreshold, threshold_registry


def _auc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """Probability that an anomalous row outscores a normal one."""
    return float((anomalous[:, None] > normal[None, :]).mean())


def _correlated(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, 2))
    mix = np.array([[1.0, 0.5, -1.0, 0.2, 0.8], [0.0, 1.0, 0.5, -0.7, 0.3]])
    return t @ mix + 0.1 * rng.normal(size=(n, 5))


@pytest.mark.parametrize(
    "detector",
    [RobustZScoreDetector(), PcaDetector(), IsolationForestDetector(random_state=0), ReconstructionDetector()],
    ids=lambda d: d.name,
)
def test_detectors_separate_shifted_points(detector) -> None:
    train, normal = _correlated(1000, 0), _correlated(300, 1)
    anomalous = _correlated(300, 2)
    anomalous[:, 2] += 3.0  # one signal off by 3 units
    det = detector.fit(train)
    assert _auc(det.score(normal), det.score(anomalous)) > 0.9


@pytest.mark.parametrize("detector", [PcaDetector(), ReconstructionDetector(), RobustZScoreDetector()])
def test_contributions_name_the_broken_signal(detector) -> None:
    det = detector.fit(_correlated(1000, 0))
    broken = _correlated(50, 3)
    broken[:, 3] += 2.0
    top = np.argmax(det.contributions(broken).mean(axis=0))
    assert top == 3


def test_pca_contributions_add_up_to_the_score() -> None:
    det = PcaDetector().fit(_correlated(500, 0))
    X = _correlated(20, 4)
    np.testing.assert_allclose(det.contributions(X).sum(axis=1), det.score(X))


def test_ewma_flags_a_step_and_does_not_learn_it() -> None:
    rng = np.random.default_rng(5)
    x = np.r_[rng.normal(0, 1, 500), rng.normal(10, 1, 100)]
    scores = EwmaZScoreDetector().score_learn(x)
    alarms = np.flatnonzero(scores > 6)
    assert alarms[0] == 500
    assert np.all(scores[500:] > 6)  # protected: the new level is never taken for normal


def test_ewma_without_protection_absorbs_the_step() -> None:
    rng = np.random.default_rng(5)
    x = np.r_[rng.normal(0, 1, 500), rng.normal(10, 1, 400)]
    scores = EwmaZScoreDetector(protect_above=None).score_learn(x)
    assert scores[500] > 6 and scores[-50:].max() < 6


def test_ewma_refuses_nan_and_multivariate() -> None:
    det = EwmaZScoreDetector().fit(np.zeros(40))
    with pytest.raises(InvalidInputError):
        det.learn_one(float("nan"))
    with pytest.raises(InvalidInputError):
        EwmaZScoreDetector().fit(np.zeros((40, 2)))


def test_thresholds() -> None:
    scores = np.arange(1000.0)
    assert QuantileThreshold(q=0.99).fit(scores).cutoff_ == pytest.approx(989.01)
    assert ContaminationThreshold(contamination=0.1).fit(scores).is_anomalous([950.0, 10.0]).tolist() == [True, False]
    assert FixedThreshold(value=2.0).fit([]).cutoff_ == 2.0
    with pytest.raises(NotFittedError):
        QuantileThreshold().is_anomalous([1.0])
    with pytest.raises(ValueError, match="finite"):
        QuantileThreshold().fit([np.nan])
    assert threshold_registry().names() == ["contamination", "fixed", "pot", "quantile"]


def test_pot_threshold_extrapolates_the_tail_to_the_risk_asked_for() -> None:
    """Issue 16: the stream scorer's cut-off comes from a target false-alarm rate. On exponential
    scores the exact cut-off for risk r is -ln(r); peaks over threshold finds it from the 2 % of
    scores above their 98th percentile, also for risks rarer than anything in the sample."""
    from pitstop.ml.thresholds import PotThreshold

    scores = np.random.default_rng(1).exponential(size=50_000)
    for risk in (1e-3, 1e-5, 1e-7):
        cutoff = PotThreshold(risk=risk).fit(scores).cutoff_
        assert cutoff == pytest.approx(-np.log(risk), rel=0.15)
    rare = PotThreshold(risk=1e-7).fit(scores)
    assert rare.cutoff_ > scores.max()  # beyond the sample: counting could not give it
    assert PotThreshold(risk=1e-4, margin=2.0).fit(scores).cutoff_ == pytest.approx(
        2.0 * PotThreshold(risk=1e-4).fit(scores).cutoff_
    )
    # a bounded (uniform) tail ends where the data ends: no risk pushes the cut-off far past it
    bounded = np.random.default_rng(2).uniform(size=50_000)
    assert PotThreshold(risk=1e-9).fit(bounded).cutoff_ < 1.05
    # too few distinct peaks: the highest score stands in for the fit
    assert PotThreshold(risk=1e-4).fit(np.ones(100)).cutoff_ == 1.0
    with pytest.raises(ValueError, match="risk"):
        PotThreshold(risk=0.5).fit(scores)


def test_robust_z_floor_keeps_a_quiet_signal_from_scoring_high_on_small_changes() -> None:
    """A signal that hardly moved while the detector learned (noise 0.001) would score a change
    of 0.1 as 100 sigma; with a floor of 0.5 (half a percent of a 0-100 span) it scores 0.2."""
    X = np.column_stack([np.random.default_rng(3).normal(0, 0.001, 500), np.random.default_rng(4).normal(0, 1, 500)])
    bare = RobustZScoreDetector().fit(X)
    floored = RobustZScoreDetector(floor=[0.5, 0.0]).fit(X)
    assert bare.score([[0.1, 0.0]])[0] > 50
    assert floored.score([[0.1, 0.0]])[0] == pytest.approx(0.2, abs=0.01)
    assert floored.score([[0.0, 5.0]])[0] == pytest.approx(bare.score([[0.0, 5.0]])[0])
    with pytest.raises(ValueError, match="floor"):
        RobustZScoreDetector(floor=[0.5]).fit(X)
    with pytest.raises(ValueError, match="floor"):
        RobustZScoreDetector(floor=[float("nan"), 1.0]).fit(X)


def test_registry_refuses_unknown_names() -> None:
    with pytest.raises(LookupError, match="unknown detector 'nope'"):
        detector_registry().get("nope")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3)), max_size=4), max_size=5
    )
)
def test_hostile_input_gets_a_clear_error(rows: list) -> None:
    det = RobustZScoreDetector()
    try:
        det.fit(rows)
    except InvalidInputError:
        return
    except ValueError as exc:  # ragged lists: numpy's own message, still a ValueError
        assert "inhomogeneous" in str(exc) or "sequence" in str(exc)
        return
    assert np.all(np.isfinite(det.score(rows)))
