"""C-MAPSS: pitstop's GbmRulModel against a plain LightGBM baseline, on every subset in the folder.

    python bench/cmapss.py [FD001 FD003 ...]

Without arguments it scores every subset whose three files (train_, test_, RUL_) are in the data
folder: FD001 and FD003 here; FD002 and FD004 (six flight conditions) are scored the same way when
present. The operating settings are the model's regime inputs, never features: the number of
regimes is found from the training units' settings (`find_regimes`: one on FD001/FD003), as the
service would find it, so no subset gets a constant of its own.

Conventions (shared/datasets/README.md, section 1): training target min(RUL, cap); one prediction
per test unit at its last row; RMSE and the NASA score (a sum over units) against the test truth
both capped at 125 and raw; coverage of the 80% interval of test units against both.

Model selection uses the training units only: each fit holds out five groups of whole units in
turn, so every training row has an out-of-fold prediction from a model that never saw its unit.
The candidate settings (target cap 125 or 130) are compared by the out-of-fold RMSE on rows whose
true RUL is at most 150 (truth capped at 125, like the test units, which stop 7-145 cycles before
failure); the winner's fit is the one scored on the test files. Everything else was fixed while
developing on FD001's out-of-fold error and is the same for both subsets.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import dataset, emit
from pitstop.ml.rul import GbmRulModel
from pitstop.ml.rul.cmapss import SENSORS, SETTINGS, load, select
from pitstop.ml.rul.evaluation import bounds, interval_coverage, nasa_score, rmse

CAP = 125.0
CANDIDATES = ({"cap": 125.0}, {"cap": 130.0})
PITSTOP = {
    "smoothing": 0.3,
    "late_weight": 2.0,
    "baseline": 20,
    "windows": (5, 10, 30),
    "columns": SENSORS,
    "regime_columns": SETTINGS,
}
SHOWN = {k: v for k, v in PITSTOP.items() if not k.endswith("columns")}
BASELINE = {"smoothing": 1.0, "late_weight": 0.0, "baseline": 0, "windows": (30,), "with_time": False}


def subsets(folder: Path, asked: list[str]) -> list[str]:
    names = [p.name.removeprefix("train_").removesuffix(".txt") for p in folder.glob("train_FD*.txt")]
    found = sorted(n for n in names if (folder / f"test_{n}.txt").exists() and (folder / f"RUL_{n}.txt").exists())
    missing = [a for a in asked if a not in found]
    if missing:
        raise SystemExit(f"no train_/test_/RUL_ files for {missing} in {folder} (found {found})")
    return asked or found


def validation_rmse(model: GbmRulModel) -> float:
    oof = model.oof_
    rows = oof["rul"] <= 150
    return rmse(oof["predicted"][rows], np.minimum(oof["rul"][rows], CAP))


def scored(model: GbmRulModel, test: list, truth: np.ndarray, fit_s: float) -> dict[str, Any]:
    start = time.perf_counter()
    estimates = model.predict(test)
    predict_s = time.perf_counter() - start
    med, lo, hi = bounds(estimates)
    capped = np.minimum(truth, CAP)
    return {
        "rmse_capped": round(rmse(med, capped), 3),
        "nasa_capped": round(nasa_score(med, capped), 1),
        "rmse_raw": round(rmse(med, truth), 3),
        "nasa_raw": round(nasa_score(med, truth), 1),
        "coverage80_capped": round(interval_coverage(lo, hi, capped), 3),
        "coverage80_raw": round(interval_coverage(lo, hi, truth), 3),
        "mean_interval_width": round(float(np.mean(hi - lo)), 2),
        "validation_rmse": round(validation_rmse(model), 3),
        "fit_s": round(fit_s, 2),
        "predict_s": round(predict_s, 3),
    }


def fitted(train: list, **params: Any) -> tuple[GbmRulModel, float]:
    start = time.perf_counter()
    model = GbmRulModel(**params).fit(train)
    return model, time.perf_counter() - start


def main() -> None:
    folder = dataset("cmapss")
    results: dict[str, Any] = {}
    for subset in subsets(folder, sys.argv[1:]):
        train, test, truth = load(folder, subset)
        # The plain baseline sees the sensors only; constant sensors are dropped by both models.
        baseline, baseline_s = fitted([select(h, SENSORS) for h in train], **BASELINE, cap=CAP)
        tried = [(c, *fitted(train, **PITSTOP, **c)) for c in CANDIDATES]
        chosen, model, fit_s = min(tried, key=lambda item: validation_rmse(item[1]))
        results[subset] = {
            "pitstop": {"chosen": chosen, **scored(model, test, truth, fit_s)},
            "validation_rmse_per_candidate": {str(c["cap"]): round(validation_rmse(m), 3) for c, m, _ in tried},
            "regimes_found": int(model.regimes_),
            "plain_lightgbm": scored(baseline, [select(h, SENSORS) for h in test], truth, baseline_s),
            "fit_s_all_candidates": round(sum(s for _, _, s in tried), 2),
        }
    emit(
        {
            "benchmark": "cmapss",
            "model": (
                f"pitstop gbm {SHOWN}, regimes found from the settings, 5 unit folds (mean of the fold models),"
                " binned split-conformal 80%"
            ),
            "baseline": f"plain LightGBM: current values + rolling mean/std/slope over 30 cycles, cap 125 {BASELINE}",
            "truth": "capped = min(RUL, 125) (the usual convention); raw = RUL_FD00x.txt as is",
            "intervals": "calibrated against the capped truth on out-of-fold training rows",
            "selection": "cap 125 vs 130 by out-of-fold RMSE on training rows with RUL <= 150; never on test",
            "target": {"rmse_capped": "<= 11.0", "coverage80": "0.75-0.85"},
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
