"""Prognostics against the database: odd failure records, false alarms, hand-recorded ends, planning."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from pitstop.app import Pitstop
from pitstop.core.types import to_epoch_us
from pitstop.incidents.windows import MuteStore, recurring
from pitstop.maintenance import OrderState
from pitstop.prognostics import rul_key
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.testing.clock import FrozenClock


def _vibration(pitstop: Pitstop, asset: str, days: float, *, wear: bool) -> None:
    """An asset's vib_rms up to now, a reading a minute: flat, or flat for two days then growing."""
    sensor = next(s for s in pitstop.assets.sensors(asset) if s.name == "vib_rms")
    minutes = np.arange(int(days * 24 * 60))
    ts = to_epoch_us(pitstop.clock.now() - timedelta(days=days)) + minutes.astype(np.int64) * 60_000_000
    hours = minutes / 60.0
    # wear grows past the 30 % rise a trend needs (prognostics.min_rise) on the fifth day
    growth = np.expm1(np.maximum(hours - 48, 0) / 40.0) * 0.08 if wear else 0.0
    level = 2.0 * (1 + growth) + np.random.default_rng(len(asset)).normal(0, 0.02, len(minutes))
    pitstop.readings.write(ReadingBatch.of(np.full(len(ts), sensor.id, dtype=np.int32), ts, level))


def test_an_odd_failure_record_does_not_stop_the_type(demo_pitstop: Pitstop, clock: FrozenClock) -> None:
    p = demo_pitstop
    _vibration(p, "pump-1", 4, wear=False)
    # A flat run "to failure" (a seal, not the bearing): nothing a trend model can learn from.
    p.prognostics.record_life_end("pump-1", clock.now(), failed=True, code="seal_leak")
    clock.advance(timedelta(days=5))
    _vibration(p, "pump-1", 5, wear=True)
    [estimate] = p.prognostics.run(asset="pump-1")
    assert estimate.degrading and estimate.lower_h < estimate.upper_h


def test_a_false_alarm_quiets_new_orders_for_a_lead_time(demo_pitstop: Pitstop, clock: FrozenClock) -> None:
    p = demo_pitstop
    _vibration(p, "pump-1", 6, wear=True)
    [first] = p.prognostics.run(asset="pump-1")
    order = p.maintenance.orders.active_for("pump-1", rul_key("pump-1"))
    assert order is not None and first.lower_h < p.settings.prognostics.lead_time_hours
    p.maintenance.orders.close(order.id, actor="tech", failure_code="no_fault")
    assert p.prognostics.store.outcomes("pump-1")[-1].finding == "false_alarm"
    assert p.incidents.active(rul_key("pump-1")) is None

    clock.advance(timedelta(hours=2))
    [again] = p.prognostics.run(asset="pump-1")
    assert again.lower_h >= p.settings.prognostics.lead_time_hours / 4  # a warning, not critical
    assert p.maintenance.orders.active_for("pump-1", rul_key("pump-1")) is None
    assert p.incidents.active(rul_key("pump-1")) is not None  # the estimate still shows


def test_an_end_recorded_by_hand_cancels_the_order_and_is_reused(demo_pitstop: Pitstop, clock: FrozenClock) -> None:
    p = demo_pitstop
    _vibration(p, "pump-1", 6, wear=True)
    p.prognostics.run(asset="pump-1")
    order = p.maintenance.orders.active_for("pump-1", rul_key("pump-1"))
    assert order is not None
    p.maintenance.orders.start(order.id, actor="tech")  # work began: the order stays
    failed_at = clock.now()
    clock.advance(timedelta(hours=20))
    p.prognostics.record_life_end("pump-1", failed_at, failed=True, code="failed", note="seized overnight")
    assert p.incidents.active(rul_key("pump-1")) is None
    closed = p.maintenance.orders.close(order.id, actor="tech", failure_code="failed")
    assert closed.state is not OrderState.OPEN
    [end] = p.prognostics.store.life_ends("pump-1")  # the hand-recorded end, not a second one at close time
    assert end.ended_at == failed_at and end.source == "manual"
    [outcome] = p.prognostics.store.outcomes("pump-1")
    assert outcome.ended_at == failed_at and outcome.finding == "failed"

    # A new life starts: its next order, if any, is a new one; the old open one was never left behind.
    _vibration(p, "fan-1", 6, wear=True)
    p.prognostics.run(asset="fan-1")
    fan_order = p.maintenance.orders.active_for("fan-1", rul_key("fan-1"))
    assert fan_order is not None and fan_order.state in (OrderState.OPEN, OrderState.PLANNED)
    p.prognostics.record_life_end("fan-1", clock.now(), failed=False, code="bearing_wear")
    assert p.maintenance.orders.get(fan_order.id).state is OrderState.CANCELLED


