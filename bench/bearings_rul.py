"""Remaining life of the simulator's wearing bearings: pitstop's degradation-trend model.

    python bench/bearings_rul.py

Each run is one pump from the fleet simulator (src/pitstop/sim) with a bearing_wear fault: a
different seed, onset (day 2-6) and wear life (10-20 days from onset to failure), so vib_rms
grows exponentially to 5x its healthy level at the known failure time. The health index is what
the prognostics service computes: hourly means of vib_rms over their median in the first 48 hours.
The model is fitted on 0, 1 or 3 of the runs (with 0 it gets the failure level, 5, as a setting)
and scored on 16 other runs at 50% and 90% of life (life = hours from the start of the data to
the failure): median absolute error of the RUL in hours, and coverage of the 80% interval over
all checkpoints from 30% to 95% of life. Nothing was tuned on these runs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from _common import emit
from pitstop.config.models import PrognosticsSettings
from pitstop.ml.rul import DegradationRulModel
from pitstop.ml.rul.base import History
from pitstop.sim import Fault, FaultKind, Scenario, SimAsset, SimSensor, Simulator

T0 = datetime(2026, 3, 2, tzinfo=UTC)
PUMP = SimAsset("pump", "plant", "pump", (SimSensor("vib_rms", 300.0, 0.0, 100.0),))
TRAIN_SEEDS = (101, 102, 103)
TEST_SEEDS = tuple(range(200, 216))
CHECKPOINTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def run(seed: int) -> History:
    """One bearing from new to failure, as hourly health index rows."""
    rng = np.random.default_rng(seed)
    onset = T0 + timedelta(hours=float(rng.uniform(48, 144)))
    failure = onset + timedelta(hours=float(rng.uniform(240, 480)))
    wear = Fault(FaultKind.BEARING_WEAR, "pump", onset, end=failure)
    batch = Simulator([PUMP], seed=seed, scenario=Scenario((wear,))).batch(T0, failure)
    hourly = batch.series("pump", "vib_rms").resample("1h").mean().dropna()
    hours = ((hourly.index - hourly.index[0]).total_seconds() / 3600.0).to_numpy(dtype=np.float64)
    values = hourly.to_numpy(dtype=np.float64)
    index = values / np.median(values[hours < 48])
    failed_at = (failure - T0).total_seconds() / 3600.0
    return History(f"pump-{seed}", hours, index[:, None], ("health",), failed_at=failed_at)


def cut(h: History, fraction: float) -> tuple[History, float]:
    assert h.failed_at is not None
    stop = int(np.searchsorted(h.t, fraction * h.failed_at, side="right"))
    return History(h.unit, h.t[:stop], h.X[:stop], h.features), h.failed_at - float(h.t[stop - 1])


def score(model: DegradationRulModel, runs: list[History]) -> dict[str, Any]:
    errors: dict[float, list[float]] = {f: [] for f in CHECKPOINTS}
    covered: dict[float, list[bool]] = {f: [] for f in CHECKPOINTS}
    start = time.perf_counter()
    for h in runs:
        for fraction in CHECKPOINTS:
            history, truth = cut(h, fraction)
            [e] = model.predict([history])
            errors[fraction].append(e.median - truth)
            covered[fraction].append(e.lower <= truth <= e.upper)
    predict_s = (time.perf_counter() - start) / (len(runs) * len(CHECKPOINTS))
    out: dict[str, Any] = {}
    for fraction in (0.5, 0.9):
        d = np.array(errors[fraction])
        out[f"mae_h_at_{int(fraction * 100)}pct"] = round(float(np.median(np.abs(d))), 1)
        out[f"median_error_h_at_{int(fraction * 100)}pct"] = round(float(np.median(d)), 1)
    out["coverage80_all_checkpoints"] = round(float(np.mean([c for f in CHECKPOINTS for c in covered[f]])), 3)
    out["coverage80_by_checkpoint"] = {str(f): round(float(np.mean(covered[f])), 2) for f in CHECKPOINTS}
    out["predict_ms"] = round(1000 * predict_s, 2)
    return out


def main() -> None:
    train = [run(s) for s in TRAIN_SEEDS]
    test = [run(s) for s in TEST_SEEDS]
    lives = [h.failed_at for h in test if h.failed_at is not None]
    results = {}
    for n in (0, 1, 3):
        start = time.perf_counter()
        model = DegradationRulModel(failure_level=5.0, min_rise=PrognosticsSettings().min_rise).fit(train[:n])
        fit_s = time.perf_counter() - start
        results[f"{n}_failures"] = {
            **score(model, test),
            "failure_level": round(model.threshold_, 3),
            "interval_factor": round(model.scale_, 3),
            "fit_s": round(fit_s, 3),
        }
    emit(
        {
            "benchmark": "bearings_rul",
            "data": f"{len(test)} simulated pumps to failure (life {min(lives):.0f}-{max(lives):.0f} h), "
            "hourly vib_rms over its first-48 h median",
            "model": "pitstop degradation (exponential trend to the failure level, bootstrap 80% interval)",
            "scored_at": "mae at 50% / 90% of life; coverage over checkpoints " + ", ".join(map(str, CHECKPOINTS)),
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
