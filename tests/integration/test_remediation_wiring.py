"""Remediation as built by `build()`: the scheduler job, escalation to a work order, the log channel."""

from __future__ import annotations

import sys
from pathlib import Path

from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Severity
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock


def test_the_scheduler_drives_passes_and_a_spent_budget_opens_one_work_order(
    db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        health={"default_checks": False},
        remediation={
            "interval_s": 60,
            "verify_timeout_s": 0.01,
            "escalate_to": "work_order",
            "rules": [
                {
                    "match": "service.down:*",
                    "action": "restart_service",
                    "params": {"manager": "script", "command": [sys.executable, "-c", "pass"], "grace_s": 0},
                    "max_attempts": 2,
                    "cooldown_s": 0,
                }
            ],
        },
    )
    pitstop = build(settings, clock=clock, db=db)
    incident, _ = pitstop.incidents.open_or_update(
        "service.down:recorder", severity=Severity.WARNING, title="recorder down", source="check:process"
    )
    for _ in range(4):
        assert "remediation" in pitstop.scheduler.tick()
        clock.advance(61)
    rows = pitstop.remediation.store.for_incident(incident.id)
    # no check of that target is configured and restart_service cannot see the service: unverified is failed
    assert [r.state for r in rows] == ["failed", "failed"]
    assert "nothing can verify" in rows[0].result
    [order] = pitstop.maintenance.orders.list(source="remediation")
    assert order.key == incident.key and order.incident_id == incident.id and "tried 2 time(s)" in order.detail
    [entry, _] = pitstop.maintenance.log.entries(kind="remediation")
    assert entry.result == "failed"


def test_without_rules_no_job_is_scheduled(db: Database, clock: FrozenClock, tmp_path: Path) -> None:
    pitstop = build(Settings(data_dir=tmp_path), clock=clock, db=db)
    assert "remediation" not in pitstop.scheduler.jobs
