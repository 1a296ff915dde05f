"""Streaming univariate detector: exponentially weighted mean and variance, learned online."""

from __future__ import annotations

import math
from typing import ClassVar

from pitstop.ml.base import InvalidInputError, NotFittedError
from pitstop.ml.detectors.base import StreamingDetector


class EwmaZScoreDetector(StreamingDetector):
    """Distance from an exponentially weighted mean in units of the weighted standard deviation.

    It learns one value at a time (`learn_one`) and scores one at a time (`score_one`). Points
    that score above ``protect_above`` after the warm-up are **not learned**, so a slowly
    developing fault is not absorbed into "normal" (set ``protect_above=None`` to learn
    everything). `fit` learns a batch in order; `score` scores a batch without learning;
    `score_learn` does both, prequentially, as a live stream would.

    Parameters
    ----------
    alpha
        Weight of the newest value in the running mean and variance.
    warmup
        Values learned before scores are given (scores are 0 until then).
    protect_above
        Score above which a value is not learned.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.random.default_rng(0).normal(size=300), 8.0]
    >>> det = EwmaZScoreDetector()
    >>> scores = det.score_learn(x[:, None])
    >>> bool(scores[-1] > 5 and scores[:-1].max() < 5)
    True
    """

    name: ClassVar[str] = "ewma_zscore"
    state = ("n_seen_", "mean_", "var_", "n_features_in_")

    def __init__(self, *, alpha: float = 0.02, warmup: int = 30, protect_above: float | None = 6.0) -> None:
        self.alpha = alpha
        self.warmup = warmup
        self.protect_above = protect_above

    # -- streaming -------------------------------------------------------------------------
    def _ensure_state(self) -> None:
        if not hasattr(self, "n_seen_"):
            if not 0.0 < self.alpha <= 1.0 or self.warmup < 1:
                raise ValueError("alpha must be in (0, 1] and warmup at least 1")
            self.n_seen_ = 0
            self.mean_ = 0.0
            self.var_ = 0.0
            self.n_features_in_ = 1

    def score_one(self, x: float, /) -> float:
        """Score one value without learning it."""
        if not hasattr(self, "n_seen_"):
            raise NotFittedError("EwmaZScoreDetector has learned nothing yet")
        if not math.isfinite(x):
            raise InvalidInputError("value is NaN or infinite")
        if self.n_seen_ < self.warmup:
            return 0.0
        spread = math.sqrt(self.var_) + 1e-9 * (1.0 + abs(self.mean_))
        return abs(x - self.mean_) / spread

    def learn_one(self, x: float, /) -> None:
        """Learn one value, unless it scores above ``protect_above`` after the warm-up."""
        self._ensure_state()
        if not math.isfinite(x):
            raise InvalidInputError("value is NaN or infinite")
        if self.protect_above is not None and self.n_seen_ >= self.warmup and self.score_one(x) > self.protect_above:
            return
        if self.n_seen_ == 0:
            self.mean_ = x
        else:
            # Welford-style running moments for the warm-up, exponential weights afterwards.
            a = max(self.alpha, 1.0 / (self.n_seen_ + 1))
            delta = x - self.mean_
            self.mean_ += a * delta
            self.var_ = (1 - a) * (self.var_ + a * delta * delta)
        self.n_seen_ += 1

    @classmethod
    def test_params(cls) -> list[dict[str, object]]:
        return [{"warmup": 5}, {"warmup": 5, "protect_above": None}]
