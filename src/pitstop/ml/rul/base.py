"""Remaining useful life: what a model learns from (histories) and what it answers (estimates).

A `History` is one unit's life as rows of features ordered in time, with the time of its failure
when it failed (a run to failure) or ``None`` while it still runs. Time is in the unit the caller
chose (C-MAPSS cycles, hours for plant assets) and every estimate comes back in that unit.
A `RulModel` never answers with a bare point: each `RulEstimate` carries an interval and the
coverage it was built for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RulEstimate:
    """Remaining life from the last row of a history: median and a ``coverage`` interval."""

    median: float
    lower: float
    upper: float
    coverage: float  # nominal probability that the true RUL lies in [lower, upper], e.g. 0.8
    # False when no degradation is seen yet: the interval then only says failure is not near,
    # and nothing should be planned on it.
    degrading: bool = True

    def __post_init__(self) -> None:
        if not (0.0 <= self.lower <= self.median <= self.upper):
            raise ValueError(f"an estimate needs 0 <= lower <= median <= upper, got {self}")
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {self.coverage}")

    def as_dict(self) -> dict[str, float | bool]:
        return {
            "median": round(self.median, 3),
            "lower": round(self.lower, 3),
            "upper": round(self.upper, 3),
            "coverage": self.coverage,
            "degrading": self.degrading,
        }


@dataclass(frozen=True)
class History:
    """One unit's rows: ``t`` (n,) increasing, ``X`` (n, features); ``failed_at`` is None if still running."""

    unit: str
    t: FloatArray
    X: FloatArray
    features: tuple[str, ...]
    failed_at: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.t.ndim != 1 or self.X.ndim != 2 or self.X.shape[0] != self.t.shape[0]:
            raise ValueError(f"history {self.unit!r}: t must be (n,) and X (n, features)")
        if self.X.shape[1] != len(self.features):
            raise ValueError(f"history {self.unit!r}: {self.X.shape[1]} columns but {len(self.features)} names")

    @property
    def rul(self) -> FloatArray:
        """True remaining life at each row (only for a run to failure)."""
        if self.failed_at is None:
            raise ValueError(f"history {self.unit!r} has no failure: its RUL is unknown")
        return np.asarray(self.failed_at - self.t, dtype=np.float64)


@runtime_checkable
class RulModel(Protocol):
    """``fit`` on runs to failure; ``predict`` one estimate per history, at its last row."""

    coverage: float

    def fit(self, histories: Sequence[History]) -> Self: ...

    def predict(self, histories: Sequence[History]) -> list[RulEstimate]: ...
