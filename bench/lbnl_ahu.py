"""LBNL air-handling-unit FDD data, day-level decisions (MZVAV-2-2 and SZCAV).

    python bench/lbnl_ahu.py

The day (00:00-24:00) is the scoring unit: its truth is constant within the day. Each unit uses
its own columns (every numeric column but the label; the two units' column sets differ), one row
per minute, forward-filled. Per asset, a detector is fitted on that unit's unfaulted days only
(the per-asset baseline the product keeps); a day's score is a quantile of its row scores, and a
day is flagged when its score exceeds ``m`` times the largest score of the training days (scored
by the detector fitted on them). Within a unit:
- an unfaulted day is scored by a detector fitted on the *other* unfaulted days (leave one day
  out), so it is never in its own baseline; this needs two or more unfaulted days;
- a faulted day is scored by the detector fitted on all the unit's unfaulted days.

**Headline: leave one AHU out.** A *setting* is (detector and its parameters, day quantile,
threshold multiple m). Every setting is chosen on one unit (the training unit, labels read
there only) and applied unchanged to the other unit, whose detector is fitted on its own
unfaulted days as above -- the settings transfer, not the fitted model. Both directions.
The grid, declared before any leave-one-AHU-out result was computed:
- detector: RobustZScore max, RobustZScore rms, PCA (variance 0.9) T2+Q, PCA T2, PCA Q,
  Reconstruction (alpha 0.01) -- listed simplest first. Isolation forest is left out: its score
  is not on a ratio scale, so a multiple of the training maximum has no meaning for it;
- day quantile of the row scores: 0.5, 0.9, 0.99;
- threshold multiple m of the training days' largest day score: 1.0, 1.5, 2.0, 3.0.
The choice rule, fixed in advance: most TPR on the training unit among settings whose training
FPR (leave one day out) is <= 0.2; ties to the lower training FPR, then the larger m (the more
conservative cut-off), then the simpler detector, then the lower quantile (grid order). If no
setting keeps FPR <= 0.2, the lowest FPR, then most TPR.

SZCAV has a single unfaulted day, so its FPR cannot be measured at all (leaving it out leaves no
baseline; scoring it against itself is in-sample). Hence:
- training on SZCAV, FPR is unknown and every setting is admissible: the rule then picks most TPR
  and, among ties, the largest m -- the highest cut-off that still catches what it catches. This
  direction's held-out FPR is measured on MZVAV-2-2 (13 unfaulted days, leave one day out);
- training on MZVAV-2-2, the held-out SZCAV gives TPR only (14 faulted days scored against a
  baseline of its one unfaulted day); the FPR reported beside it is the training unit's, as
  shared/EVALUATION.md asks ("TPR at the FPR the training unit's threshold gives").
The held-out unit's results are computed for the chosen setting only; no other setting is
scored on it.

Also reported: the earlier fixed pipeline (PCA T2+Q, day quantile 0.9, m 1.0), leave one day out
within each unit. It was chosen by comparing detectors and aggregations on MZVAV-2-2 with that
same protocol, so its MZVAV-2-2 number is in-sample for the choice.

Design choices made after seeing results: none. The grid, the rule and this docstring were written
before the first run of the leave-one-AHU-out part; after it, only output was added (the training
unit's whole grid, ``training_table``: one line per cell with its TPR and FPR -- training unit only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from _common import dataset, emit
from pitstop.ml.detectors import Detector, PcaDetector, ReconstructionDetector, RobustZScoreDetector
from pitstop.ml.evaluation import rates

LABEL = "Fault Detection Ground Truth"
UNITS = ("MZVAV-2-2", "SZCAV")
MAX_FPR = 0.2

DETECTORS: dict[str, Callable[[], Detector]] = {
    "mad_max": lambda: RobustZScoreDetector(aggregate="max"),
    "mad_rms": lambda: RobustZScoreDetector(aggregate="rms"),
    "pca_t2q": lambda: PcaDetector(variance=0.9, statistic="combined"),
    "pca_t2": lambda: PcaDetector(variance=0.9, statistic="t2"),
    "pca_q": lambda: PcaDetector(variance=0.9, statistic="q"),
    "reconstruction": lambda: ReconstructionDetector(alpha=0.01),
}
QUANTILES = (0.5, 0.9, 0.99)
MULTIPLES = (1.0, 1.5, 2.0, 3.0)
EARLIER = ("pca_t2q", 0.9, 1.0)  # the fixed leave-one-day-out pipeline


@dataclass(frozen=True)
class Unit:
    name: str
    X: np.ndarray
    day: np.ndarray
    days: np.ndarray
    truth: np.ndarray  # one 0/1 per day of ``days``
    columns: list[str]


@dataclass(frozen=True)
class Scored:
    """One scored day: its date, truth, score per quantile, the training days' largest per quantile."""

    day: str
    truth: int
    score: dict[float, float]
    train_max: dict[float, float]


