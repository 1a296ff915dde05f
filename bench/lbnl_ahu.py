"""LBNL air-handling-unit FDD data, day-level decisions (MZVAV-2-2 and SZCAV).

    python bench/lbnl_ahu.py

Leave-one-day-out: for each day, the detector is fitted on every *other* unfaulted day of the
same unit (one-minute rows, all numeric columns), and the day's score is the 90th percentile
of its row scores. The day is faulted when that exceeds the largest day score among the
training days. Prints JSON: TPR and FPR over days per unit.
Caveat (see bench/README.md): the detector and aggregation were chosen by comparing a few
options on MZVAV-2-2 with this same protocol; there is no untouched hold-out. SZCAV has one
unfaulted day: it trains the detector for the faulted days and is itself not scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _common import dataset, emit
from pitstop.ml.detectors import PcaDetector
from pitstop.ml.evaluation import rates

LABEL = "Fault Detection Ground Truth"


def day_scores(frame: pd.DataFrame) -> dict[str, object]:
    day = pd.to_datetime(frame["Datetime"], format="%m/%d/%Y %H:%M").dt.normalize().to_numpy()
    columns = [c for c in frame.columns if c not in ("Datetime", LABEL)]
    X = frame[columns].apply(pd.to_numeric, errors="coerce").ffill().fillna(0.0).to_numpy(float)
    days = np.unique(day)
    truth = np.array([int(frame[LABEL].to_numpy()[day == d][0]) for d in days])
    normal = days[truth == 0]
    predicted, scored_truth = [], []
    for d, t in zip(days, truth, strict=True):
        train_days = normal[normal != d]
        if len(train_days) == 0:
            continue
        det = PcaDetector(variance=0.9).fit(X[np.isin(day, train_days)])
        cutoff = max(float(np.quantile(det.score(X[day == n]), 0.9)) for n in train_days)
        predicted.append(float(np.quantile(det.score(X[day == d]), 0.9)) > cutoff)
        scored_truth.append(t)
    return {
        "days": len(days),
        "faulted_days": int(truth.sum()),
        "scored_days": len(predicted),
        **rates(predicted, scored_truth),
    }


def main() -> None:
    results = {}
    for name in ("MZVAV-2-2", "SZCAV"):
        results[name] = day_scores(pd.read_csv(dataset(f"lbnl_ahu_fdd/{name}.csv")))
    emit(
        {
            "benchmark": "lbnl_ahu",
            "protocol": "leave-one-day-out on unfaulted days; PCA T2+Q; day = q90 of rows",
            "target": {"tpr": ">= 0.9", "fpr": "<= 0.1"},
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
