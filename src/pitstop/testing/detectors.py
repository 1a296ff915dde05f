"""Contract suite for detectors: `check_detector(detector)` raises AssertionError on a breach.

Plugin authors run it over their own detectors; pitstop runs it over every registered one.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np

from pitstop.ml.base import NotFittedError
from pitstop.ml.detectors.base import Detector


def _data(n_features: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(300, 1))
    train = base + 0.3 * rng.normal(size=(300, n_features))
    test = np.vstack([train[:20], np.full((1, n_features), 12.0)])
    return train, test


def check_detector(detector: Detector) -> None:
    """Check the detector protocol on an unfitted detector (it is cloned, never modified)."""
    cls = type(detector)
    assert getattr(cls, "name", ""), f"{cls.__name__} needs a registry `name`"
    doc = cls.__doc__ or ""
    assert "Examples" in doc, f"{cls.__name__} docstring needs an Examples section"
    params = detector.get_params()
    assert not detector.is_fitted(), "check_detector takes an unfitted detector"

    univariate = getattr(cls, "univariate", False)
    train, test = _data(1 if univariate else 4)

    # scoring before fit is a clear error
    try:
        detector.clone().score(test)
    except NotFittedError:
        pass
    else:
        raise AssertionError("score() before fit() must raise NotFittedError")

    # fit returns self and does not touch its input
    det = detector.clone()
    before = train.copy()
    assert det.fit(train) is det, "fit() must return self"
    assert np.array_equal(train, before), "fit() must not modify its input"

    # one finite score per row; higher = more anomalous
    scores = det.score(test)
    assert scores.shape == (len(test),), f"score() shape {scores.shape} != ({len(test)},)"
    assert np.all(np.isfinite(scores)), "scores must be finite"
    assert scores[-1] > np.median(scores[:-1]), "an extreme outlier must score above typical rows"
    again = det.score(test)
    assert np.array_equal(scores, again), "score() must not change the detector"

    # contributions, when offered, are rows x features and finite
    contrib = det.contributions(test)
    if contrib is not None:
        assert contrib.shape == test.shape, "contributions() must be rows x features"
        assert np.all(np.isfinite(contrib))

    # clone keeps parameters and drops fitted state
    clone = det.clone()
    assert clone.get_params() == params and not clone.is_fitted(), "clone() keeps params, drops fitted state"

    # pickle and deep copy reproduce the scores
    for restored in (pickle.loads(pickle.dumps(det)), copy.deepcopy(det)):
        assert np.array_equal(restored.score(test), scores), "a pickled detector must score the same"

    # fixed seed: same scores twice
    twice = detector.clone().fit(train).score(test)
    if "random_state" not in params or params["random_state"] is not None:
        np.testing.assert_allclose(twice, scores, err_msg="fitting twice with the same params must agree")

    # wrong feature count is refused
    if not univariate:
        try:
            det.score(test[:, :-1])
        except ValueError:
            pass
        else:
            raise AssertionError("score() with the wrong number of features must raise")