def load(name: str) -> Unit:
    frame = pd.read_csv(dataset(f"lbnl_ahu_fdd/{name}.csv"))
    day = pd.to_datetime(frame["Datetime"], format="%m/%d/%Y %H:%M").dt.normalize().to_numpy()
    columns = [c for c in frame.columns if c not in ("Datetime", LABEL)]
    X = frame[columns].apply(pd.to_numeric, errors="coerce").ffill().fillna(0.0).to_numpy(float)
    days = np.unique(day)
    labels = frame[LABEL].to_numpy()
    truth = np.array([int(labels[day == d][0]) for d in days])
    return Unit(name, X, day, days, truth, columns)


def _day_quantiles(scores: np.ndarray) -> dict[float, float]:
    return {q: float(np.quantile(scores, q)) for q in QUANTILES}


def score_days(unit: Unit, make: Callable[[], Detector]) -> list[Scored]:
    """Every day of the unit that can be scored honestly, for one detector (all quantiles)."""
    normal = unit.days[unit.truth == 0]
    out: list[Scored] = []

    def fit(train_days: np.ndarray) -> tuple[Detector, dict[float, float]]:
        det = make().fit(unit.X[np.isin(unit.day, train_days)])
        per_day = [_day_quantiles(det.score(unit.X[unit.day == n])) for n in train_days]
        return det, {q: max(p[q] for p in per_day) for q in QUANTILES}

    if len(normal) >= 2:  # unfaulted days, each left out of its own baseline
        for d in normal:
            det, train_max = fit(normal[normal != d])
            out.append(Scored(str(d)[:10], 0, _day_quantiles(det.score(unit.X[unit.day == d])), train_max))
    det, train_max = fit(normal)
    for d in unit.days[unit.truth == 1]:
        out.append(Scored(str(d)[:10], 1, _day_quantiles(det.score(unit.X[unit.day == d])), train_max))
    return out


def decide(scored: list[Scored], quantile: float, multiple: float) -> dict[str, Any]:
    predicted = [s.score[quantile] > multiple * s.train_max[quantile] for s in scored]
    truth = [s.truth for s in scored]
    result: dict[str, Any] = {"scored_days": len(scored), **rates(predicted, truth)}
    if result["fp"] + result["tn"] == 0:
        result["fpr"] = None  # no unfaulted day could be scored: FPR not measurable
    result["missed_days"] = [s.day for s, p in zip(scored, predicted, strict=True) if s.truth and not p]
    result["false_alarm_days"] = [s.day for s, p in zip(scored, predicted, strict=True) if p and not s.truth]
    return result


def choose(table: list[dict[str, Any]]) -> dict[str, Any]:
    """The rule fixed in advance (see the module docstring); ``table`` is in grid order."""
    order = {id(row): i for i, row in enumerate(table)}

    def fpr(row: dict[str, Any]) -> float:
        return 0.0 if row["fpr"] is None else float(row["fpr"])

    admissible = [r for r in table if r["fpr"] is None or r["fpr"] <= MAX_FPR]
    if admissible:
        return min(admissible, key=lambda r: (-r["tpr"], fpr(r), -r["multiple"], order[id(r)]))
    return min(table, key=lambda r: (fpr(r), -r["tpr"], -r["multiple"], order[id(r)]))


