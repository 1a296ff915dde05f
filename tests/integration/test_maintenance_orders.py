"""Work orders and procedure runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pitstop.app import Pitstop
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput
from pitstop.incidents.windows import MuteStore, recurring
from pitstop.maintenance import Answer, OrderState
from pitstop.testing.clock import FrozenClock

CHECKLIST = """
name = "pump-round"
title = "Pump round"
estimated_hours = 1.0

[[steps]]
id = "bearing-temp"
kind = "manual"
title = "Bearing temperature"
instruction = "Read the bearing temperature with the IR thermometer."
max = 70
unit = "°C"
estimated_h = 2.0

[[steps]]
id = "seal"
kind = "manual"
title = "Seal dry"
instruction = "Look for leaks at the mechanical seal."
expected = "dry"
attachment = true

[[steps]]
id = "echo"
kind = "command"
title = "Say hello"
command = ["python3", "-c", "print('hello from {asset}')"]
timeout_s = 20
"""


@pytest.fixture
def mnt(demo_pitstop: Pitstop) -> Pitstop:
    user = demo_pitstop.settings.data_dir / "procedures"
    user.mkdir(parents=True, exist_ok=True)
    (user / "pump-round.toml").write_text(CHECKLIST)
    return demo_pitstop


def test_duplicate_requests_update_the_open_order(mnt: Pitstop) -> None:
    orders = mnt.maintenance.orders
    first, created = orders.open_for(
        "incident", "pump-1", "asset.anomaly:pump-1", title="Pump vibration", severity=Severity.WARNING
    )
    assert created and first.state is OrderState.OPEN
    second, created = orders.open_for(
        "incident", "pump-1", "asset.anomaly:pump-1", title="Pump vibration rising", severity=Severity.CRITICAL
    )
    assert not created and second.id == first.id
    assert second.updates == 1 and second.title == "Pump vibration rising"
    assert second.severity is Severity.CRITICAL and second.priority > first.priority
    assert len(orders.list(active=True)) == 1
    other, created = orders.open_for("incident", "fan-1", "asset.anomaly:fan-1", title="Fan")
    assert created and other.id != first.id


def test_duplicate_incidents_update_the_open_order(mnt: Pitstop, clock: FrozenClock) -> None:
    m = mnt.maintenance
    m.schedules.add("vibration", "pump-round", "condition", {"pattern": "asset.anomaly:*"})
    mnt.incidents.open_or_update("asset.anomaly:pump-1", severity=Severity.WARNING, title="vibration up")
    m.tick()
    mnt.incidents.resolve("asset.anomaly:pump-1", reason="cleared", actor="test")
    clock.advance(timedelta(hours=1))
    mnt.incidents.open_or_update("asset.anomaly:pump-1", severity=Severity.CRITICAL, title="vibration again")
    m.tick()
    m.tick()
    orders = m.orders.list(asset="pump-1")
    assert len(orders) == 1
    assert orders[0].updates >= 1 and orders[0].severity is Severity.CRITICAL
    assert orders[0].incident_id == mnt.incidents.get("asset.anomaly:pump-1").id


def test_priority_is_criticality_times_severity(mnt: Pitstop) -> None:
    crit = {a.name: a.criticality for a in mnt.assets.list_assets()}
    order, _ = mnt.maintenance.orders.open_for("manual", "pump-1", "note.x", title="x", severity=Severity.CRITICAL)
    assert order.priority == crit["pump-1"] * 3


def test_a_failed_checklist_item_opens_exactly_one_order(mnt: Pitstop, clock: FrozenClock) -> None:
    m = mnt.maintenance
    run = m.runner.start("pump-round", actor="tom", asset="pump-1", answers={"bearing-temp": Answer(value=82.5)})
    assert run.state == "running"
    assert [s.status for s in run.steps] == ["failed", "pending", "passed"]
    assert "hello from pump-1" in run.steps[2].output
    run = m.runner.answer(run.id, "seal", Answer(value="dry", attachment="photos/seal.jpg"), actor="tom")
    assert run.state == "failed"
    orders = m.orders.list(source="procedure")
    assert len(orders) == 1
    assert orders[0].key == "procedure.pump-round.bearing-temp" and orders[0].run_id == run.id
    assert orders[0].estimated_h == 2.0 and "82.5" in orders[0].detail
    # the same item failing again on the next round updates that order
    clock.advance(timedelta(days=1))
    m.runner.start(
        "pump-round",
        actor="ann",
        asset="pump-1",
        answers={"bearing-temp": Answer(value=75), "seal": Answer(passed=True)},
    )
    assert len(m.orders.list(source="procedure")) == 1
    entries = m.log.entries(asset="pump-1", kind="procedure_run")
    assert len(entries) == 2 and entries[0].evidence == ["photos/seal.jpg"]


def test_a_run_records_the_version_it_ran(mnt: Pitstop) -> None:
    m = mnt.maintenance
    answers = {"bearing-temp": Answer(value=50), "seal": Answer(passed=True)}
    first = m.runner.start("pump-round", actor="tom", asset="pump-1", answers=answers)
    path = mnt.settings.data_dir / "procedures" / "pump-round.toml"
    path.write_text(CHECKLIST.replace("Pump round", "Pump round (revised)"))
    second = m.runner.start("pump-round", actor="tom", asset="pump-1", answers=answers)
    again = m.runner.start("pump-round", actor="tom", asset="pump-1", answers=answers)
    assert (first.version, second.version, again.version) == (1, 2, 2)
    assert first.content_hash != second.content_hash
    assert m.runner.procedure_of(first).title == "Pump round"
    assert [v["version"] for v in m.runner.versions("pump-round")] == [1, 2]


def test_manual_answers_are_checked(mnt: Pitstop) -> None:
    m = mnt.maintenance
    with pytest.raises(InvalidInput, match="say whether it passed"):
        m.runner.start("pump-round", actor="tom", answers={"seal": Answer(value="")})
    with pytest.raises(InvalidInput, match="not a manual"):
        m.runner.start("pump-round", actor="tom", answers={"echo": Answer(passed=True)})
    with pytest.raises(InvalidInput, match="takes no attachment"):
        m.runner.start("pump-round", actor="tom", answers={"bearing-temp": Answer(value=1, attachment="x.jpg")})


def test_closing_reruns_the_condition(mnt: Pitstop, clock: FrozenClock) -> None:
    m = mnt.maintenance
    incident, _ = mnt.incidents.open_or_update("disk.low:/data", severity=Severity.CRITICAL, title="disk low")
    order, _ = m.orders.open_for("incident", "", incident.key, title="free disk", incident_id=incident.id)
    m.orders.start(order.id, actor="tom")
    clock.advance(timedelta(hours=2))
    reopened = m.orders.close(order.id, actor="tom", actual_h=1.5, parts=["cleaning cloth"])
    assert reopened.state is OrderState.IN_PROGRESS  # the incident is still open
    mnt.incidents.resolve(incident.key, reason="space freed", actor="health")
    verified = m.orders.close(order.id, actor="tom", actual_h=2.0)
    assert verified.state is OrderState.VERIFIED and verified.verified_at is not None
    assert verified.parts == [] and verified.actual_h == 2.0
    results = [e.result for e in m.log.entries(kind="work_order")]
    assert results == ["opened", "started", "done", "reopened", "done", "verified"]
    # a verified order is history: the next request opens a new one
    again, created = m.orders.open_for("incident", "", incident.key, title="free disk")
    assert created and again.id != order.id


def test_orders_without_a_verifier_wait_for_a_person(mnt: Pitstop) -> None:
    orders = mnt.maintenance.orders
    order, _ = orders.open_for("manual", "fan-1", "inspect.belt", title="Check the belt")
    done = orders.close(order.id, actor="tom")
    assert done.state is OrderState.DONE
    assert orders.verify(order.id, actor="lead", confirmed=True).state is OrderState.VERIFIED
    with pytest.raises(InvalidInput):
        orders.start(order.id, actor="tom")


def test_planning_places_orders_into_window_capacity(mnt: Pitstop, clock: FrozenClock) -> None:
    m = mnt.maintenance
    MuteStore(mnt.db).add_window(
        recurring("sunday-shift", {"site": "*"}, days="sun", start="06:00", end="14:00"), now=clock.now()
    )
    m.capacities.set("sunday-shift", 5.0)
    for i, hours in enumerate([3.0, 3.0, 2.0, 9.0]):
        m.orders.open_for("manual", "pump-1", f"task.{i}", title=f"task {i}", estimated_h=hours)
    result = m.planner.plan(timedelta(days=14))
    assert len(result.slots) == 2
    assert all(used <= s.capacity_h for s, used in zip(result.slots, result.used_h, strict=True))
    assert len(result.placements) == 3
    [unplaced] = result.unplaced
    assert "largest window" in unplaced.reason
    states = {o.key: o.state for o in m.orders.list()}
    assert states["task.3"] is OrderState.OPEN
    assert sum(s is OrderState.PLANNED for s in states.values()) == 3


def test_the_log_filters_and_exports(mnt: Pitstop, clock: FrozenClock, tmp_path: Path) -> None:
    log = mnt.maintenance.log
    log.append("backup", "nightly backup", actor="backup", result="ok", evidence=["backups/2026-01-05"])
    clock.advance(timedelta(hours=1))
    log.append("remediation", "restarted vms", actor="self-healing", asset="vms-server", result="verified")
    assert [e.kind for e in log.entries(asset="vms-server")] == ["remediation"]
    assert log.entries(asset="vms-server")[0].site != ""
    assert len(log.entries(since=clock.now())) == 1
    from pitstop.maintenance.log import export

    csv_text = export(log.entries(), "csv")
    assert csv_text.splitlines()[0].startswith("id,at,kind") and "restarted vms" in csv_text
    with pytest.raises(InvalidInput):
        log.append("gossip", "x", actor="y")


def test_disruptive_steps_wait_for_a_maintenance_window(mnt: Pitstop, clock: FrozenClock) -> None:
    user = mnt.settings.data_dir / "procedures"
    (user / "restart-vms.yaml").write_text(
        """
