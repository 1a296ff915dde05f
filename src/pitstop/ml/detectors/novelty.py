"""Streaming univariate detector: how far a value lies from every value seen recently."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from typing import ClassVar

from pitstop.ml.base import InvalidInputError, NotFittedError
from pitstop.ml.detectors.base import StreamingDetector


class ValueNoveltyDetector(StreamingDetector):
    """Distance to the nearest recently seen value, as a share of the recent range.

    The detector remembers the last ``memory`` values it learned, kept sorted. A new value scores
    ``d / (max - min)``, where ``d`` is its distance to the nearest remembered value and
    ``max - min`` the range of the remembered values: 0 for a value it has seen before, about
    0.01 for one a little off the beaten track, and 1 or more for one beyond the whole range.
    So it says "this level was not visited lately" without assuming any distribution, which
    is what spikes, level shifts and drop-outs on a monitored signal have in common. Because
    old values are forgotten, a level left long ago counts as new again when it comes back.

    It learns one value at a time (`learn_one`) and scores one at a time (`score_one`);
    `score_learn` does both, prequentially, as a live stream would. Values that score above
    ``protect_above`` after the warm-up are **not learned** (``None``, the default, learns
    everything: a new level becomes normal once it has been seen). `fit` learns a batch in
    order; `score` scores a batch without learning. Each step costs O(log memory) to search
    and O(memory) to keep the list sorted.

    Decisions are separate: pair the scores with a `pitstop.ml.thresholds.FixedThreshold`
    (about 0.02 on NAB) and `pitstop.ml.thresholds.refractory`, so that one excursion raises
    one alarm rather than one per row.

    Parameters
    ----------
    memory
        How many of the most recent learned values are remembered.
    warmup
        Values learned before scores are given (scores are 0 until then).
    protect_above
        Score above which a value is not learned, or None to learn everything.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.random.default_rng(0).normal(size=300), 8.0]
    >>> scores = ValueNoveltyDetector(warmup=50).score_learn(x)
    >>> bool(scores[-1] > 0.5 and scores[50:-1].max() < 0.5)
    True
    """

    name: ClassVar[str] = "value_novelty"
    state = ("n_seen_", "sorted_", "recent_", "n_features_in_")

    def __init__(self, *, memory: int = 4000, warmup: int = 100, protect_above: float | None = None) -> None:
        self.memory = memory
        self.warmup = warmup
        self.protect_above = protect_above

    # -- streaming -------------------------------------------------------------------------
    def _ensure_state(self) -> None:
        if not hasattr(self, "n_seen_"):
            if self.memory < 2 or self.warmup < 1:
                raise ValueError("memory must be at least 2 and warmup at least 1")
            self.n_seen_ = 0
            self.sorted_: list[float] = []
            self.recent_: deque[float] = deque()
            self.n_features_in_ = 1

    def score_one(self, x: float, /) -> float:
        """Score one value without learning it."""
        if not hasattr(self, "n_seen_"):
            raise NotFittedError("ValueNoveltyDetector has learned nothing yet")
        if not math.isfinite(x):
            raise InvalidInputError("value is NaN or infinite")
        if self.n_seen_ < self.warmup or not self.sorted_:
            return 0.0
        seen = self.sorted_
        i = bisect_left(seen, x)
        above = seen[i] - x if i < len(seen) else math.inf
        below = x - seen[i - 1] if i > 0 else math.inf
        distance = min(above, below)
        if distance == 0.0:
            return 0.0
        span = seen[-1] - seen[0]
        # A flat history has no range: any departure is measured against a tiny scale, not 0.
        floor = 1e-9 * (1.0 + max(abs(seen[0]), abs(seen[-1])))
        return distance / max(span, floor)

    def learn_one(self, x: float, /) -> None:
        """Learn one value, unless it scores above ``protect_above`` after the warm-up."""
        self._ensure_state()
        if not math.isfinite(x):
            raise InvalidInputError("value is NaN or infinite")
        if self.protect_above is not None and self.n_seen_ >= self.warmup and self.score_one(x) > self.protect_above:
            return
        insort(self.sorted_, x)
        self.recent_.append(x)
        if len(self.recent_) > self.memory:
            old = self.recent_.popleft()
            del self.sorted_[bisect_left(self.sorted_, old)]
        self.n_seen_ += 1

    @classmethod
    def test_params(cls) -> list[dict[str, object]]:
        return [{"warmup": 5}, {"warmup": 5, "memory": 50, "protect_above": 0.5}]