def leave_one_ahu_out(scored: dict[str, dict[str, list[Scored]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for train, test in ((UNITS[0], UNITS[1]), (UNITS[1], UNITS[0])):
        table = [
            {"detector": det, "quantile": q, "multiple": m, **decide(scored[train][det], q, m)}
            for det, q, m in product(DETECTORS, QUANTILES, MULTIPLES)
        ]
        chosen = choose(table)
        setting = (chosen["detector"], chosen["quantile"], chosen["multiple"])
        # the held-out unit is scored once, with the chosen setting only
        held = decide(scored[test][setting[0]], setting[1], setting[2])
        training_fpr_known = chosen["fpr"] is not None
        fpr_for_criterion = held["fpr"] if held["fpr"] is not None else chosen["fpr"]
        out[f"train {train} -> test {test}"] = {
            "setting": {"detector": setting[0], "day_quantile": setting[1], "threshold_multiple": setting[2]},
            "training_unit": {k: v for k, v in chosen.items() if k not in ("detector", "quantile", "multiple")},
            "training_fpr_measurable": training_fpr_known,
            "held_out_unit": held,
            "held_out_fpr_measurable": held["fpr"] is not None,
            "fpr_used_for_criterion": fpr_for_criterion,
            "criterion_met": (fpr_for_criterion is not None and held["tpr"] >= 0.8 and fpr_for_criterion <= MAX_FPR),
            "training_grid_cells_admissible": sum(1 for r in table if r["fpr"] is None or r["fpr"] <= MAX_FPR),
            "training_grid_cells_at_chosen_tpr": sum(
                1 for r in table if (r["fpr"] is None or r["fpr"] <= MAX_FPR) and r["tpr"] == chosen["tpr"]
            ),
            "training_table": [
                f"{r['detector']} q{r['quantile']} m{r['multiple']}: TPR {r['tpr']:.2f} FPR "
                + ("n/a" if r["fpr"] is None else f"{r['fpr']:.2f}")
                for r in table
            ],
        }
    return out


def main() -> None:
    units = {name: load(name) for name in UNITS}
    scored = {name: {det: score_days(unit, make) for det, make in DETECTORS.items()} for name, unit in units.items()}
    lodo = {}
    for name, unit in units.items():
        det, q, m = EARLIER
        lodo[name] = {"days": len(unit.days), "faulted_days": int(unit.truth.sum()), **decide(scored[name][det], q, m)}
    emit(
        {
            "benchmark": "lbnl_ahu",
            "protocol": (
                "leave one AHU out: detector, day quantile and threshold multiple chosen on one unit "
                "(most TPR with leave-one-day-out FPR <= 0.2), applied unchanged to the other unit, "
                "whose detector is fitted on its own unfaulted days"
            ),
            "target": {"leave_one_ahu_out": "TPR >= 0.8 at FPR <= 0.2", "leave_one_day_out": "TPR >= 0.9, FPR <= 0.1"},
            "grid": {
                "detectors": list(DETECTORS),
                "day_quantiles": list(QUANTILES),
                "threshold_multiples": list(MULTIPLES),
            },
            "columns": {name: len(unit.columns) for name, unit in units.items()},
            "leave_one_ahu_out": leave_one_ahu_out(scored),
            "leave_one_day_out": {
                "setting": {"detector": EARLIER[0], "day_quantile": EARLIER[1], "threshold_multiple": EARLIER[2]},
                "note": "chosen earlier on MZVAV-2-2 with this protocol: in-sample for that choice",
                "results": lodo,
            },
        }
    )


if __name__ == "__main__":
    main()
