"""A PostgreSQL table bloated with dead tuples in a scratch database of the test's own: the
postgres check flags it; VACUUM waits outside a maintenance window and runs inside one."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from pitstop.incidents import IncidentState
from pitstop.incidents.windows import MuteStore, Window
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import scratch_postgres_database
from tests.faults.conftest import make_pitstop, wait_for

pytestmark = pytest.mark.postgres


def dead(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'readings_raw'").fetchone()
    return int(row[0]) if row else 0


def test_bloated_table_is_vacuumed_inside_a_window_not_outside(
    sandbox: Path, clock: FrozenClock, record: Callable[..., None]
) -> None:
    with scratch_postgres_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE readings_raw (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = false)")
            conn.execute("INSERT INTO readings_raw SELECT g, repeat('x', 50) FROM generate_series(1, 20000) g")
            conn.execute("DELETE FROM readings_raw WHERE id % 10 < 3")  # 30 % dead: a warning, not critical
        assert wait_for(lambda: dead(url) == 6000), dead(url)  # statistics arrive asynchronously
        settings = {
            "health": {
                "default_checks": False,
                "checks": [{"check": "postgres", "target": "scratch", "secrets": {"url": url}}],
            },
            "remediation": {
                "verify_timeout_s": 5.0,
                "verify_interval_s": 0.1,
                "rules": [
                    {"match": "postgres.unhealthy:*", "action": "vacuum_database", "params": {"url": url}},
                ],
            },
        }
        pitstop = make_pitstop(sandbox, clock, **settings)
        try:
            pitstop.health.run_round()
            [incident] = pitstop.incidents.list(state=IncidentState.OPEN)
            assert incident.key == "postgres.unhealthy:scratch" and incident.severity.value == "warning"
            [preview] = pitstop.remediation.preview()
            assert preview.decision == "wait" and "maintenance window" in preview.reason
            assert preview.plan is not None and preview.plan.steps == ("VACUUM (ANALYZE) readings_raw",)
            for _ in range(3):  # outside a window: nothing happens, nothing is recorded
                assert pitstop.remediation.run_pass() == []
                clock.advance(60)
            assert dead(url) == 6000 and pitstop.remediation.store.list() == []

            now = clock.now()
            window = Window(
                "nightly",
                {"check": "postgres"},
                "once",
                timedelta(hours=1),
                starts_at=now,
                ends_at=now + timedelta(hours=1),
            )
            MuteStore(pitstop.db).add_window(window, now=now)
            start = time.perf_counter()
            [rid] = pitstop.remediation.run_pass()
            took = time.perf_counter() - start
            done = pitstop.remediation.store.get(rid)
            assert done.state == "healed", done.result
            assert dead(url) == 0
            assert pitstop.incidents.get(incident.id).state is IncidentState.RESOLVED
            applied = next(s for s in pitstop.remediation.store.steps(rid) if s.step == "applied")
            assert "VACUUM (ANALYZE) readings_raw" in applied.output
            record(fault="postgres table bloated", expected="heal", outcome=done.state, seconds=round(took, 3))
        finally:
            pitstop.close()
