"""Robust z-score: distance from the median in units of the median absolute deviation."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from pitstop.ml.base import FloatArray, as_matrix
from pitstop.ml.detectors.base import Detector, robust_location_scale


class RobustZScoreDetector(Detector):
    """Largest robust z-score over the features: ``max_j |x_j - median_j| / (1.4826 MAD_j)``.

    Parameters
    ----------
    aggregate
        ``"max"`` (the worst feature) or ``"rms"`` (root mean square over features).
    floor
        Per feature, the smallest scale (in the feature's units): a deviation smaller than what
        matters for that signal (say half a percent of the sensor's span) never scores high,
        however quiet the signal was while the detector learned. None: no floor.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> det = RobustZScoreDetector().fit(X)
    >>> bool(det.score([[8.0, 0.0]])[0] > 5)
    True
    """

    name: ClassVar[str] = "mad"

    def __init__(self, *, aggregate: str = "max", floor: list[float] | None = None) -> None:
        self.aggregate = aggregate
        self.floor = floor

    def _fit(self, X: FloatArray) -> None:
        if self.aggregate not in ("max", "rms"):
            raise ValueError(f"aggregate must be 'max' or 'rms', not {self.aggregate!r}")
        self.median_, self.scale_ = robust_location_scale(X)
        if self.floor is not None:
            floor = np.asarray(self.floor, dtype=np.float64)
            if floor.shape != (X.shape[1],) or not np.all(np.isfinite(floor)) or np.any(floor < 0):
                raise ValueError(f"floor must hold {X.shape[1]} finite values >= 0, got {self.floor!r}")
            self.scale_ = np.maximum(self.scale_, floor)

    def _z(self, X: FloatArray) -> FloatArray:
        z: FloatArray = np.abs(X - self.median_) / self.scale_
        return z

    def _score(self, X: FloatArray) -> FloatArray:
        z = self._z(X)
        result: FloatArray = z.max(axis=1) if self.aggregate == "max" else np.sqrt((z * z).mean(axis=1))
        return result

    def contributions(self, X: npt.ArrayLike, /) -> FloatArray:
        self._check_fitted()
        return self._z(as_matrix(X, n_features=self.n_features_in_))

    @classmethod
    def test_params(cls) -> list[dict[str, object]]:
        return [{}, {"aggregate": "rms"}, {"floor": [0.5, 0.5, 0.5, 0.5]}]
