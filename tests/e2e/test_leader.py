"""Two `pitstop serve` processes on one PostgreSQL database: one runs the jobs; the other takes over."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pitstop.storage import Database
from pitstop.storage.repos.jobs import JobRepo
from tests.e2e.test_demo import free_port


def _wait(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def served(pg_url: str, tmp_path: Path) -> Iterator[tuple[Database, list[subprocess.Popen[str]]]]:
    db = Database(pg_url)
    db.upgrade()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PITSTOP_")}
    env.update(PITSTOP_DATABASE_URL=pg_url, PITSTOP_SCHEDULER__TICK_SECONDS="0.2", PITSTOP_SCHEDULER__LEASE_SECONDS="2")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pitstop", "serve", "--port", str(free_port())],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        yield db, procs
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
        db.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_one_leader_and_failover(served: tuple[Database, list[subprocess.Popen[str]]]) -> None:
    db, procs = served
    jobs = JobRepo(db)
    _wait(lambda: jobs.recent("heartbeat"))
    time.sleep(3)  # both processes have ticked many times by now
    leaders = {r.instance for r in jobs.recent("heartbeat")}
    assert len(leaders) == 1, f"more than one instance ran jobs: {leaders}"
    # stop the leader; the other takes the lease once it expires and runs the due job at once
    leader_pid = int(next(iter(leaders)).split(":")[1])
    victim = next(p for p in procs if p.pid == leader_pid)
    victim.kill()
    victim.wait(timeout=10)
    _wait(lambda: len({r.instance for r in jobs.recent("heartbeat")}) == 2, timeout=30)
    survivor = next(p for p in procs if p is not victim)
    assert survivor.poll() is None
