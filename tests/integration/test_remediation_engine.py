"""The engine's guards and record on real databases, with a FrozenClock; commands are real processes."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pitstop.config.remediation import CommandSettings, RemediationSettings, RuleSettings
from pitstop.core.types import Severity
from pitstop.incidents import Incident, IncidentRegistry, IncidentState
from pitstop.incidents.windows import MuteStore, Window
from pitstop.remediation import RemediationEngine
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock

KEY = "service.down:worker"


class World:
    """A real marker file the configured command writes, and a verifier reading a real flag file."""

    def __init__(self, tmp_path: Path) -> None:
        self.marker = tmp_path / "applied.txt"
        self.healthy = tmp_path / "healthy"
        self.escalations: list[tuple[str, str, str]] = []

    def verify(self, incident: Incident) -> tuple[bool, str]:
        ok = self.healthy.exists()
        return ok, "worker healthy" if ok else "worker still down"

    def escalate(self, to: str, incident: Incident, title: str, body: str) -> tuple[bool, str]:
        self.escalations.append((to, title, body))
        return True, "sent"


def engine(db: Database, clock: FrozenClock, world: World, **rule: Any) -> RemediationEngine:
    touch = [sys.executable, "-c", f"open({str(world.marker)!r}, 'a').write('x')"]
    settings = RemediationSettings(
        rules=[
            RuleSettings(**{"match": "service.down:*", "action": "run_command", "params": {"command": "fix"}, **rule})
        ],
        commands={"fix": CommandSettings(argv=touch, destructive=False)},
        verify_timeout_s=0.01,
        verify_interval_s=0.001,
    )
    return RemediationEngine(
        settings,
        clock=clock,
        db=db,
        incidents=IncidentRegistry(db, clock),
        verifier=world.verify,
        escalate=world.escalate,
        sleep=lambda s: None,
    )


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def open_incident(e: RemediationEngine, severity: Severity = Severity.WARNING) -> Incident:
    return e.incidents.open_or_update(KEY, severity=severity, title="worker down", source="check:process")[0]


def test_heals_verifies_resolves_and_records_every_step(db: Database, clock: FrozenClock, world: World) -> None:
    e = engine(db, clock, world)
    incident = open_incident(e)
    world.healthy.touch()
    [rid] = e.run_pass()
    r = e.store.get(rid)
    assert r.state == "healed" and world.marker.exists()
    assert [s.step for s in e.store.steps(rid)] == ["seen", "planned", "applied", "verified", "resolved"]
    assert e.incidents.get(incident.id).state is IncidentState.RESOLVED
    kpis = e.kpis()
    assert kpis["by_action"]["run_command"]["success_rate"] == 1.0
    assert kpis["by_target"]["worker"]["healed"] == 1


def test_budget_spent_escalates_once_and_the_breaker_holds_until_reset(
    db: Database, clock: FrozenClock, world: World
) -> None:
    e = engine(db, clock, world, max_attempts=2, cooldown_s=60)
    open_incident(e)
    assert len(e.run_pass()) == 1
    assert e.run_pass() == []  # cooling down
    clock.advance(61)
    [second] = e.run_pass()
    assert e.store.get(second).state == "failed"
    assert len(world.escalations) == 1 and "tried 2 time(s)" in world.escalations[0][2]
    assert "escalated" in [s.step for s in e.store.steps(second)]
    for _ in range(3):
        clock.advance(3600)
        assert e.run_pass() == []
    assert len(world.escalations) == 1
    assert [p.decision for p in e.preview()] == ["blocked"]
    [closed] = e.reset("worker", actor="test")
    assert closed.action == "run_command"
    world.healthy.touch()
    [third] = e.run_pass()
    assert e.store.get(third).state == "healed"


def test_destructive_waits_for_approval_and_rejection_is_final(db: Database, clock: FrozenClock, world: World) -> None:
    e = engine(db, clock, world, approval=True)
    open_incident(e)
    [rid] = e.run_pass()
    assert e.store.get(rid).state == "awaiting_approval" and not world.marker.exists()
    assert e.run_pass() == [] and not world.marker.exists()
    e.approve(rid, actor="op")
    world.healthy.touch()
    assert e.run_pass() == [rid]
    assert e.store.get(rid).state == "healed" and world.marker.exists()

    world.marker.unlink()
    clock.advance(3600)
    open_incident(e)
    [again] = e.run_pass()
    e.reject(again, actor="op", reason="not now")
    assert e.run_pass() == [] and not world.marker.exists()


def test_dry_run_plans_once_and_applies_nothing(db: Database, clock: FrozenClock, world: World) -> None:
    e = engine(db, clock, world)
    e.settings = e.settings.model_copy(update={"dry_run": True})
    open_incident(e)
    [rid] = e.run_pass()
    assert e.store.get(rid).state == "dry_run" and e.run_pass() == []
    assert not world.marker.exists()


def test_waits_for_a_maintenance_window_unless_critical(db: Database, clock: FrozenClock, world: World) -> None:
    e = engine(db, clock, world, wait_for_window=True)
    open_incident(e)
    assert e.run_pass() == [] and not world.marker.exists()
    assert e.preview()[0].reason == "waiting for a maintenance window"
    now = clock.now()
    MuteStore(db).add_window(
        Window(
            "night",
            {"action": "run_command"},
            "once",
            timedelta(hours=1),
            starts_at=now,
            ends_at=now + timedelta(hours=1),
        ),
        now=now,
    )
    world.healthy.touch()
    assert len(e.run_pass()) == 1 and world.marker.exists()


def test_a_critical_incident_does_not_wait_for_a_window(db: Database, clock: FrozenClock, world: World) -> None:
    e = engine(db, clock, world, wait_for_window=True)
    open_incident(e, Severity.CRITICAL)
    world.healthy.touch()
    [rid] = e.run_pass()
    assert e.store.get(rid).state == "healed"


def test_preview_writes_nothing(db: Database, clock: FrozenClock, world: World) -> None:
    e = engine(db, clock, world)
    open_incident(e)
    [p] = e.preview()
    assert p.decision == "apply" and p.plan is not None and e.store.list() == []
    assert not world.marker.exists()
