"""Scheduler bookkeeping: job runs and the leadership lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pitstop.core.types import EPOCH, JobOutcome
from pitstop.storage.engine import Database
from pitstop.storage.schema import job_runs, scheduler_leases


@dataclass(frozen=True, slots=True)
class JobRun:
    id: int
    job: str
    instance: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: str | None


class JobRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, job: str, instance: str, now: datetime) -> int:
        with self.db.begin() as conn:
            key = conn.execute(insert(job_runs).values(job=job, instance=instance, started_at=now)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def finish(self, run_id: int, outcome: JobOutcome, now: datetime, error: str | None = None) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(job_runs)
                .where(job_runs.c.id == run_id)
                .values(finished_at=now, outcome=outcome.value, error=error)
            )

    def recent(self, job: str | None = None, limit: int = 50) -> list[JobRun]:
        query = select(job_runs).order_by(job_runs.c.id.desc()).limit(limit)
        if job is not None:
            query = query.where(job_runs.c.job == job)
        with self.db.connect() as conn:
            return [JobRun(**r._mapping) for r in conn.execute(query)]

    def last_finished(self, job: str) -> JobRun | None:
        query = (
            select(job_runs)
            .where(job_runs.c.job == job, job_runs.c.finished_at.is_not(None))
            .order_by(job_runs.c.id.desc())
            .limit(1)
        )
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        return JobRun(**row._mapping) if row else None

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease; True when `holder` leads until now + ttl."""
        expires = now + ttl
        with self.db.begin() as conn:
            taken = conn.execute(
                update(scheduler_leases)
                .where(
                    scheduler_leases.c.name == name,
                    or_(scheduler_leases.c.holder == holder, scheduler_leases.c.expires_at < now),
                )
                .values(holder=holder, expires_at=expires)
            ).rowcount
            if taken:
                return True
            exists = conn.execute(select(scheduler_leases.c.name).where(scheduler_leases.c.name == name)).first()
            if exists:
                return False
            try:
                with conn.begin_nested():
                    conn.execute(insert(scheduler_leases).values(name=name, holder=holder, expires_at=expires))
            except IntegrityError:
                return False  # another instance inserted it first
            return True

    def leases(self, prefix: str, now: datetime) -> dict[str, str]:
        """The leases whose name starts with `prefix` and that have not expired: name -> holder."""
        query = select(scheduler_leases.c.name, scheduler_leases.c.holder).where(
            scheduler_leases.c.name.startswith(prefix, autoescape=True), scheduler_leases.c.expires_at >= now
        )
        with self.db.connect() as conn:
            return {name: holder for name, holder in conn.execute(query)}

    def release_lease(self, name: str, holder: str) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(scheduler_leases)
                .where(scheduler_leases.c.name == name, scheduler_leases.c.holder == holder)
                .values(expires_at=EPOCH)
            )
