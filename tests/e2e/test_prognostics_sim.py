"""A simulated bearing wears out: pitstop predicts it, plans the work before it, and keeps score."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config.models import PrognosticsSettings, Settings
from pitstop.incidents.windows import MuteStore, recurring
from pitstop.maintenance import OrderState
from pitstop.prognostics import rul_key
from pitstop.sim import Fault, FaultKind, Scenario, Simulator, assets_of_database
from pitstop.storage.engine import Database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.testing.clock import FrozenClock

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
INVENTORY = """
[[sites]]
name = "plant"

[[assets]]
name = "pump-7"
site = "plant"
type = "pump"
criticality = 4
sensors = [
  { name = "vib_rms", unit = "mm/s", min = 0, max = 100, period_s = 300 },
  { name = "bearing_temp", unit = "degC", min = -20, max = 150, period_s = 300 },
]
"""


@pytest.fixture
def plant(db: Database, tmp_path: Path) -> tuple[Pitstop, FrozenClock]:
    clock = FrozenClock(T0)
    settings = Settings(
        data_dir=tmp_path,
        prognostics=PrognosticsSettings(lead_time_hours=120, baseline_hours=48, min_history_hours=24),
    )
    pitstop = build(settings, clock=clock, db=db)
    inventory.apply(db, inventory.parse(INVENTORY, "plant.toml", "toml"), actor="test", now=T0)
    # A daily four-hour shift that can take the repair.
    MuteStore(db).add_window(recurring("day-shift", {"site": "*"}, days="daily", start="06:00", end="10:00"), now=T0)
    pitstop.maintenance.capacities.set("day-shift", 8.0)
    return pitstop, clock


def _backfill(pitstop: Pitstop, simulator: Simulator, start: datetime, end: datetime) -> None:
    index = pitstop.assets.sensor_index()
    for batch in simulator.chunks(start, end):
        ids = np.array([index[key].id for key in batch.keys], dtype=np.int32)[batch.key]
        pitstop.readings.write(ReadingBatch.of(ids, batch.ts_us, batch.value))


def test_a_wearing_bearing_gets_a_work_order_before_it_fails(plant: tuple[Pitstop, FrozenClock]) -> None:
    pitstop, clock = plant
    wear = Fault(FaultKind.BEARING_WEAR, "pump-7", T0 + timedelta(days=4), end=T0 + timedelta(days=24))
    failure = wear.failure_time
    assert failure is not None
    simulator = Simulator(assets_of_database(pitstop.assets), seed=11, scenario=Scenario((wear,)))

    step, now = timedelta(hours=12), T0
    dues: list[datetime] = []
    predictions: set[str] = set()
    opened_at: datetime | None = None
    while now + step < failure:
        _backfill(pitstop, simulator, now, now + step)
        now += step
        clock.set(now)
        found = pitstop.prognostics.run(now)
        if not found:  # a day of history is the least it estimates from
            assert now - T0 < timedelta(hours=24)
            continue
        [estimate] = found
        assert estimate.lower_h <= estimate.median_h <= estimate.upper_h
        order = pitstop.maintenance.orders.active_for("pump-7", rul_key("pump-7"))
        if order is not None:
            opened_at = opened_at or now
            assert order.due_at is not None
            if not dues or dues[-1] != order.due_at:
                dues.append(order.due_at)
            predictions.add(order.prediction or "")
            if order.due_at > now + timedelta(days=1):  # a daily shift fits before it: the planner used one
                assert order.window_name == "day-shift" and order.planned_start is not None
                assert order.planned_start < order.due_at

    # Healthy at first: nothing opened in the first days of wear.
    assert opened_at is not None and opened_at > T0 + timedelta(days=6)
    incident = pitstop.incidents.active(rul_key("pump-7"))
    assert incident is not None and incident.source == "prognostics"
    assert json.loads(incident.detail or "{}")["estimate"]["asset"] == "pump-7"

    # One order, due before the failure, following the estimate as it moved (its due date only ever
    # brought forward once the work is near), placed in a shift before it was due (checked above).
    [order] = pitstop.maintenance.orders.list(asset="pump-7")
    assert order.source == "prognostics" and order.key == rul_key("pump-7")
    assert all(due < failure for due in dues)
    assert dues == sorted(dues, reverse=True)
    assert order.updates >= 1 and len(predictions) >= 2
    assert order.state is OrderState.PLANNED and order.window_name == "day-shift"

    # The bearing fails before anyone gets to it: the order closes with what was found.
    clock.set(failure)
    closed = pitstop.maintenance.orders.close(order.id, actor="tech", failure_code="failed", note="seized")
    assert closed.failure_code == "failed"
    [outcome] = pitstop.prognostics.store.outcomes("pump-7")
    judged = pitstop.prognostics.store.estimate(int((order.prediction or "rul:0")[4:]))
    assert judged is not None and outcome.estimate_id == judged.id
    assert outcome.finding == "failed"
    assert outcome.observed_h == pytest.approx((failure - judged.at).total_seconds() / 3600)
    assert outcome.covered == int(judged.lower_h <= outcome.observed_h <= judged.upper_h)  # type: ignore[operator]
    calibration = pitstop.prognostics.calibration()
    assert calibration["failures"] == 1 and calibration["interval_coverage"] in (0.0, 1.0)
    assert calibration["late"] + calibration["early"] <= 1

    # The failure ends the history: the incident resolves, the next life starts from scratch.
    assert pitstop.incidents.active(rul_key("pump-7")) is None
    [end] = pitstop.prognostics.store.life_ends("pump-7")
    assert end.failed and end.ended_at == failure and end.ref == f"wo:{order.id}"
    assert pitstop.prognostics.health_index("pump-7", failure + timedelta(hours=1)) is None
    assert pitstop.maintenance.orders.get(order.id).state is OrderState.VERIFIED


def test_an_order_is_left_alone_while_the_estimate_holds_still(plant: tuple[Pitstop, FrozenClock]) -> None:
    """An order escalated to critical is not rewritten every run by later, milder estimates of the same failure."""
    from pitstop.ml.rul.base import RulEstimate

    pitstop, clock = plant
    store = pitstop.prognostics.store
    pitstop.prognostics._act(store.add_estimate("pump-7", "degradation", T0, RulEstimate(40, 20, 80, 0.8), 3.0, {}))
    first = pitstop.maintenance.orders.active_for("pump-7", rul_key("pump-7"))
    assert first is not None and first.severity.value == "critical"
    for hour in range(1, 6):  # the same predicted failure time, a lower bound only warning-low
        at = T0 + timedelta(hours=hour)
        clock.set(at)
        pitstop.prognostics._act(
            store.add_estimate("pump-7", "degradation", at, RulEstimate(40 - hour, 35, 80, 0.8), 3.0, {})
        )
    order = pitstop.maintenance.orders.get(first.id)
    assert order.updates == 0 and order.prediction == first.prediction and order.due_at == first.due_at


def test_entry_points_refuse_bad_days_and_codes(plant: tuple[Pitstop, FrozenClock]) -> None:
    from pitstop.errors import InvalidInput

    pitstop, _ = plant
    for days in (0.0, -1.0, 1e9, float("nan"), float("inf")):
        with pytest.raises(InvalidInput):
            pitstop.prognostics.summary("pump-7", days=days)
    for code in ("", "Bearing Wear", "failed\n", "x" * 101):
        with pytest.raises(InvalidInput):
            pitstop.prognostics.record_life_end("pump-7", T0, failed=True, code=code)