name: restart-vms
title: Restart the recorder
steps:
  - id: restart
    kind: command
    title: Restart
    command: ["python3", "-c", "print('restarted')"]
    disruptive: true
"""
    )
    m = mnt.maintenance
    outside = m.runner.start("restart-vms", actor="tom", asset="vms-server")
    assert outside.steps[0].status == "skipped" and "waits for a maintenance window" in outside.steps[0].output
    MuteStore(mnt.db).add_window(
        recurring("plant-night", {"site": "north-plant"}, days="daily", start="07:00", end="09:00"), now=clock.now()
    )
    inside = m.runner.start("restart-vms", actor="tom", asset="vms-server")  # the clock is at 08:00
    assert inside.steps[0].status == "passed" and "restarted" in inside.steps[0].output


def test_a_failing_close_hook_does_not_fail_a_committed_close(mnt: Pitstop, caplog: pytest.LogCaptureFixture) -> None:
    orders = mnt.maintenance.orders

    def broken(order: object) -> None:
        raise RuntimeError("hook went wrong")

    orders.on_done.append(broken)
    order, _ = orders.open_for("manual", "fan-1", "inspect.belt", title="Check the belt")
    with caplog.at_level("ERROR", logger="pitstop.maintenance"):
        closed = orders.close(order.id, actor="tom", failure_code="no_fault")
    assert closed.state is OrderState.DONE and closed.failure_code == "no_fault"
    assert orders.get(order.id).closed_at is not None
    assert any("hook on closing work order" in r.message for r in caplog.records)
    with pytest.raises(InvalidInput, match="failure code"):
        orders.close(orders.open_for("manual", "fan-1", "x", title="x")[0].id, actor="tom", failure_code="failed\n")
