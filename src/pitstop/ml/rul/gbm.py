"""Gradient boosting on windowed features, with split-conformal intervals from held-out units.

Fitting splits the runs to failure into ``folds`` groups of whole units. One LightGBM model is
trained per fold on the other units, so every training row also gets an out-of-fold prediction
from a model that never saw its unit. The estimate is the mean of the fold models; its interval
comes from the out-of-fold residuals (true minus predicted RUL), binned by the predicted value
so a unit near failure gets a narrower interval than one that still looks healthy (Mondrian
split-conformal). The target is the RUL capped at ``cap`` (the usual piece-wise linear target);
the interval is for the true RUL, capped too unless ``capped_intervals`` is False.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from pitstop.ml.base import Estimator, NotFittedError
from pitstop.ml.rul.base import FloatArray, History, RulEstimate
from pitstop.ml.rul.features import window_features, window_names
from pitstop.ml.rul.validation import check_histories, check_same_features, invalid, runs_to_failure


class GbmRulModel(Estimator):
    """LightGBM on rolling mean/std/slope features; intervals by binned split-conformal on held-out units.

    Parameters
    ----------
    coverage : nominal coverage of every interval.
    cap : the training target is ``min(RUL, cap)`` (C-MAPSS: 125 cycles).
    windows : trailing window lengths, in rows, of the rolling features.
    smoothing : exponential smoothing factor applied to the signals before windowing (1 = none).
    with_time : add the time since the start of the history as a feature.
    baseline : when > 0, add each signal's change since the mean of the history's first rows.
    columns : the input columns to use (None: all); constant ones are dropped anyway.
    regime_columns, regimes : normalise every other signal per operating-condition cluster
        (k-means with ``regimes`` clusters on ``regime_columns``); 0 regimes = off.
    late_weight : rows close to failure weigh ``1 + late_weight`` times a healthy row.
    folds : groups of units held out in turn (the conformal calibration set is all of them).
    capped_intervals : calibrate intervals against the capped truth (True) or the raw truth.

    Examples
    --------
    >>> from pitstop.testing.rul import synthetic_runs
    >>> model = GbmRulModel(n_estimators=50, folds=3).fit(synthetic_runs(12, seed=1))
    >>> est = model.predict(synthetic_runs(1, seed=2, truncate=True))[0]
    >>> est.lower <= est.median <= est.upper and est.coverage == 0.8
    True
    """

    name = "gbm"

    def __init__(
        self,
        *,
        coverage: float = 0.8,
        cap: float = 125.0,
        windows: tuple[int, ...] = (5, 10, 30),
        smoothing: float = 1.0,
        with_time: bool = True,
        baseline: int = 0,
        columns: tuple[str, ...] | None = None,
        regime_columns: tuple[str, ...] = (),
        regimes: int = 0,
        late_weight: float = 0.0,
        folds: int = 5,
        capped_intervals: bool = True,
        n_estimators: int = 400,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        feature_fraction: float = 0.5,
        bins: int = 10,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.coverage = coverage
        self.cap = cap
        self.windows = windows
        self.smoothing = smoothing
        self.with_time = with_time
        self.baseline = baseline
        self.columns = columns
        self.regime_columns = regime_columns
        self.regimes = regimes
        self.late_weight = late_weight
        self.folds = folds
        self.capped_intervals = capped_intervals
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bins = bins
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- features -------------------------------------------------------------------------------

    def _signals(self, h: History) -> FloatArray:
        """The used signals of one history, regime-normalised when asked."""
        X = self._signals_all(h) if self.regimes > 0 else h.X
        out: FloatArray = X[:, self.signal_idx_]
        return out

    def _features(self, h: History) -> FloatArray:
        return window_features(
            self._signals(h),
            h.t,
            self.windows,
            smoothing=self.smoothing,
            with_time=self.with_time,
            baseline=self.baseline,
        )

    # -- fit ------------------------------------------------------------------------------------

    def fit(self, histories: Sequence[History]) -> Self:
        import lightgbm as lgb

        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {self.coverage}")
        hs = check_histories(histories)
        runs = runs_to_failure(hs, minimum=2)
        names = runs[0].features
        check_same_features(runs, names)
        self._fit_regimes(runs, names)
        # Constant signals carry nothing: dropped before windowing.
        stacked = np.vstack([h.X for h in runs])
        wanted = range(len(names)) if self.columns is None else [self._index(names, c) for c in self.columns]
        if self.regimes > 0:
            stacked = np.vstack([self._signals_all(h) for h in runs])
            wanted = [i for i in wanted if i not in set(self.regime_idx_)]
        keep = [i for i in wanted if np.ptp(stacked[:, i]) > 1e-12 * max(1.0, float(np.abs(stacked[:, i]).max()))]
        if not keep:
            invalid("every usable column is constant over the training histories")
        self.signal_idx_ = np.array(keep, dtype=np.int64)
        self.features_ = names
        self.feature_names_ = window_names(
            tuple(names[i] for i in keep), self.windows, with_time=self.with_time, baseline=self.baseline
        )

        feats = [self._features(h) for h in runs]
        rul = [h.rul for h in runs]
        y = np.concatenate([np.minimum(r, self.cap) for r in rul])
        raw = np.concatenate(rul)
        weight = 1.0 + self.late_weight * (1.0 - y / self.cap)
        unit = np.concatenate([np.full(len(f), i) for i, f in enumerate(feats)])
        F = np.vstack(feats)

        k = min(self.folds, len(runs))
        order = np.random.default_rng(self.random_state).permutation(len(runs))
        fold_of_unit = np.empty(len(runs), dtype=np.int64)
        fold_of_unit[order] = np.arange(len(runs)) % k
        fold = fold_of_unit[unit]
        oof = np.empty(len(y))
        models = []
        for j in range(k):
            tr, te = fold != j, fold == j
            params: dict[str, Any] = {
                "objective": "regression",
                "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves,
                "min_data_in_leaf": self.min_child_samples,
                "feature_fraction": self.feature_fraction,
                "bagging_fraction": 0.8,
                "bagging_freq": 1,
                "lambda_l2": 1.0,
                "seed": self.random_state + j,
                "deterministic": True,
                "num_threads": self.n_jobs,
                "verbosity": -1,
            }
            data = lgb.Dataset(F[tr], y[tr], weight=weight[tr], free_raw_data=True)
            booster = lgb.train(params, data, num_boost_round=self.n_estimators)
            oof[te] = booster.predict(F[te])
            models.append(booster)
        self.models_ = models
        self.oof_ = {"predicted": oof, "rul": raw, "unit": unit}
        self._fit_intervals(oof, np.minimum(raw, self.cap) if self.capped_intervals else raw)
        return self

    def _index(self, names: tuple[str, ...], column: str) -> int:
        if column not in names:
            invalid(f"column {column!r} is not among the history's features {names}")
        return names.index(column)

    def _fit_regimes(self, runs: Sequence[History], names: tuple[str, ...]) -> None:
        if self.regimes <= 0:
            return
        from sklearn.cluster import KMeans

        if not self.regime_columns:
            invalid("regime normalisation needs regime_columns")
        self.regime_idx_ = np.array([self._index(names, c) for c in self.regime_columns], dtype=np.int64)
        X = np.vstack([h.X for h in runs])
        km = KMeans(n_clusters=self.regimes, n_init=4, random_state=self.random_state).fit(X[:, self.regime_idx_])
        centers = np.asarray(km.cluster_centers_, dtype=np.float64)
        k = np.asarray(km.labels_)
        mean = np.zeros((self.regimes, X.shape[1]))
        std = np.ones((self.regimes, X.shape[1]))
        for c in range(self.regimes):
            rows = X[k == c]
            if len(rows):
                mean[c] = rows.mean(axis=0)
                s = rows.std(axis=0)
                std[c] = np.where(s > 1e-12, s, 1.0)
        self.regime_centers_, self.regime_mean_, self.regime_std_ = centers, mean, std

    def _signals_all(self, h: History) -> FloatArray:
        R = h.X[:, self.regime_idx_]
        k = np.argmin(((R[:, None, :] - self.regime_centers_[None, :, :]) ** 2).sum(axis=2), axis=1)
        out: FloatArray = (h.X - self.regime_mean_[k]) / self.regime_std_[k]
        return out

    def _fit_intervals(self, predicted: FloatArray, truth: FloatArray) -> None:
        """Residual quantiles per bin of predicted RUL (bins hold equal numbers of rows)."""
        r = truth - predicted
        n_bins = int(max(1, min(self.bins, len(r) // 50)))
        edges = np.quantile(predicted, np.linspace(0.0, 1.0, n_bins + 1))
        which = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, n_bins - 1)
        a = (1.0 - self.coverage) / 2.0
        centers, lo, hi = [], [], []
        for b in range(n_bins):
            rb = r[which == b]
            if len(rb) < 10:
                continue
            centers.append(float(np.median(predicted[which == b])))
            # The finite-sample conformal correction: quantile levels nudged outwards by 1/(n+1).
            n = len(rb)
            lo.append(float(np.quantile(rb, max(0.0, a - a / (n + 1)), method="lower")))
            hi.append(float(np.quantile(rb, min(1.0, 1.0 - a + a / (n + 1)), method="higher")))
        if not centers:
            centers, lo, hi = [float(np.median(predicted))], [float(np.quantile(r, a))], [float(np.quantile(r, 1 - a))]
        self.bin_centers_ = np.array(centers)
        self.residual_lower_ = np.array(lo)
        self.residual_upper_ = np.array(hi)

    # -- predict --------------------------------------------------------------------------------

    def predict_median(self, histories: Sequence[History]) -> FloatArray:
        """The point estimates alone (mean of the fold models at each history's last row)."""
        if not self.is_fitted():
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        hs = check_histories(histories)
        check_same_features(hs, self.features_)
        F = np.vstack([self._features(h)[-1:] for h in hs])
        pred = np.mean([m.predict(F) for m in self.models_], axis=0)
        out: FloatArray = np.clip(np.asarray(pred, dtype=np.float64), 0.0, None)
        return out

    def predict(self, histories: Sequence[History]) -> list[RulEstimate]:
        med = self.predict_median(histories)
        lo = med + np.interp(med, self.bin_centers_, self.residual_lower_)
        hi = med + np.interp(med, self.bin_centers_, self.residual_upper_)
        return [
            RulEstimate(float(m), float(max(0.0, min(m, low))), float(max(m, high)), self.coverage)
            for m, low, high in zip(med, lo, hi, strict=True)
        ]
