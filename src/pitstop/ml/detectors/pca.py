"""PCA monitoring: Hotelling's T² inside the model plane and Q (SPE) off it, with contributions."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from pitstop.ml.base import FloatArray, as_matrix
from pitstop.ml.detectors.base import Detector


class PcaDetector(Detector):
    """Hotelling T² and Q (squared prediction error) of a PCA model of standardized features.

    Each statistic is divided by its ``limit_quantile`` on the training data, so 1.0 means "as
    unusual as the training data gets"; ``statistic="combined"`` adds the two.

    Parameters
    ----------
    variance
        Fraction of the training variance the kept components explain (at most n_features - 1
        components are kept, so Q always sees something).
    statistic
        ``"t2"``, ``"q"`` or ``"combined"``.
    limit_quantile
        Quantile of the training statistic that scales it.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(size=(500, 1))
    >>> X = np.hstack([t, t + 0.1 * rng.normal(size=(500, 1))])   # two signals that move together
    >>> det = PcaDetector().fit(X)
    >>> bool(det.score([[1.0, -1.0]])[0] > 5 * det.score([[1.0, 1.0]])[0])   # broken correlation
    True
    """

    name: ClassVar[str] = "pca"

    def __init__(self, *, variance: float = 0.9, statistic: str = "combined", limit_quantile: float = 0.99) -> None:
        self.variance = variance
        self.statistic = statistic
        self.limit_quantile = limit_quantile

    def _fit(self, X: FloatArray) -> None:
        if self.statistic not in ("t2", "q", "combined"):
            raise ValueError(f"statistic must be 't2', 'q' or 'combined', not {self.statistic!r}")
        if not 0.0 < self.variance <= 1.0 or not 0.0 < self.limit_quantile < 1.0:
            raise ValueError("variance must be in (0, 1] and limit_quantile in (0, 1)")
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.maximum(X.std(axis=0), 1e-9)
        Z = (X - self.mean_) / self.scale_
        _, s, vt = np.linalg.svd(Z, full_matrices=False)
        eigen = s * s / max(len(Z) - 1, 1)
        share = np.cumsum(eigen) / max(eigen.sum(), 1e-12)
        k = int(np.searchsorted(share, self.variance - 1e-12) + 1)
        k = max(1, min(k, Z.shape[1] - 1 if Z.shape[1] > 1 else 1, len(eigen)))
        self.components_ = vt[:k].T  # features x k
        self.eigenvalues_ = np.maximum(eigen[:k], 1e-9)
        t2, q = self._statistics(Z)
        self.t2_limit_ = max(float(np.quantile(t2, self.limit_quantile)), 1e-9)
        self.q_limit_ = max(float(np.quantile(q, self.limit_quantile)), 1e-9)

    def _statistics(self, Z: FloatArray) -> tuple[FloatArray, FloatArray]:
        scores = Z @ self.components_
        t2 = (scores * scores / self.eigenvalues_).sum(axis=1)
        residual = Z - scores @ self.components_.T
        q = (residual * residual).sum(axis=1)
        return t2, q

    def _score(self, X: FloatArray) -> FloatArray:
        t2, q = self._statistics((X - self.mean_) / self.scale_)
        if self.statistic == "t2":
            return t2 / self.t2_limit_
        if self.statistic == "q":
            return q / self.q_limit_
        return t2 / self.t2_limit_ + q / self.q_limit_

    def contributions(self, X: npt.ArrayLike, /) -> FloatArray:
        """Per-feature terms that add up to the score (T² terms can be slightly negative)."""
        self._check_fitted()
        Z = (as_matrix(X, n_features=self.n_features_in_) - self.mean_) / self.scale_
        scores = Z @ self.components_
        t2_terms = Z * ((scores / self.eigenvalues_) @ self.components_.T)
        residual = Z - scores @ self.components_.T
        q_terms = residual * residual
        result: FloatArray
        if self.statistic == "t2":
            result = t2_terms / self.t2_limit_
            return result
        if self.statistic == "q":
            result = q_terms / self.q_limit_
            return result
        result = t2_terms / self.t2_limit_ + q_terms / self.q_limit_
        return result

    @classmethod
    def test_params(cls) -> list[dict[str, object]]:
        return [{}, {"statistic": "t2"}, {"statistic": "q", "variance": 0.5}]
