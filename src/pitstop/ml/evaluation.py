"""Benchmark scorers, implemented from the published rules (see shared/datasets/README.md).

- `nab_file_score` / `nab_normalised`: the Numenta Anomaly Benchmark v1.1 scoring.
- `skab_outlier_metrics` and `skab_changepoint_score`: the SKAB leaderboard's two scorers.
- `rates`: true- and false-positive rates for day-level (or any unit-level) decisions.

All take plain numpy arrays so that they are checked against the published conformance
numbers without any detector in the loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# -- NAB ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NabProfile:
    a_tp: float
    a_fp: float
    a_fn: float


NAB_PROFILES: dict[str, NabProfile] = {
    "standard": NabProfile(1.0, 0.11, 1.0),
    "reward_low_FP_rate": NabProfile(1.0, 0.22, 1.0),
    "reward_low_FN_rate": NabProfile(1.0, 0.11, 2.0),
}


def nab_probation(n_rows: int) -> int:
    """Rows at the start of a file that never count: min(floor(0.15 n), 750)."""
    return min(math.floor(0.15 * n_rows), 750)


def _nab_sigmoid(x: float) -> float:
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def nab_window_rows(
    timestamps: npt.NDArray[np.datetime64], windows: Sequence[tuple[str, str]]
) -> list[tuple[int, int]]:
    """Map inclusive window timestamps to inclusive row indices (L, R)."""
    ts = np.asarray(timestamps, dtype="datetime64[us]")
    rows = []
    for start, end in windows:
        left = int(np.searchsorted(ts, np.datetime64(start.replace(" ", "T"), "us"), side="left"))
        right = int(np.searchsorted(ts, np.datetime64(end.replace(" ", "T"), "us"), side="right")) - 1
        rows.append((left, right))
    return rows


@dataclass(frozen=True, slots=True)
class NabFileScore:
    raw: float
    detections: int
    true_positives: int
    false_negatives: int


def nab_file_score(detections: npt.ArrayLike, windows: Sequence[tuple[int, int]], profile: NabProfile) -> NabFileScore:
    """Raw NAB score of one file. ``detections`` is a 0/1 (or bool) array, one per row."""
    flags = np.asarray(detections, dtype=bool)
    n = len(flags)
    probation = nab_probation(n)
    hits = [i for i in np.flatnonzero(flags).tolist() if i >= probation]
    ordered = sorted(windows)
    best: list[float | None] = [None] * len(ordered)
    raw = 0.0
    for i in hits:
        inside = next((k for k, (left, right) in enumerate(ordered) if left <= i <= right), None)
        if inside is not None:
            left, right = ordered[inside]
            width = right - left + 1
            weight = profile.a_tp * _nab_sigmoid(-(right - i + 1) / width) / _nab_sigmoid(-1.0)
            current = best[inside]
            best[inside] = weight if current is None else max(current, weight)
            continue
        previous = [k for k, (_, right) in enumerate(ordered) if right < i]
        if not previous:
            raw -= profile.a_fp
        else:
            left_prev, right_prev = ordered[previous[-1]]
            width_prev = right_prev - left_prev + 1
            pos = (i - right_prev) / max(width_prev - 1, 1)
            raw += profile.a_fp * _nab_sigmoid(pos)
    tp = sum(b is not None for b in best)
    raw += sum(b for b in best if b is not None) - profile.a_fn * (len(ordered) - tp)
    return NabFileScore(raw, len(hits), tp, len(ordered) - tp)


def nab_normalised(raw_total: float, n_windows: int, profile: NabProfile) -> float:
    """100 · (raw − null) / (perfect − null), with null = −A_FN·N and perfect = A_TP·N."""
    null = -profile.a_fn * n_windows
    perfect = profile.a_tp * n_windows
    return 100.0 * (raw_total - null) / (perfect - null)


# -- SKAB -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Confusion:
    tp: int
    tn: int
    fp: int
    fn: int

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.tn + other.tn, self.fp + other.fp, self.fn + other.fn)

    @property
    def f1(self) -> float:
        return self.tp / (self.tp + (self.fn + self.fp) / 2) if self.tp else 0.0

    @property
    def far(self) -> float:
        return 100.0 * self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def mar(self) -> float:
        return 100.0 * self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0

    def summary(self) -> dict[str, float]:
        return {"f1": round(self.f1, 2), "far": round(self.far, 2), "mar": round(self.mar, 2)}


def confusion(predicted: npt.ArrayLike, truth: npt.ArrayLike) -> Confusion:
    p = np.asarray(predicted).astype(bool)
    t = np.asarray(truth).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"predictions {p.shape} and truth {t.shape} differ in shape")
    return Confusion(int((p & t).sum()), int((~p & ~t).sum()), int((p & ~t).sum()), int((~p & t).sum()))


def skab_outlier_metrics(per_file: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]]) -> Confusion:
    """Confusion summed over files of (predicted, truth) 0/1 rows; read ``.f1``, ``.far``, ``.mar``."""
    total = Confusion(0, 0, 0, 0)
    for predicted, truth in per_file:
        total = total + confusion(predicted, truth)
    return total


SKAB_PROFILES: dict[str, NabProfile] = {
    "standard": NabProfile(1.0, -0.11, -1.0),
    "low_fp": NabProfile(1.0, -0.22, -1.0),
    "low_fn": NabProfile(1.0, -0.11, -2.0),
}


@dataclass(frozen=True, slots=True)
class ChangepointCounts:
    score_sum: float
    windows: int
    true_positives: int
    missed: int
    false_positives: int


def _skab_curve(profile: NabProfile) -> npt.NDArray[np.float64]:
    x = np.linspace(-np.pi / 2, np.pi / 2, 1000)
    half = (profile.a_tp - profile.a_fp) / 2
    curve: npt.NDArray[np.float64] = half * (-np.tanh(x) / np.tanh(np.pi / 2)) + half + profile.a_fp
    return curve


def skab_changepoint_file(
    timestamps: npt.NDArray[np.datetime64],
    predicted: npt.ArrayLike,
    true_changepoints: npt.ArrayLike,
    profile: NabProfile,
    window_s: float = 60.0,
) -> ChangepointCounts:
    """SKAB's NAB variant on one file's test part (see the module docstring for the source)."""
    ts = np.asarray(timestamps, dtype="datetime64[ns]").astype(np.int64) / 1e9
    pred = np.asarray(predicted).astype(np.int64)
    cp = np.abs(np.diff(pred, prepend=0))  # cp[0] = pred[0]
    cp_times = ts[cp > 0]
    starts = ts[np.asarray(true_changepoints).astype(bool)]
    bounds = [[float(t), float(t) + window_s] for t in np.sort(starts)]
    for k in range(1, len(bounds)):  # cut right window
        if bounds[k - 1][1] >= bounds[k][0]:
            bounds[k][0] = bounds[k - 1][1]
    curve = _skab_curve(profile)
    used = np.zeros(len(cp_times), dtype=bool)
    score, tp = 0.0, 0
    for left, right in bounds:
        inside = (cp_times >= left) & (cp_times <= right)
        used |= inside
        if inside.any():
            t_det = float(cp_times[np.argmax(inside)])
            frac = (t_det - left) / (right - left) if right > left else 0.0
            score += float(curve[min(int(frac * 1000), 999)])
            tp += 1
    fp = int((~used).sum())
    missed = len(bounds) - tp
    score += profile.a_fp * fp + profile.a_fn * missed
    return ChangepointCounts(score, len(bounds), tp, missed, fp)


def skab_changepoint_score(files: Sequence[ChangepointCounts], profile: NabProfile) -> float:
    """round(100 · (S − S_null) / (S_perfect − S_null), 2) over all files' counts."""
    n = sum(f.windows for f in files)
    s = sum(f.score_sum for f in files)
    null, perfect = n * profile.a_fn, n * profile.a_tp
    return round(100.0 * (s - null) / (perfect - null), 2)


# -- unit-level rates -------------------------------------------------------------------------


def rates(predicted: npt.ArrayLike, truth: npt.ArrayLike) -> dict[str, float]:
    """TPR and FPR of unit-level (e.g. day-level) decisions."""
    c = confusion(predicted, truth)
    return {
        "tpr": c.tp / (c.tp + c.fn) if c.tp + c.fn else 0.0,
        "fpr": c.fp / (c.fp + c.tn) if c.fp + c.tn else 0.0,
        "tp": c.tp,
        "fn": c.fn,
        "fp": c.fp,
        "tn": c.tn,
    }
