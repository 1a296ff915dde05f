"""NAB v1.1 on the 51 files here, cross-validated: pitstop's streaming value-novelty detector, with peers.

    python bench/nab.py

Every detector scores each file prequentially (score a value, then learn it) from a fresh
state, so it never sees a row before that row is scored; it learns through NAB's probationary
period like any other row. Raw scores become detections the same way for every detector:
score >= threshold, then a refractory period (an alarm is kept only when no alarm was kept in
the previous `rest` rows; NAB counts only the first detection in a window and charges every
other one).

Headline protocol: cross-validation that leaves whole files out. The choosable settings are a
small grid fixed before any fold was run:

- value_novelty: memory in MEMORIES x rest in RESTS x 50 thresholds, log-spaced from 0.004 to
  0.4 (the score is a share of the recent range, so an absolute grid needs no data);
- each peer: rest in RESTS x 50 thresholds on its own fixed scale (THRESHOLDS below).

Each file's scores are computed once per setting, and each file's raw NAB score once per
(setting, rest, threshold, profile). For every held-out part, and separately for each profile,
the cell with the largest summed raw score over the OTHER files is picked (the same choice as
the best normalised score over those files, which is a monotone function of it), and applied
to the held-out part. The held-out raw scores are added up over all folds and normalised once
over the 97 windows, as NAB normalises a corpus. Two splits are reported:

- leave_one_file_out (51 folds): the headline;
- leave_one_category_out (6 folds): each NAB category is held out in turn, the nearest local
  proxy for NAB's realKnownCause files, which are not in this folder.

Also in the same run, for comparison only: the previous even/odd protocol (memory 4000, rest 30,
threshold per profile the best of 60 upper-tail quantiles of the even files' scores; the odd
files reported alone, not blind), and the best grid cell on all 51 files (NAB's own way of
choosing a threshold: in sample, an upper bound).

Tried and not kept (each as an extra grid axis that the same cross-validation could choose,
run once while writing this protocol): alarming only when the score is also at least k times
the largest score of the file's own previous W rows (k 0.5/1/2, W 500/2000: a threshold that
calibrates itself per file), and an anomaly-likelihood step (z-score of the short mean of the
novelty scores against their mean and std over the previous 1000 or 4000 rows). Both scored
lower in both splits (standard 35-60 against 70-72) and no fold chose them, so they are
not in this script. Caveat, said plainly: the detector (value novelty with a finite memory) and
the grid above were found while looking at all 51 files (bench/README.md), so even the
cross-validated numbers are optimistic about that design choice; the only blind evidence is the
result on NAB files this repo does not have (issue 16).

Peers, with the same post-processing and the same protocol: pitstop's EWMA z-score (the
previous headline), and river's HalfSpaceTrees and GaussianScorer when the bench extras are
installed (`pip install -e .[bench]`). Prints JSON with normalised standard / low-FP / low-FN
scores.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from _common import dataset, emit, optional
from pitstop.ml.detectors import EwmaZScoreDetector, ValueNoveltyDetector
from pitstop.ml.evaluation import NAB_PROFILES, nab_file_score, nab_normalised, nab_window_rows
from pitstop.ml.thresholds import refractory

MEMORIES = (1000, 2000, 4000, 8000)  # values the novelty detector remembers: the cross-validated grid
RESTS = (10, 30, 60)  # rows of silence after an alarm: the cross-validated grid
REST = 30  # the even/odd comparison's fixed settings (the previous headline)
MEMORY = 4000
BOUNDED = np.r_[1.0 - np.geomspace(0.5, 1e-6, 49), 1.0]  # scores in [0, 1] that crowd towards 1
THRESHOLDS = {
    "pitstop.value_novelty": np.geomspace(0.004, 0.4, 50),  # share of the recent range
    "pitstop.ewma_zscore": np.geomspace(1.0, 100.0, 50),  # z units
    "river.HalfSpaceTrees": BOUNDED,
    "river.GaussianScorer": BOUNDED,
}
PROFILES = list(NAB_PROFILES)
N_WINDOWS_KEY = "windows"

Scorer = Callable[[np.ndarray], np.ndarray]  # one file's values -> prequential scores
File = tuple[str, np.ndarray, list[tuple[int, int]]]


def novelty(memory: int) -> Scorer:
    return lambda values: ValueNoveltyDetector(memory=memory, warmup=100).score_learn(values)


def ewma(values: np.ndarray) -> np.ndarray:
    return EwmaZScoreDetector(alpha=0.01, warmup=50, protect_above=None).score_learn(values)


def river_scorers() -> dict[str, Scorer]:
    if optional("river") is None:
        return {}
    from river import anomaly

    def hst(values: np.ndarray) -> np.ndarray:
        # HalfSpaceTrees wants features in [0, 1]: scale by the range seen so far (no peeking).
        model = anomaly.HalfSpaceTrees(n_trees=25, height=8, window_size=250, seed=0)
        out = np.empty(len(values))
        lo = hi = float(values[0])
        for i, v in enumerate(values.tolist()):
            lo, hi = min(lo, v), max(hi, v)
            x = {"x": (v - lo) / (hi - lo) if hi > lo else 0.5}
            out[i] = model.score_one(x)
            model.learn_one(x)
        return out

    def gaussian(values: np.ndarray) -> np.ndarray:
        model = anomaly.GaussianScorer(grace_period=100)
        out = np.empty(len(values))
        for i, v in enumerate(values.tolist()):
            out[i] = model.score_one(None, v)
            model.learn_one(None, v)
        return out

    return {"river.HalfSpaceTrees": hst, "river.GaussianScorer": gaussian}


@dataclass(frozen=True)
class Grid:
    """One detector's choosable cells: settings (each its own scores) x RESTS x thresholds."""

    settings: dict[str, list[np.ndarray]]  # setting label -> one score array per file
    thresholds: np.ndarray

    def cell(self, index: tuple[int, ...]) -> dict[str, object]:
        setting, rest, threshold = index
        return {
            "setting": list(self.settings)[setting],
            "rest": RESTS[rest],
            "threshold": round(float(self.thresholds[threshold]), 5),
        }


