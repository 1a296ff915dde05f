"""Detector protocol: ``fit(X) -> self``, ``score(X)`` with higher meaning more anomalous."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from pitstop.ml.base import Estimator, FloatArray, InvalidInputError, NotFittedError, as_matrix


class Detector(Estimator, abc.ABC):
    """Batch anomaly detector. Scores are unthresholded; **higher means more anomalous**.

    Thresholds are separate fitted objects (`pitstop.ml.thresholds`). A detector that can say
    which signals drive a score overrides `contributions`.
    """

    name: ClassVar[str]
    n_features_in_: int

    @abc.abstractmethod
    def _fit(self, X: FloatArray) -> None: ...

    @abc.abstractmethod
    def _score(self, X: FloatArray) -> FloatArray: ...

    def fit(self, X: npt.ArrayLike, /) -> Self:
        """Learn normal behaviour from rows of X (rows x features). Returns self."""
        data = as_matrix(X, min_rows=self._min_rows())
        self._fit(data.copy())
        self.n_features_in_ = data.shape[1]
        return self

    def score(self, X: npt.ArrayLike, /) -> FloatArray:
        """One finite anomaly score per row of X."""
        self._check_fitted()
        return self._score(as_matrix(X, n_features=self.n_features_in_))

    def contributions(self, X: npt.ArrayLike, /) -> FloatArray | None:
        """Per-row, per-feature share of the score (rows x features), or None if not supported."""
        return None

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    @classmethod
    def _min_rows(cls) -> int:
        return 2

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        """Parameter sets the contract suite instantiates the detector with."""
        return [{}]


class StreamingDetector(Detector):
    """A univariate detector that learns one value at a time.

    A subclass writes `_ensure_state` (creates the fitted ``*_`` attributes when missing, after
    checking its parameters), `score_one` and `learn_one`, and names its fitted attributes in
    ``state``; batch `fit` (learn in order), `score` (no learning) and prequential `score_learn`
    come from here.
    """

    univariate: ClassVar[bool] = True
    state: ClassVar[tuple[str, ...]] = ("n_seen_", "n_features_in_")

    @abc.abstractmethod
    def _ensure_state(self) -> None: ...

    @abc.abstractmethod
    def score_one(self, x: float, /) -> float: ...

    @abc.abstractmethod
    def learn_one(self, x: float, /) -> None: ...

    def score_learn(self, X: npt.ArrayLike, /) -> FloatArray:
        """Score each value, then learn it (prequential): what a live stream would have seen."""
        values = as_matrix(X, n_features=1)[:, 0]
        self._ensure_state()
        out = np.empty(len(values))
        for i, x in enumerate(values.tolist()):
            out[i] = self.score_one(x)
            self.learn_one(x)
        return out

    def _fit(self, X: FloatArray) -> None:
        if X.shape[1] != 1:
            raise InvalidInputError(f"{self.name} is univariate; got {X.shape[1]} features")
        for name in self.state:
            self.__dict__.pop(name, None)
        self._ensure_state()
        for x in X[:, 0].tolist():
            self.learn_one(x)

    def _score(self, X: FloatArray) -> FloatArray:
        return np.array([self.score_one(x) for x in X[:, 0].tolist()], dtype=np.float64)

    @classmethod
    def _min_rows(cls) -> int:
        return 1


def robust_location_scale(X: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Median and MAD-based scale (1.4826·MAD, floored by a small fraction of the std) per column."""
    median = np.median(X, axis=0)
    mad = 1.4826 * np.median(np.abs(X - median), axis=0)
    floor = np.maximum(0.01 * X.std(axis=0), 1e-9)
    scale: FloatArray = np.maximum(mad, floor)
    return median, scale
