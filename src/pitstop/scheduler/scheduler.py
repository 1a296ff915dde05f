"""The scheduler: `tick()` runs the jobs that are due at `clock.now()`.

Time comes only from the clock, so tests drive a year of schedules with a FrozenClock in
milliseconds. When several pitstop processes share one PostgreSQL database, a lease row
decides which one runs jobs; the others tick idly and take over when the lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pitstop.background import SupervisedThread, Supervisor
from pitstop.core.clock import Clock
from pitstop.core.types import JobOutcome
from pitstop.storage.repos.jobs import JobRepo

log = logging.getLogger("pitstop.scheduler")
LEASE = "scheduler"


@dataclass
class Job:
    name: str
    every: timedelta
    func: Callable[[datetime], object]
    next_due: datetime | None = None  # None: due at the first tick


class Scheduler:
    def __init__(self, jobs: JobRepo, clock: Clock, *, lease_ttl: timedelta, instance: str | None = None) -> None:
        self.repo = jobs
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.jobs: dict[str, Job] = {}
        self.is_leader = False

    def add(self, name: str, every: timedelta, func: Callable[[datetime], object]) -> None:
        if name in self.jobs:
            raise ValueError(f"job {name!r} is already scheduled")
        self.jobs[name] = Job(name, every, func)

    def tick(self) -> list[str]:
        """Run every due job once, if this instance leads. Returns the names of the jobs run."""
        now = self.clock.now()
        self.is_leader = self.repo.acquire_lease(LEASE, self.instance, now, self.lease_ttl)
        if not self.is_leader:
            return []
        ran: list[str] = []
        for job in self.jobs.values():
            if job.next_due is not None and now < job.next_due:
                continue
            if ran and not self._renew():
                break  # a long job outlasted the lease and another instance leads now
            self._run(job, now)
            job.next_due = now + job.every
            ran.append(job.name)
        return ran

    def _run(self, job: Job, now: datetime) -> None:
        run_id = self.repo.start(job.name, self.instance, now)
        try:
            job.func(now)
        except Exception as exc:  # a failing job is recorded, and the others still run
            log.exception("job %s failed", job.name)
            self.repo.finish(run_id, JobOutcome.FAILED, self.clock.now(), error=f"{type(exc).__name__}: {exc}")
        else:
            self.repo.finish(run_id, JobOutcome.OK, self.clock.now())

    def _renew(self) -> bool:
        self.is_leader = self.repo.acquire_lease(LEASE, self.instance, self.clock.now(), self.lease_ttl)
        return self.is_leader

    def keep_lease(self) -> None:
        """Renew the lease while leading, so that a long job does not hand leadership away."""
        if self.is_leader:
            self._renew()

    def release(self) -> None:
        if self.is_leader:
            self.repo.release_lease(LEASE, self.instance)
            self.is_leader = False


class SchedulerRunner:
    """The scheduler as a background part of `pitstop serve`: it ticks on one supervised thread and
    renews its lease on another (every third of the lease), so that a long job does not hand the
    lease away; on stop the lease is released for a standby to take over at once."""

    name = "scheduler"

    def __init__(self, scheduler: Scheduler, supervisor: Supervisor, *, tick_seconds: float) -> None:
        self.scheduler = scheduler
        self.supervisor = supervisor
        self.tick_seconds = tick_seconds
        self._threads: list[SupervisedThread] = []

    def start(self) -> None:
        lease_every = self.scheduler.lease_ttl.total_seconds() / 3
        self._threads = [
            self.supervisor.thread("scheduler", self.scheduler.tick, every_s=self.tick_seconds),
            self.supervisor.thread("scheduler-lease", self.scheduler.keep_lease, every_s=lease_every),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for thread in self._threads:
            thread.stop()
        try:
            self.scheduler.release()
        except Exception:
            log.warning("could not release the scheduler lease; it expires by itself", exc_info=True)