def raw_table(files: Sequence[File], grid: Grid) -> np.ndarray:
    """Raw NAB score of every file in every cell: shape (settings, rests, thresholds, files, profiles)."""
    table = np.zeros((len(grid.settings), len(RESTS), len(grid.thresholds), len(files), len(PROFILES)))
    for a, scores in enumerate(grid.settings.values()):
        for f, ((_, _, rows), s) in enumerate(zip(files, scores, strict=True)):
            for c, threshold in enumerate(grid.thresholds):
                flags = s >= threshold
                for b, rest in enumerate(RESTS):
                    detections = refractory(flags, rest)
                    for p, name in enumerate(PROFILES):
                        table[a, b, c, f, p] = nab_file_score(detections, rows, NAB_PROFILES[name]).raw
    return table


def normalised(raw: float, n_windows: int, profile: str) -> float:
    return round(nab_normalised(raw, n_windows, NAB_PROFILES[profile]), 2)


def cross_validate(table: np.ndarray, grid: Grid, windows: np.ndarray, groups: np.ndarray) -> dict[str, object]:
    """Pick the best cell on the other groups' files, apply it to the held-out group, pool, normalise."""
    report: dict[str, object] = {}
    for p, profile in enumerate(PROFILES):
        pooled = 0.0
        picks: dict[str, dict[str, object]] = {}
        for group in dict.fromkeys(groups.tolist()):
            held = groups == group
            training = table[..., ~held, p].sum(axis=-1)
            index = np.unravel_index(int(training.argmax()), training.shape)
            raw = float(table[index][held, p].sum())
            pooled += raw
            pick = grid.cell(tuple(int(i) for i in index))
            n = int(windows[held].sum())
            pick["held_out"] = normalised(raw, n, profile) if n else None  # None: a part without windows
            pick["held_out_raw"] = round(raw, 2)
            picks[str(group)] = pick
        row: dict[str, object] = {"score": normalised(pooled, int(windows.sum()), profile)}
        if len(picks) <= 10:
            row["folds"] = picks
        else:
            cells = ({k: v for k, v in pick.items() if not k.startswith("held_out")} for pick in picks.values())
            chosen = Counter(json.dumps(cell) for cell in cells)
            row["picks"] = [{"cell": json.loads(cell), "folds": count} for cell, count in chosen.most_common(4)]
            row["distinct_picks"] = len(chosen)
        report[profile] = row
    return report


def in_sample(table: np.ndarray, grid: Grid, windows: np.ndarray) -> dict[str, object]:
    """The best cell on all files (NAB's own way of choosing a threshold): an upper bound, not a result."""
    report: dict[str, object] = {}
    for p, profile in enumerate(PROFILES):
        total = table[..., p].sum(axis=-1)
        index = np.unravel_index(int(total.argmax()), total.shape)
        report[profile] = {"score": normalised(float(total.max()), int(windows.sum()), profile), **grid.cell(index)}
    return report


def quantile_grid(scores: Sequence[np.ndarray]) -> np.ndarray:
    """Candidate thresholds: 60 quantiles of the upper tail of all scores (a fixed rule)."""
    pooled = np.concatenate(scores)
    return np.unique(np.quantile(pooled, 1.0 - np.geomspace(0.2, 1e-4, 60)))


def total(files: Sequence[File], scores: Sequence[np.ndarray], threshold: float, profile_name: str) -> float:
    profile = NAB_PROFILES[profile_name]
    return sum(
        nab_file_score(refractory(s >= threshold, REST), rows, profile).raw
        for (_, _, rows), s in zip(files, scores, strict=True)
    )


