"""Degradation-trend RUL: extrapolate a rising health index to its failure level.

The index (one column, e.g. vibration RMS over its healthy level) is modelled as
``healthy_level + exp(a + b * (t - t_now))``: flat while healthy, growing exponentially once a
defect grows. ``predict`` fits that curve to the history by robust least squares and solves for
the time it reaches the failure level. The interval comes from a block wild bootstrap of the fit
(blocks of neighbouring rows keep autocorrelated noise together), widened or narrowed by a
factor learned on the runs to failure so that it covers at the nominal rate there.

From runs to failure, ``fit`` learns the failure level (the fitted curve's level at each failure,
median over runs, and its spread), the calibration factor, the shortest time from a detectable
trend to failure and the lives; without any, it takes ``failure_level`` as given and widens the
bootstrap interval by ``spread``. While the index shows no trend (its recent level is within
``detect`` noise spreads of the healthy level) there is nothing to extrapolate, and the estimate
says only that failure is not near: from the runs to failure when there are some (at least the
shortest time from a detectable trend to failure; median, the median life less the time so
far), otherwise from the history's own length (at least 10 times it, median 20 times, at most
40 times: a guess that only says "not soon").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np

from pitstop.ml.base import Estimator, NotFittedError
from pitstop.ml.rul.base import FloatArray, History, RulEstimate
from pitstop.ml.rul.validation import check_histories, check_same_features, invalid

_CALIBRATION_POINTS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


class DegradationRulModel(Estimator):
    """Exponential trend of a health index extrapolated to a failure level, with a bootstrap interval.

    Parameters
    ----------
    coverage : nominal coverage of every interval.
    failure_level : the index at failure, used when no run to failure is given.
    healthy_level : the index of a healthy asset (1 for a level over its healthy level).
    feature : the column holding the index (None: the first).
    window : fit on the rows of the last ``window`` time units only (None: the whole history).
    baseline : share of the first rows (at least 5) that set the healthy noise spread.
    detect : a trend counts once the recent level is this many noise spreads above healthy.
    min_rise : ... and at least this share above the healthy level: a load that swings the index by
        a tenth is not wear, however quiet the first hours were (0: the noise spreads alone).
    horizon : the longest RUL stated (None: twice the longest run to failure, or 40 x the history).
    spread : interval factor (in log RUL) while no run to failure has calibrated one: the bootstrap
        sees the noise of the fit, not how far the exponential shape is from the truth.
    n_boot : bootstrap draws.
    random_state : seed of the bootstrap.

    Examples
    --------
    >>> from pitstop.testing.rul import synthetic_runs
    >>> model = DegradationRulModel(failure_level=5.0).fit([])  # no failures yet: the level is given
    >>> run = synthetic_runs(1, seed=5)[0]
    >>> cut = History("u", run.t[:-30], run.X[:-30], run.features)
    >>> est = model.predict([cut])[0]
    >>> bool(est.lower <= 30 <= est.upper)
    True
    """

    name = "degradation"

    def __init__(
        self,
        *,
        coverage: float = 0.8,
        failure_level: float | None = None,
        healthy_level: float = 1.0,
        feature: str | None = None,
        window: float | None = None,
        baseline: float = 0.2,
        detect: float = 3.0,
        min_rise: float = 0.0,
        horizon: float | None = None,
        spread: float = 1.5,
        n_boot: int = 400,
        random_state: int = 0,
    ) -> None:
        self.coverage = coverage
        self.failure_level = failure_level
        self.healthy_level = healthy_level
        self.feature = feature
        self.window = window
        self.baseline = baseline
        self.detect = detect
        self.min_rise = min_rise
        self.horizon = horizon
        self.spread = spread
        self.n_boot = n_boot
        self.random_state = random_state

    # -- fit ------------------------------------------------------------------------------------

    def fit(self, histories: Sequence[History]) -> Self:
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {self.coverage}")
        hs = check_histories(histories) if len(histories) else []
        runs = [h for h in hs if h.failed_at is not None]
        if runs:
            check_same_features(runs, runs[0].features)
        names = runs[0].features if runs else None
        self.features_: tuple[str, ...] | None = names
        self.column_ = self._column(names) if names is not None else None
        if not runs:
            if self.failure_level is None:
                invalid("without a run to failure the model needs failure_level")
            if self.failure_level <= self.healthy_level:
                invalid("failure_level must lie above healthy_level")
            self.threshold_ = float(self.failure_level)
            self.threshold_spread_ = 0.0
            self.scale_ = float(self.spread)
            self.lead_min_: float | None = None
            self.life_max_: float | None = None
            self.life_median_: float | None = None
            self.n_failures_ = 0
            return self
        levels, leads, lives = [], [], []
        for h in runs:
            y, t = self._series(h)
            assert h.failed_at is not None
            fit = self._fit_curve(y, t)
            if fit is not None:
                c, a, b, _ = fit
                levels.append(c + float(np.exp(a + b * (h.failed_at - t[-1]))))
            else:
                levels.append(float(np.max(y[-max(3, len(y) // 20) :])))
            # The first row past the healthy head whose recent level stands out.
            past_head = np.arange(len(y)) >= max(5, int(self.baseline * len(y)))
            detected = np.nonzero(past_head & (self._recent(y) - self.healthy_level > self._rise(y)))[0]
            if len(detected):
                leads.append(float(h.failed_at - t[detected[0]]))
            lives.append(float(h.failed_at - t[0]))
        threshold = float(np.median(levels))
        self.threshold_spread_ = float(np.std(levels, ddof=1)) if len(levels) > 1 else 0.0
        if threshold <= self.healthy_level:
            invalid("the runs to failure end at or below the healthy level: the index does not rise")
        self.threshold_ = threshold
        self.lead_min_ = min(leads) if leads else None
        self.life_max_ = max(lives)
        self.life_median_ = float(np.median(lives))
        self.n_failures_ = len(runs)
        self.scale_ = 1.0
        self.scale_ = self._calibrate(runs)
        return self

    def _calibrate(self, runs: Sequence[History]) -> float:
        """Interval factor (in log-RUL) that makes the intervals cover at the nominal rate on the runs."""
        z = []
        for h in runs:
            assert h.failed_at is not None
            span = h.failed_at - h.t[0]
            for fraction in _CALIBRATION_POINTS:
                stop = int(np.searchsorted(h.t, h.t[0] + fraction * span, side="right"))
                if stop < 6:
                    continue
                y, t = self._series(h)
                raw = self._estimate(y[:stop], t[:stop])
                if raw is None:
                    continue
                med, lo, hi = raw
                truth = max(h.failed_at - t[stop - 1], 1e-9)
                med = max(med, 1e-9)
                if truth >= med:
                    z.append(np.log(truth / med) / max(np.log(max(hi, med) / med), 1e-3))
                else:
                    z.append(np.log(med / truth) / max(np.log(med / max(lo, 1e-9)), 1e-3))
        if len(z) < 5:  # too few points to say more than the default
            return float(self.spread)
        # Never narrower than the bootstrap itself: a handful of runs cannot prove it too wide.
        return float(np.clip(np.quantile(z, self.coverage), 1.0, 20.0))

    # -- pieces ---------------------------------------------------------------------------------

    def _column(self, names: tuple[str, ...]) -> int:
        if self.feature is None:
            return 0
        if self.feature not in names:
            invalid(f"feature {self.feature!r} is not among the history's features {names}")
        return names.index(self.feature)

    def _series(self, h: History) -> tuple[FloatArray, FloatArray]:
        column = self.column_ if self.column_ is not None else self._column(h.features)
        return h.X[:, column], h.t

    def _rise(self, y: FloatArray) -> float:
        """How far above the healthy level the recent level must be for a trend to count."""
        return max(self.detect * self._noise(y), self.min_rise * abs(self.healthy_level))

    def _noise(self, y: FloatArray) -> float:
        """Healthy noise spread: robust spread of the first rows or of row-to-row changes, whichever is larger."""
        k = max(5, int(self.baseline * len(y)))
        head = y[:k]
        mad = float(np.median(np.abs(head - np.median(head)))) * 1.4826
        # Row-to-row changes over the whole series: robust to the trend, and not fooled by a short head.
        d = np.diff(y)
        step = float(np.median(np.abs(d - np.median(d)))) * 1.4826 / np.sqrt(2.0) if len(d) >= 3 else 0.0
        return max(mad, step, 1e-3 * max(abs(self.healthy_level), 1e-3), 1e-12)

    @staticmethod
    def _recent(y: FloatArray) -> FloatArray:
        """Causal mean of the last m rows (m a tenth of the series, at least 3) at every row."""
        m = max(3, len(y) // 10)
        c = np.r_[0.0, np.cumsum(y)]
        hi = np.arange(1, len(y) + 1)
        lo = np.maximum(hi - m, 0)
        out: FloatArray = (c[hi] - c[lo]) / (hi - lo)
        return out

    def _fit_curve(self, y: FloatArray, t: FloatArray) -> tuple[float, float, float, FloatArray] | None:
        """Robust fit of y = c + exp(a + b (t - t_last)): (c, a, b, bootstrap draws of (c, a, b)).

        The floor ``c`` starts at the healthy level and may move by a quarter of the way to failure:
        an exponential that was already growing slowly while the asset looked healthy has its floor
        a little below the healthy level.
        """
        from scipy.optimize import least_squares

        if self.window is not None:
            keep = t >= t[-1] - self.window
            y, t = y[keep], t[keep]
        if len(y) < 4:
            return None
        c0 = self.healthy_level
        room = 0.25 * max(self._level() - c0, 1e-9)
        sigma = self._noise(y)
        tau = t - t[-1]
        span = max(float(-tau[0]), 1e-9)
        excess_now = float(self._recent(y)[-1]) - c0
        if excess_now <= 0:
            return None
        # Start: a log-linear fit through the rows clearly above healthy.
        above = y - c0 > 2 * sigma
        if above.sum() >= 3:
            b0, a0 = np.polyfit(tau[above], np.log(y[above] - c0), 1)
            b0 = float(np.clip(b0, 1e-6 / span, 50.0 / span))
        else:
            a0, b0 = np.log(excess_now), 1.0 / span

        # A positive index whose noise grows with its level (vibration does) is fitted in log space.
        log_space = bool(c0 > 0 and np.all(y > 0))
        c_lo = max(c0 - room, 0.5 * c0) if log_space else c0 - room
        log_y = np.log(y) if log_space else y

        def residual(p: FloatArray) -> FloatArray:
            f = p[0] + np.exp(np.clip(p[1] + p[2] * tau, -700, 700))
            out: FloatArray = (np.log(f) if log_space else f) - log_y
            return out

        a_hi = float(np.log(max(np.max(np.abs(y - c0)), sigma) * 10))
        x0 = np.array([c0, min(float(a0), a_hi - 1e-6), b0])
        res = least_squares(
            residual,
            x0,
            loss="soft_l1",
            f_scale=2 * sigma / (c0 if log_space else 1.0),
            bounds=([c_lo, -np.inf, 0.0], [c0 + room, a_hi, 100.0 / span]),
        )
        c, a, b = (float(v) for v in res.x)
        # Block wild bootstrap, linearised at the fit: perturb residuals by block-constant normal weights.
        r = residual(res.x)
        e = np.exp(a + b * tau)
        J = np.column_stack([np.ones_like(e), e, tau * e])
        if log_space:
            J = J / (c + e)[:, None]
        n = len(y)
        blocks = min(20, n)
        block_of = (np.arange(n) * blocks) // n
        rng = np.random.default_rng(self.random_state)
        v = rng.normal(size=(self.n_boot, blocks))[:, block_of]
        JtJ = J.T @ J
        JtJ = JtJ + 1e-9 * np.eye(3) * max(float(np.trace(JtJ)), 1e-300)
        delta = np.linalg.solve(JtJ, J.T @ (v * -r).T).T  # (n_boot, 3)
        draws = np.column_stack([c + delta[:, 0], a + delta[:, 1], b + delta[:, 2]])
        return c, a, b, draws

    def _level(self) -> float:
        """The failure level: learned once fitted, else the given one (or twice healthy)."""
        level = getattr(self, "threshold_", None)
        if level is None:
            level = self.failure_level if self.failure_level is not None else 2.0 * self.healthy_level
        return float(level)

    def _estimate(self, y: FloatArray, t: FloatArray) -> tuple[float, float, float] | None:
        """(median, lower, upper) before calibration, or None while no trend shows."""
        c, thr = self.healthy_level, self.threshold_
        recent = float(self._recent(y)[-1])
        if recent >= thr:
            return 0.0, 0.0, 0.0
        if recent - c <= self._rise(y):
            return None
        fit = self._fit_curve(y, t)
        if fit is None:
            return None
        c, a, b, draws = fit
        horizon = self._horizon(t)

        # The failure level varies between runs: its spread among the runs to failure goes into the draws.
        levels = thr + self.threshold_spread_ * np.random.default_rng(self.random_state + 1).normal(size=len(draws))

        def rul(c_: FloatArray, a_: FloatArray, b_: FloatArray, level: FloatArray | float = thr) -> FloatArray:
            with np.errstate(divide="ignore", invalid="ignore"):
                target = np.log(np.maximum(level - c_, 1e-12))
                out = np.where(b_ > 0, (target - a_) / b_, horizon)
            return np.asarray(np.clip(out, 0.0, horizon), dtype=np.float64)

        med = float(rul(np.array([c]), np.array([a]), np.array([b]))[0])
        boot = rul(draws[:, 0], draws[:, 1], draws[:, 2], levels)
        alpha = (1.0 - self.coverage) / 2.0
        lo, hi = (float(q) for q in np.quantile(boot, [alpha, 1.0 - alpha]))
        return med, min(lo, med), max(hi, med)

    def _horizon(self, t: FloatArray) -> float:
        if self.horizon is not None:
            return float(self.horizon)
        if self.life_max_ is not None:
            return 2.0 * self.life_max_
        return 40.0 * max(float(t[-1] - t[0]), 1.0)

    # -- predict --------------------------------------------------------------------------------

    def predict(self, histories: Sequence[History]) -> list[RulEstimate]:
        if not self.is_fitted():
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        hs = check_histories(histories)
        if self.features_ is not None:
            check_same_features(hs, self.features_)
        return [self._one(h) for h in hs]

    def _one(self, h: History) -> RulEstimate:
        y, t = self._series(h)
        horizon = self._horizon(t)
        raw = self._estimate(y, t)
        if raw is None:  # no trend: failure is not near, and how far is only known from the runs
            elapsed = float(t[-1] - t[0])
            if self.lead_min_ is not None and self.life_median_ is not None:
                lower = min(self.lead_min_, horizon)
                median = min(max(lower, self.life_median_ - elapsed), horizon)
            else:
                span = max(elapsed, 1.0)
                lower, median = min(10.0 * span, horizon), min(20.0 * span, horizon)
            return RulEstimate(
                median=median, lower=min(lower, median), upper=horizon, coverage=self.coverage, degrading=False
            )
        med, lo, hi = raw
        if med <= 0.0:
            return RulEstimate(0.0, 0.0, 0.0, self.coverage)
        s = self.scale_
        lower = med * (max(lo, 1e-9) / med) ** s if lo < med else med
        upper = med * (hi / med) ** s if hi > med else med
        return RulEstimate(
            median=med,
            lower=float(np.clip(lower, 0.0, med)),
            upper=float(np.clip(upper, med, max(horizon, med))),
            coverage=self.coverage,
        )