def test_a_short_replan_keeps_orders_planned_further_ahead(demo_pitstop: Pitstop, clock: FrozenClock) -> None:
    p = demo_pitstop
    sunday = recurring("sunday", {"site": "*"}, days="sun", start="06:00", end="14:00")
    MuteStore(p.db).add_window(sunday, now=clock.now())
    p.maintenance.capacities.set("sunday", 2.0)
    for i in range(3):
        p.maintenance.orders.open_for("manual", "pump-1", f"task.{i}", title=f"task {i}", estimated_h=2)
    p.maintenance.planner.plan(timedelta(days=30))
    far = [o for o in p.maintenance.orders.list() if o.state is OrderState.PLANNED]
    assert len(far) == 3
    p.maintenance.planner.plan(timedelta(days=8))  # sees only the first Sunday
    assert all(p.maintenance.orders.get(o.id).state is OrderState.PLANNED for o in far)


def test_calibration_of_one_period(demo_pitstop: Pitstop, clock: FrozenClock) -> None:
    p = demo_pitstop
    _vibration(p, "pump-1", 6, wear=True)
    p.prognostics.run(asset="pump-1")
    order = p.maintenance.orders.active_for("pump-1", rul_key("pump-1"))
    assert order is not None
    clock.advance(timedelta(hours=30))
    p.maintenance.orders.close(order.id, actor="tech", failure_code="failed")
    now = clock.now()
    assert p.prognostics.calibration()["failures"] == 1
    assert p.prognostics.calibration(since=now + timedelta(seconds=1))["outcomes"] == 0
    assert p.prognostics.calibration(assets={"ahu-1"})["outcomes"] == 0
    assert p.prognostics.calibration(until=now + timedelta(seconds=1))["interval_coverage"] in (0.0, 1.0)


def test_hours_read_a_run_at_a_time_equal_a_whole_read(demo_pitstop: Pitstop, clock: FrozenClock) -> None:
    p = demo_pitstop
    sensor = next(s for s in p.assets.sensors("pump-1") if s.name == "vib_rms")
    _vibration(p, "pump-1", 3, wear=True)
    first = p.prognostics.health_index("pump-1", clock.now())
    clock.advance(timedelta(hours=5, minutes=30))
    _vibration(p, "pump-1", 5.5 / 24, wear=True)  # the next hours, the last one partly
    index = p.prognostics.health_index("pump-1", clock.now())
    assert first is not None and index is not None and len(index.index) > len(first.index)
    hours_us, means = p.prognostics.store.hourly(sensor.id, None, to_epoch_us(clock.now()))
    assert np.allclose(index.index * index.baseline, means)  # the cached read and a fresh one agree
    assert len(hours_us) == len(index.hours)


def test_a_model_that_cannot_fit_falls_back_to_the_trend(demo_pitstop: Pitstop) -> None:
    p = demo_pitstop
    p.prognostics.settings = p.settings.prognostics.model_copy(update={"model": "gbm"})  # needs two failures
    _vibration(p, "pump-1", 6, wear=True)
    [estimate] = p.prognostics.run(asset="pump-1")
    assert estimate.degrading and estimate.lower_h <= estimate.median_h <= estimate.upper_h
