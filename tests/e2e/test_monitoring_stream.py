"""Stream scoring end to end: simulated faults open exactly one incident each, naming the faulty part."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from pitstop.app import Pitstop
from pitstop.ml.scoring import StreamScorer
from pitstop.sim import Fault, FaultKind, Scenario, Simulator, assets_of_database
from pitstop.storage.repos.readings import ReadingBatch

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _backfill(pitstop: Pitstop, simulator: Simulator, start: datetime, end: datetime) -> None:
    index = pitstop.assets.sensor_index()
    for batch in simulator.chunks(start, end):
        ids = np.array([index[key].id for key in batch.keys], dtype=np.int32)[batch.key]
        pitstop.readings.write(ReadingBatch.of(ids, batch.ts_us, batch.value))


def _detail(pitstop: Pitstop, asset: str) -> dict[str, Any]:
    incident = pitstop.incidents.active(f"asset.anomaly:{asset}")
    assert incident is not None and incident.detail is not None
    detail: dict[str, Any] = json.loads(incident.detail)
    return detail


def test_valve_and_bearing_faults_each_open_one_incident(demo_pitstop: Pitstop) -> None:
    valve = Fault(FaultKind.VALVE_STUCK, "ahu-1", T0 + timedelta(days=2))
    bearing = Fault(FaultKind.BEARING_WEAR, "pump-1", T0 + timedelta(days=2), end=T0 + timedelta(days=8))
    assets = [a for a in assets_of_database(demo_pitstop.assets) if a.type in ("hvac", "pump", "fan")]
    simulator = Simulator(assets, seed=4, scenario=Scenario((valve, bearing)))
    scorer = StreamScorer(demo_pitstop, baseline=timedelta(days=1))

    _backfill(demo_pitstop, simulator, T0, T0 + timedelta(days=2))
    assert scorer.run(T0 + timedelta(days=2)) == []  # healthy fleet: nothing to report

    _backfill(demo_pitstop, simulator, T0 + timedelta(days=2), T0 + timedelta(days=5))
    findings = {f.asset: f for f in scorer.run(T0 + timedelta(days=5))}
    assert set(findings) == {"ahu-1", "pump-1"}
    for fault in (valve, bearing):
        finding = findings[fault.asset]
        assert fault.start <= finding.start
        if fault.failure_time is not None:
            assert finding.start < fault.failure_time

    active = demo_pitstop.incidents.list()
    keys = sorted(i.key for i in active)
    assert keys == ["asset.anomaly:ahu-1", "asset.anomaly:pump-1"]
    # The bearing's own signal comes first; for the stuck valve, the loop twin's residuals put the
    # valve's signals first (UCWF, and the water and air leaving the coil), not inputs that moved.
    assert findings["pump-1"].signals[0].signal in bearing.signals
    valve_signals = {"UCWF", "UCWOT", "UCAOT"}
    assert findings["ahu-1"].explained_by == "twin residuals"
    assert [c.signal for c in findings["ahu-1"].signals[:2]] == [
        c.signal for c in findings["ahu-1"].signals[:2] if c.signal in valve_signals
    ], findings["ahu-1"].signals
    assert findings["ahu-1"].signals[0].signal in valve_signals
    assert _detail(demo_pitstop, "pump-1")["top_signals"][0]["signal"] in bearing.signals
    assert _detail(demo_pitstop, "ahu-1")["top_signals"][0]["signal"] in valve_signals

    # Findings are stored with their incident; the baselines survive a new scorer (a restart):
    # nothing is refitted and nothing already scored is scored again.
    stored = demo_pitstop.scoring.findings("ahu-1")
    assert len(stored) == 1 and stored[0]["incident_key"] == "asset.anomaly:ahu-1"
    assert stored[0]["explanation"]["top_signals"][0]["signal"] in valve_signals
    again = StreamScorer(demo_pitstop, baseline=timedelta(days=1))
    model = again.model("ahu-1")
    assert model is not None and model.twin is not None
    assert model.fitted_at == scorer.models["ahu-1"].fitted_at
    assert again.scored_until["ahu-1"] == T0 + timedelta(days=5)
    assert again.run(T0 + timedelta(days=5)) == []
