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

MAX_REGIMES = 8
SEPARATE = 0.75  # mean silhouette above which clusters count as distinct regimes ("strong structure")
SAMPLE_ROWS = 2000  # silhouettes cost O(n^2): judged on a sample


def find_regimes(inputs: FloatArray, *, max_regimes: int = MAX_REGIMES, random_state: int = 0) -> int:
    """How many operating regimes the rows of ``inputs`` (operating inputs as columns) fall into.

    Each column is scaled by its spread (constant ones are left out) and k-means is tried with 2 to
    ``max_regimes`` clusters; the best k by mean silhouette is taken when its silhouette shows clearly
    separate groups (above `SEPARATE`), otherwise 1: inputs that only wander around one operating
    point (noise, a slow drift) are one regime, not k arbitrary slices of it.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    R = np.asarray(inputs, dtype=np.float64)
    spread = R.std(axis=0)
    R = R[:, spread > 1e-12 * np.maximum(1.0, np.abs(R).max(axis=0))]
    if R.shape[1] == 0 or len(R) < 4:
        return 1
    R = (R - R.mean(axis=0)) / R.std(axis=0)
    rng = np.random.default_rng(random_state)
    sample = R[rng.choice(len(R), SAMPLE_ROWS, replace=False)] if len(R) > SAMPLE_ROWS else R
    best, best_score = 1, SEPARATE
    for k in range(2, min(max_regimes, len(np.unique(sample, axis=0)), len(sample) - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit_predict(sample)
        score = float(silhouette_score(sample, labels))
        if score > best_score:
            best, best_score = k, score
    return best


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
    regime_columns : the operating inputs (altitude, load, speed, set point): they say which
        operating regime a row is in and are never features themselves.
    regimes : normalise every other signal per regime, a k-means cluster of ``regime_columns``;
        None (the default) finds the number itself (`find_regimes`: 1, i.e. no normalisation,
        unless the inputs fall into clearly separate clusters); 0 = off; k = exactly k.
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
        regimes: int | None = None,
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
        X = self._signals_all(h) if self.regimes_ > 1 else h.X
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
        if self.regime_columns:
            wanted = [i for i in wanted if i not in set(self.regime_idx_)]
        if self.regimes_ > 1:
            stacked = np.vstack([self._signals_all(h) for h in runs])
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
        self.regimes_ = 0
        if self.regimes is not None and self.regimes < 0:
            invalid(f"regimes must be None (automatic), 0 (off) or a positive count, got {self.regimes}")
        if self.regimes and not self.regime_columns:
            invalid("regime normalisation needs regime_columns")
        self.regime_idx_ = np.array([self._index(names, c) for c in self.regime_columns], dtype=np.int64)
        if not self.regime_columns or self.regimes == 0:
            return
        from sklearn.cluster import KMeans

        X = np.vstack([h.X for h in runs])
        R = X[:, self.regime_idx_]
        k = find_regimes(R, random_state=self.random_state) if self.regimes is None else self.regimes
        self.regimes_ = k
        if k <= 1:
            return
        km = KMeans(n_clusters=k, n_init=4, random_state=self.random_state).fit(R)
        centers = np.asarray(km.cluster_centers_, dtype=np.float64)
        label = np.asarray(km.labels_)
        mean = np.zeros((k, X.shape[1]))
        std = np.ones((k, X.shape[1]))
        for c in range(k):
            rows = X[label == c]
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
