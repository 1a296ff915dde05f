"""Isolation forest, through scikit-learn (sign flipped: higher = more anomalous)."""

from __future__ import annotations

from typing import ClassVar

from pitstop.ml.base import FloatArray
from pitstop.ml.detectors.base import Detector


class IsolationForestDetector(Detector):
    """Adapter for `sklearn.ensemble.IsolationForest`; the score is ``-score_samples(X)``.

    Parameters
    ----------
    n_estimators, max_samples, max_features
        Passed to scikit-learn.
    random_state
        Seed; fix it for reproducible scores.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 3))
    >>> det = IsolationForestDetector(random_state=0).fit(X)
    >>> bool(det.score([[6.0, 6.0, 6.0]])[0] > det.score([[0.0, 0.0, 0.0]])[0])
    True
    """

    name: ClassVar[str] = "iforest"

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int | str = "auto",
        max_features: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.random_state = random_state

    def _fit(self, X: FloatArray) -> None:
        from sklearn.ensemble import IsolationForest  # imported on use: scikit-learn takes seconds to load

        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            random_state=self.random_state,
            n_jobs=1,
        ).fit(X)

    def _score(self, X: FloatArray) -> FloatArray:
        result: FloatArray = -self.forest_.score_samples(X)
        return result

    @classmethod
    def test_params(cls) -> list[dict[str, object]]:
        return [{"random_state": 0, "n_estimators": 50}]
