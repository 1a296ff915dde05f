"""NAB v1.1 on the 51 files here: pitstop's streaming value-novelty detector, with peers.

    python bench/nab.py

Every detector scores each file prequentially (score a value, then learn it) from a fresh
state, so it never sees a row before that row is scored; it learns through NAB's probationary
period like any other row. Raw scores become detections the same way for every detector:
score >= threshold, then a refractory period (an alarm is kept only when no alarm was kept in
the previous REST rows; NAB counts only the first detection in a window and charges every
other one). One parameter set is used for all files. The threshold per profile is the best
of a fixed grid on the even-numbered files (sorted order); the odd-numbered files are also
reported alone. How the detector settings (memory, rest period) were chosen is written in
bench/README.md.

Compared in the same run, with the same post-processing and threshold choice:
pitstop's EWMA z-score (the previous headline), and river's HalfSpaceTrees and
GaussianScorer when the bench extras are installed (`pip install -e .[bench]`).
Prints JSON with normalised standard / low-FP / low-FN scores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from _common import dataset, emit, optional
from pitstop.ml.detectors import EwmaZScoreDetector, ValueNoveltyDetector
from pitstop.ml.evaluation import NAB_PROFILES, nab_file_score, nab_normalised, nab_window_rows
from pitstop.ml.thresholds import refractory

REST = 30  # rows of silence after an alarm
MEMORY = 4000  # values the novelty detector remembers

Scorer = Callable[[np.ndarray], np.ndarray]  # one file's values -> prequential scores
File = tuple[str, np.ndarray, list[tuple[int, int]]]


def novelty(values: np.ndarray) -> np.ndarray:
    return ValueNoveltyDetector(memory=MEMORY, warmup=100).score_learn(values)


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


def grid_for(scores: Sequence[np.ndarray]) -> np.ndarray:
    """Candidate thresholds: 60 quantiles of the upper tail of all scores (a fixed rule)."""
    pooled = np.concatenate(scores)
    return np.unique(np.quantile(pooled, 1.0 - np.geomspace(0.2, 1e-4, 60)))


def total(files: Sequence[File], scores: Sequence[np.ndarray], threshold: float, profile_name: str) -> float:
    profile = NAB_PROFILES[profile_name]
    return sum(
        nab_file_score(refractory(s >= threshold, REST), rows, profile).raw
        for (_, _, rows), s in zip(files, scores, strict=True)
    )


def evaluate(files: list[File], scorer: Scorer) -> dict[str, object]:
    started = time.perf_counter()
    scores = [scorer(values) for _, values, _ in files]
    seconds = time.perf_counter() - started
    even = (files[0::2], scores[0::2])
    subsets = {"all": (files, scores), "odd_files": (files[1::2], scores[1::2]), "even_files": even}
    grid = grid_for(even[1])
    report: dict[str, object] = {"seconds": round(seconds, 2)}
    for profile_name, profile in NAB_PROFILES.items():
        chosen = float(max(grid, key=lambda t: total(*even, t, profile_name)))
        row: dict[str, float] = {"threshold": chosen}
        for subset_name, (sub_files, sub_scores) in subsets.items():
            raw = total(sub_files, sub_scores, chosen, profile_name)
            row[subset_name] = round(nab_normalised(raw, sum(len(r) for _, _, r in sub_files), profile), 2)
        report[profile_name] = row
    return report


def main() -> None:
    windows = json.loads(dataset("nab/labels/combined_windows.json").read_text())
    files: list[File] = []
    for rel in sorted(windows):
        frame = pd.read_csv(dataset(f"nab/data/{rel}"))
        rows = nab_window_rows(pd.to_datetime(frame["timestamp"]).to_numpy(), [tuple(w) for w in windows[rel]])
        files.append((rel, frame["value"].to_numpy(dtype=np.float64), rows))
    scorers: dict[str, Scorer] = {
        "pitstop.value_novelty": novelty,
        "pitstop.ewma_zscore": ewma,
        **river_scorers(),
    }
    if optional("river") is None:
        scorers_note = "river not installed (pip install -e .[bench])"
    else:
        scorers_note = "river peers scored in this run"
    emit(
        {
            "benchmark": "nab",
            "headline": "pitstop.value_novelty",
            "detectors": {
                "pitstop.value_novelty": f"ValueNoveltyDetector(memory={MEMORY}, warmup=100)",
                "pitstop.ewma_zscore": "EwmaZScoreDetector(alpha=0.01, warmup=50, protect_above=None)",
                "river.HalfSpaceTrees": "n_trees=25, height=8, window_size=250, seed=0; scaled by the range so far",
                "river.GaussianScorer": "grace_period=100",
            },
            "post_processing": f"score >= threshold, then refractory({REST} rows), same for every detector",
            "threshold_choice": "best of 60 upper-tail quantiles of the even files' scores, per profile",
            "peers": scorers_note,
            "target": {"standard": ">= 70"},
            "results": {name: evaluate(files, scorer) for name, scorer in scorers.items()},
        }
    )


if __name__ == "__main__":
    main()
