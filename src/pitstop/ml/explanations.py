"""Explanations: which signals drive an anomaly score, so a technician knows where to look."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pitstop.ml.base import InvalidInputError, as_matrix
from pitstop.ml.detectors.base import Detector


@dataclass(frozen=True, slots=True)
class Contribution:
    signal: str
    share: float  # of the positive contributions, 0..1


def top_signals(contributions: npt.ArrayLike, names: Sequence[str], top: int = 3) -> list[Contribution]:
    """The ``top`` signals by contribution, averaged over the rows given (an evidence window).

    Examples
    --------
    >>> [c.signal for c in top_signals([[0.1, 2.0, 0.5]], ["a", "b", "c"], top=2)]
    ['b', 'c']
    """
    values = as_matrix(contributions).mean(axis=0)
    if len(values) != len(names):
        raise InvalidInputError(f"{len(values)} contributions for {len(names)} signal names")
    positive = np.clip(values, 0.0, None)
    total = float(positive.sum()) or 1.0
    order = np.argsort(-positive, kind="stable")[:top]
    return [Contribution(names[i], round(float(positive[i]) / total, 4)) for i in order]


def explain(
    detector: Detector, X: npt.ArrayLike, names: Sequence[str], *, reference: npt.ArrayLike | None = None, top: int = 3
) -> list[Contribution]:
    """Top signals for rows X: the detector's own contributions (T²/Q terms, reconstruction
    residuals, robust z-scores) or, for detectors without them, each signal's robust deviation
    from ``reference`` (normal rows)."""
    contributions = detector.contributions(X)
    if contributions is None:
        if reference is None:
            raise InvalidInputError(f"{detector.name} gives no contributions; pass reference rows of normal data")
        from pitstop.ml.detectors.mad import RobustZScoreDetector

        contributions = RobustZScoreDetector().fit(reference).contributions(X)
    return top_signals(contributions, names, top)


def explain_residuals(residuals: npt.ArrayLike, names: Sequence[str], *, top: int = 3) -> list[Contribution]:
    """Top signals by twin residual: each output's mean squared scaled residual (measured minus
    predicted, over the twin's training spread) over the rows given. A fault shows where the
    asset stopped doing what its inputs say it should, not where inputs merely moved.

    Examples
    --------
    >>> [c.signal for c in explain_residuals([[0.5, -4.0, 1.0], [0.1, -3.0, 2.0]], ["a", "b", "c"], top=2)]
    ['b', 'c']
    """
    r = as_matrix(residuals)
    return top_signals(r * r, names, top)
