"""Multivariate reconstruction: each signal rebuilt from all the others; the misfit is the score."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from pitstop.ml.base import FloatArray, as_matrix
from pitstop.ml.detectors.base import Detector


class ReconstructionDetector(Detector):
    """Reconstruct every standardized signal from the others by ridge regression; score the misfit.

    With the regularised precision matrix ``Θ = (C + αI)⁻¹`` of the standardized training data,
    the residual of signal j given all the others is ``(Θz)_j / Θ_jj`` (one matrix product for
    every signal at once). Residuals are scaled by their training spread; the score is the mean
    of their squares and each signal's square is its contribution, so a broken relation points
    at the signal that left it.

    Parameters
    ----------
    alpha
        Ridge penalty added to the correlation matrix's diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(size=(500, 1))
    >>> X = np.hstack([t, 2 * t, -t]) + 0.05 * rng.normal(size=(500, 3))
    >>> det = ReconstructionDetector().fit(X)
    >>> int(np.argmax(det.contributions([[1.0, 2.0, 3.0]])[0]))   # the third signal broke the pattern
    2
    """

    name: ClassVar[str] = "reconstruction"

    def __init__(self, *, alpha: float = 0.01) -> None:
        self.alpha = alpha

    def _fit(self, X: FloatArray) -> None:
        if self.alpha <= 0:
            raise ValueError("alpha must be positive")
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.maximum(X.std(axis=0), 1e-9)
        Z = (X - self.mean_) / self.scale_
        cov = Z.T @ Z / max(len(Z) - 1, 1)
        self.precision_ = np.linalg.inv(cov + self.alpha * np.eye(Z.shape[1]))
        self.residual_scale_ = np.ones(Z.shape[1])
        self.residual_scale_ = np.maximum(self._residuals(Z).std(axis=0), 1e-6)

    def _residuals(self, Z: FloatArray) -> FloatArray:
        result: FloatArray = (Z @ self.precision_) / np.diag(self.precision_) / self.residual_scale_
        return result

    def _terms(self, X: FloatArray) -> FloatArray:
        r = self._residuals((X - self.mean_) / self.scale_)
        return r * r

    def _score(self, X: FloatArray) -> FloatArray:
        result: FloatArray = self._terms(X).mean(axis=1)
        return result

    def contributions(self, X: npt.ArrayLike, /) -> FloatArray:
        self._check_fitted()
        return self._terms(as_matrix(X, n_features=self.n_features_in_)) / self.n_features_in_

    @classmethod
    def test_params(cls) -> list[dict[str, object]]:
        return [{}, {"alpha": 1.0}]
