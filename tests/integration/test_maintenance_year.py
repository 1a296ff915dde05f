"""A simulated year with a FrozenClock: schedules come due, windows are missed and fall back,
meters open orders at the right running hours, and compliance matches a hand count."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import to_epoch_us
from pitstop.incidents.windows import MuteStore, recurring
from pitstop.maintenance.schedules import Due, Schedule
from pitstop.maintenance.workorders import OrderState
from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.testing.clock import FrozenClock

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday
PLANT = """
[[sites]]
name = "plant"

[[sites]]
name = "annex"

[[assets]]
name = "pump-7"
site = "plant"
type = "pump"
criticality = 4
sensors = [
  { name = "run_hours", unit = "h", min = 0, period_s = 3600 },
  { name = "motor_on", unit = "", min = 0, max = 1, period_s = 600 },
]

[[assets]]
name = "cam-3"
site = "annex"
type = "camera"
criticality = 2
"""


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[tuple[Pitstop, FrozenClock]]:
    db = Database(f"sqlite:///{tmp_path / 'year.db'}")
    db.upgrade()
    clock = FrozenClock(START)
    pitstop = build(Settings(data_dir=tmp_path), clock=clock, db=db)
    inventory.apply(db, inventory.parse(PLANT, "plant.toml", "toml"), actor="test", now=clock.now())
    yield pitstop, clock
    db.dispose()


def _complete_open_orders(pitstop: Pitstop, *, procedure: str | None = None) -> None:
    for order in pitstop.maintenance.orders.list(source="schedule", active=True):
        if procedure is None or order.procedure == procedure:
            pitstop.maintenance.orders.close(order.id, actor="tech", actual_h=0.5)


@pytest.mark.slow
def test_each_shipped_procedure_comes_due_on_its_calendar(plant: tuple[Pitstop, FrozenClock]) -> None:
    pitstop, clock = plant
    m = pitstop.maintenance
    fixed = ["daily-health-check", "weekly-drift-review", "monthly-audit", "quarterly-model-validation"]
    for name in fixed:
        m.schedules.enable(name)
    lens = m.schedules.enable("camera-lens-inspection", asset="cam-3")
    plc = m.schedules.enable("plc-inspection", asset="pump-7")
    end = START + timedelta(days=365)
    for day in range(365):
        clock.set(START + timedelta(days=day, hours=2))  # 10:00 every day
        m.tick()
        # people do the fixed routines on the day they come due ...
        for name in fixed:
            _complete_open_orders(pitstop, procedure=name)
        # ... the lens inspection two days after it comes due, the PLC inspection at once
        for s, delay in ((lens, timedelta(days=2)), (plc, timedelta(0))):
            due = m.schedules.open_due(s.id)
            if due is not None and clock.now() >= due.due_at + delay:
                _complete_open_orders(pitstop, procedure=s.procedure)
        day += 1

    def dues(name: str) -> list[Due]:
        return m.schedules.dues(m.schedules.get(name).id)

    def expected(step: timedelta, first: datetime) -> list[datetime]:
        out, t = [], first
        while t < end:
            out.append(t)
            t += step
        return out

    assert [d.due_at for d in dues("daily-health-check")] == expected(timedelta(days=1), START)
    mondays = expected(timedelta(weeks=1), START + timedelta(hours=1))
    assert [d.due_at for d in dues("weekly-drift-review")] == mondays  # due the Sunday before (lead 1d) ...
    assert len(mondays) == 53
    firsts = [datetime(2026, m_, 1, 9, tzinfo=UTC) for m_ in range(2, 13)] + [datetime(2027, 1, 1, 9, tzinfo=UTC)]
    assert [d.due_at for d in dues("monthly-audit")] == firsts  # ... including Jan 1 2027, 3 days of lead
    quarters = [datetime(2026, m_, 1, 9, tzinfo=UTC) for m_ in (4, 7, 10)] + [datetime(2027, 1, 1, 9, tzinfo=UTC)]
    assert [d.due_at for d in dues("quarterly-model-validation")] == quarters
    for name in fixed:
        assert {d.status(clock.now()) for d in dues(name)} == {"on_time"}, name

    # floating: each occurrence is due its interval after the previous completion
    for s, every in ((lens, timedelta(weeks=4)), (plc, timedelta(weeks=13))):
        got = dues(s.name)
        assert got[0].due_at == START + every
        for before, after in itertools.pairwise(got):
            assert before.completed_at is not None
            assert after.due_at == before.completed_at + every
    lens_dues = dues(lens.name)
    # due on day 28, then every 28 + 2 days (done 2 days late, counted from then), shown 3 days early:
    # days 28, 58, ..., 358 come due within the year
    assert len(lens_dues) == 12
    assert all(d.status(clock.now()) in ("on_time", "due", "upcoming") for d in lens_dues)
    assert len(dues(plc.name)) == 4
    # every due occurrence had its work order, and the closed ones are verified
    orders = m.orders.list(source="schedule", limit=10_000)
    total = sum(len(dues(s.name)) for s in m.schedules.schedules())
    assert len(orders) == total
    assert {o.state for o in orders} <= {OrderState.VERIFIED, OrderState.OPEN}


def _window(pitstop: Pitstop, name: str, days: str, start: str, end: str) -> None:
    MuteStore(pitstop.db).add_window(recurring(name, {"asset": "*"}, days=days, start=start, end=end), now=START)


def _tick_until(pitstop: Pitstop, clock: FrozenClock, until: datetime, step: timedelta = timedelta(hours=6)) -> None:
    while clock.now() + step <= until:
        clock.advance(step)
        pitstop.maintenance.tick()


@pytest.mark.parametrize(
    ("fallback", "limit", "deadlines", "missed"),
    [
        # first Saturday shift after the 1st of February, then the next Saturday, then missed
        ("next", 1, ["2026-02-07T12:00", "2026-02-14T12:00"], True),
        ("next", 2, ["2026-02-07T12:00", "2026-02-14T12:00", "2026-02-21T12:00"], True),
        # falls back to the Sunday shift after the missed Saturday
        ("window:sunday", 1, ["2026-02-07T12:00", "2026-02-08T18:00"], True),
        ("missed", 1, ["2026-02-07T12:00"], True),
    ],
)
def test_a_missed_window_falls_back_as_configured(
    plant: tuple[Pitstop, FrozenClock], fallback: str, limit: int, deadlines: list[str], missed: bool
) -> None:
    pitstop, clock = plant
    m = pitstop.maintenance
    _window(pitstop, "saturday", "sat", "06:00", "12:00")
    _window(pitstop, "sunday", "sun", "14:00", "18:00")
    m.capacities.set("saturday", 8, fallback=fallback, max_fallbacks=limit)
    m.capacities.set("sunday", 4)
    s = m.schedules.add(
        "audit-pump", "monthly-audit", "calendar", {"cron": "0 9 1 * *", "window": "saturday"}, asset="pump-7"
    )
    seen: list[datetime] = []
    for _ in range(480):
        clock.advance(timedelta(hours=3))
        m.tick()
        due = m.schedules.dues(s.id)
        if due and due[0].deadline not in seen:
            seen.append(due[0].deadline)
        if due and due[0].state == "missed":
            break
    assert seen == [datetime.fromisoformat(d).replace(tzinfo=UTC) for d in deadlines]
    first = m.schedules.dues(s.id)[0]
    assert first.state == "missed" and first.fallbacks == len(deadlines) - 1
    log = [e.result for e in m.log.entries(asset="pump-7", kind="note")]
    assert log.count("fallback") == len(deadlines) - 1 and log.count("missed") == 1
    assert m.orders.get(first.work_order_id or 0).state is OrderState.CANCELLED


def test_done_inside_the_fallback_window_is_late_not_missed(plant: tuple[Pitstop, FrozenClock]) -> None:
    pitstop, clock = plant
    m = pitstop.maintenance
    _window(pitstop, "saturday", "sat", "06:00", "12:00")
    m.capacities.set("saturday", 8, fallback="next", max_fallbacks=1)
    s = m.schedules.add(
        "audit-pump", "monthly-audit", "calendar", {"cron": "0 9 1 * *", "window": "saturday"}, asset="pump-7"
    )
    _tick_until(pitstop, clock, datetime(2026, 2, 12, tzinfo=UTC))
    due = m.schedules.open_due(s.id)
    assert due is not None and due.fallbacks == 1
    _complete_open_orders(pitstop)
    [done] = m.schedules.dues(s.id)
    assert done.status(clock.now()) == "on_time"  # done by the fallback's deadline


def _write(pitstop: Pitstop, sensor: str, points: list[tuple[datetime, float]]) -> None:
    sid = next(x.id for x in pitstop.assets.sensors("pump-7") if x.name == sensor)
    pitstop.readings.write(
        ReadingBatch.of([sid] * len(points), [to_epoch_us(t) for t, _ in points], [v for _, v in points])
    )


def test_a_meter_order_opens_at_the_right_running_hours(plant: tuple[Pitstop, FrozenClock]) -> None:
    pitstop, clock = plant
    m = pitstop.maintenance
    s = m.schedules.add(
        "pump-service", "plc-inspection", "meter", {"sensor": "run_hours", "every": 100, "lead": 10}, asset="pump-7"
    )
    # the pump runs 16 hours a day; its counter is read every hour
    hours = 0.0
    opened_at: list[float] = []
    for h in range(24 * 13):
        t = START + timedelta(hours=h + 1)
        if h % 24 < 16:
            hours += 1
        clock.set(t)
        _write(pitstop, "run_hours", [(t, hours)])
        m.tick()
        due = m.schedules.open_due(s.id)
        if (
            due is not None
            and (not opened_at or opened_at[-1] != hours)
            and len(opened_at) < len(m.schedules.dues(s.id))
        ):
            opened_at.append(hours)
            if len(opened_at) == 1:
                clock.advance(timedelta(minutes=30))
                _complete_open_orders(pitstop)  # serviced at 90 h: the next one opens at 180 h
    assert opened_at == [90.0, 180.0]
    schedule: Schedule = m.schedules.get("pump-service")
    assert schedule.meter_base == 90.0
    [order] = m.orders.list(source="schedule", active=True)
    assert "run_hours at 180" in order.detail and order.asset == "pump-7"


def test_running_hours_are_counted_from_the_on_signal(plant: tuple[Pitstop, FrozenClock]) -> None:
    pitstop, clock = plant
    m = pitstop.maintenance
    s = m.schedules.add(
        "motor-check",
        "plc-inspection",
        "meter",
        {"sensor": "motor_on", "mode": "running", "on_above": 0.5, "every": 100},
        asset="pump-7",
    )
    # on 8 hours a day (08:00-16:00), sampled every 10 minutes; 100 h are reached after 12.5 days
    points = []
    for i in range(6 * 24 * 20):
        t = START + timedelta(minutes=10 * i)
        points.append((t, 1.0 if 8 <= t.hour < 16 else 0.0))
    _write(pitstop, "motor_on", points)
    first_due = None
    for h in range(24 * 20):
        clock.set(START + timedelta(hours=h))
        m.tick()
        if first_due is None and m.schedules.open_due(s.id) is not None:
            first_due = clock.now()
            break
    # day 13 (Jan 17) at 12:00: 12 days x 8 h + 4 h
    assert first_due == datetime(2026, 1, 17, 12, 0, tzinfo=UTC)
    assert m.schedules.meter(s) == pytest.approx(100.0)


def test_compliance_matches_a_hand_count(plant: tuple[Pitstop, FrozenClock]) -> None:
    pitstop, clock = plant
    m = pitstop.maintenance
    weekly = m.schedules.add(
        "pump-weekly", "plc-inspection", "calendar", {"every": "1w", "grace": "2d"}, asset="pump-7"
    )
    m.schedules.add(
        "cam-fortnight", "camera-lens-inspection", "calendar", {"every": "2w", "grace": "1d"}, asset="cam-3"
    )
    # weekly on pump-7: weeks 1-5 on time, 6-7 three days late, 8 never done (missed), 9-10 on time
    # fortnightly on cam-3: occurrences 1 and 3 on time, 2 a day and a half late, 4 missed, 5 on time
    plan_pump = {6: timedelta(days=3), 7: timedelta(days=3), 8: None}
    plan_cam = {2: timedelta(days=1, hours=12), 4: None}
    end = START + timedelta(weeks=10, days=3)
    while clock.now() < end:
        clock.advance(timedelta(hours=12))
        m.tick()
        for s, plan_ in ((weekly, plan_pump), (m.schedules.get("cam-fortnight"), plan_cam)):
            due = m.schedules.open_due(s.id)
            if due is None:
                continue
            n = len(m.schedules.dues(s.id))
            delay = plan_.get(n, timedelta(0))
            if delay is not None and clock.now() >= due.due_at + delay:
                m.schedules.complete(s, at=clock.now(), ref="hand")
    # corrective work: two repairs of 3 h and 5 h, one still open
    for key, hours in (("a", 3), ("b", 5), ("c", None)):
        order, _ = m.orders.open_for("manual", "pump-7", f"repair.{key}", title=f"repair {key}", estimated_h=2)
        if hours is not None:
            clock.advance(timedelta(hours=hours))
            m.orders.close(order.id, actor="tech")
            m.orders.verify(order.id, actor="lead", confirmed=True)
    report = m.compliance(since=START, until=end)
    by_name = {c["schedule"]: c for c in report["schedules"]}
    assert {k: by_name["pump-weekly"][k] for k in ("on_time", "late", "missed")} == {
        "on_time": 7,
        "late": 2,
        "missed": 1,
    }
    assert by_name["pump-weekly"]["compliance_pct"] == 70.0
    assert {k: by_name["cam-fortnight"][k] for k in ("on_time", "late", "missed")} == {
        "on_time": 3,
        "late": 1,
        "missed": 1,
    }
    assert report["sites"]["plant"]["compliance_pct"] == 70.0
    assert report["sites"]["annex"]["compliance_pct"] == 60.0
    assert report["total"]["on_time"] == 10 and report["total"]["compliance_pct"] == round(100 * 10 / 15, 1)
    only_annex = m.compliance(since=START, until=end, site="annex")
    assert [c["schedule"] for c in only_annex["schedules"]] == ["cam-fortnight"]
    k = m.kpis(since=START, until=clock.now() + timedelta(seconds=1))
    assert k["mttr_h"] == 4.0 and k["repairs"] == 2 and k["failures"] == 3
    assert k["backlog"]["orders"] >= 1
    assert k["self_healing"] == {"healed": 0, "failed": 0, "success_pct": None}


def test_self_healing_success_rate_is_read_from_the_remediation_record(plant: tuple[Pitstop, FrozenClock]) -> None:
    from sqlalchemy import insert

    from pitstop.storage.schema import remediations

    pitstop, clock = plant
    now = clock.now()
    rows = [("healed", now), ("healed", now), ("healed", now), ("failed", now), ("awaiting_approval", None)]
    with pitstop.db.begin() as conn:
        for i, (state, finished) in enumerate(rows):
            conn.execute(
                insert(remediations).values(
                    incident_id=i + 1,
                    incident_key=f"service.down:svc-{i}",
                    incident_opened_at=now,
                    action="restart_service",
                    target=f"svc-{i}",
                    rule="service.down",
                    state=state,
                    created_at=now,
                    updated_at=now,
                    finished_at=finished,
                )
            )
    k = pitstop.maintenance.kpis(since=now - timedelta(days=1), until=now + timedelta(days=1))
    assert k["self_healing"] == {"healed": 3, "failed": 1, "success_pct": 75.0}
