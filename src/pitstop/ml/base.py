"""Estimator conventions shared by detectors, thresholds and twins.

Parameters are keyword-only, stored verbatim in ``__init__`` (no logic there) and read back
from the signature by `Estimator.get_params`; `Estimator.clone` rebuilds from them. Fitted
state lives in attributes ending in ``_`` and is set only by ``fit``.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from pitstop.errors import PitstopError

FloatArray = npt.NDArray[np.float64]


class NotFittedError(PitstopError, ValueError):
    """A model was used before `fit`."""

    code = "model.not_fitted"


class InvalidInputError(PitstopError, ValueError):
    """Input data has the wrong shape, is empty, or holds non-finite values."""

    code = "model.invalid_input"
    exit_code = 2


class Estimator:
    """Base for everything learnable: parameters from ``__init__``, ``clone``, ``repr``."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind is p.KEYWORD_ONLY]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def clone(self) -> Self:
        """A new, unfitted estimator with the same parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def as_matrix(X: npt.ArrayLike, *, n_features: int | None = None, min_rows: int = 1) -> FloatArray:
    """Validate a 2-D float matrix (a 1-D array is one column) of finite values."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"expected a numeric matrix: {exc}") from None
    if arr.ndim == 1:
        arr = arr[:, np.newaxis]
    if arr.ndim != 2:
        raise InvalidInputError(f"expected a 2-D matrix (rows x features), got {arr.ndim} dimensions")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise InvalidInputError(f"expected at least {min_rows} row(s) and one feature, got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise InvalidInputError(f"expected {n_features} features, got {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError("input holds NaN or infinite values")
    return arr