def even_odd(files: list[File], scores: list[np.ndarray]) -> dict[str, object]:
    """The previous protocol: thresholds chosen on the even files, odd files reported alone."""
    even = (files[0::2], scores[0::2])
    subsets = {"all": (files, scores), "odd_files": (files[1::2], scores[1::2]), "even_files": even}
    grid = quantile_grid(even[1])
    report: dict[str, object] = {}
    for profile_name, profile in NAB_PROFILES.items():
        chosen = float(max(grid, key=lambda t: total(*even, t, profile_name)))
        row: dict[str, float] = {"threshold": chosen}
        for subset_name, (sub_files, sub_scores) in subsets.items():
            raw = total(sub_files, sub_scores, chosen, profile_name)
            row[subset_name] = round(nab_normalised(raw, sum(len(r) for _, _, r in sub_files), profile), 2)
        report[profile_name] = row
    return report


def evaluate(files: list[File], name: str, settings: dict[str, Scorer], fixed: str) -> dict[str, Any]:
    started = time.perf_counter()
    grid = Grid(
        {label: [scorer(values) for _, values, _ in files] for label, scorer in settings.items()}, THRESHOLDS[name]
    )
    scoring = time.perf_counter() - started
    table = raw_table(files, grid)
    windows = np.array([len(rows) for _, _, rows in files])
    categories = np.array([rel.split("/")[0] for rel, _, _ in files])
    return {
        "seconds": {"scoring": round(scoring, 2), "all": round(time.perf_counter() - started, 2)},
        "grid": {
            "settings": list(grid.settings),
            "rest": list(RESTS),
            "thresholds": f"{len(grid.thresholds)}, {grid.thresholds[0]:.4g} to {grid.thresholds[-1]:.4g}",
        },
        "leave_one_file_out": cross_validate(table, grid, windows, np.arange(len(files))),
        "leave_one_category_out": cross_validate(table, grid, windows, categories),
        "even_odd": {"setting": fixed, "rest": REST, **even_odd(files, grid.settings[fixed])},
        "in_sample_best": in_sample(table, grid, windows),
    }


def main() -> None:
    windows = json.loads(dataset("nab/labels/combined_windows.json").read_text())
    files: list[File] = []
    for rel in sorted(windows):
        frame = pd.read_csv(dataset(f"nab/data/{rel}"))
        rows = nab_window_rows(pd.to_datetime(frame["timestamp"]).to_numpy(), [tuple(w) for w in windows[rel]])
        files.append((rel, frame["value"].to_numpy(dtype=np.float64), rows))
    detectors: dict[str, tuple[dict[str, Scorer], str]] = {
        "pitstop.value_novelty": ({f"memory={m}": novelty(m) for m in MEMORIES}, f"memory={MEMORY}"),
        "pitstop.ewma_zscore": ({"alpha=0.01": ewma}, "alpha=0.01"),
        **{name: ({"default": scorer}, "default") for name, scorer in river_scorers().items()},
    }
    if optional("river") is None:
        peers_note = "river not installed (pip install -e .[bench]): pitstop ewma_zscore is the only peer"
    else:
        peers_note = "river peers scored in this run, through the same cross-validation"
    results = {name: evaluate(files, name, settings, fixed) for name, (settings, fixed) in detectors.items()}
    head = results["pitstop.value_novelty"]
    emit(
        {
            "benchmark": "nab",
            "headline": {
                "detector": "pitstop.value_novelty",
                "protocol": "leave_one_file_out",
                **{p: head["leave_one_file_out"][p]["score"] for p in PROFILES},
                "leave_one_category_out": {p: head["leave_one_category_out"][p]["score"] for p in PROFILES},
                "even_odd_all_files": {p: head["even_odd"][p]["all"] for p in PROFILES},
            },
            "detectors": {
                "pitstop.value_novelty": "ValueNoveltyDetector(memory=<grid>, warmup=100)",
                "pitstop.ewma_zscore": "EwmaZScoreDetector(alpha=0.01, warmup=50, protect_above=None)",
                "river.HalfSpaceTrees": "n_trees=25, height=8, window_size=250, seed=0; scaled by the range so far",
                "river.GaussianScorer": "grace_period=100",
            },
            "post_processing": "score >= threshold, then refractory(rest rows), same for every detector",
            "threshold_choice": (
                "per profile, the grid cell (setting, rest, threshold) with the best NAB score on the training "
                "files only; held-out raw scores pooled over folds and normalised once over 97 windows"
            ),
            "peers": peers_note,
            "target": {"standard": ">= 65", "reward_low_FP_rate": ">= 55", "protocol": "cross-validated (issue 16)"},
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
