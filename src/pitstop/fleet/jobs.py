"""Per-asset jobs: what the scheduler publishes and a worker runs, and the record of finished ones."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from pitstop.core.types import from_epoch_us, to_epoch_us
from pitstop.storage.engine import Database
from pitstop.storage.schema import fleet_job_runs

# kind -> what runs one asset's job up to `until` (an idempotent effect: run twice, it changes nothing more)
Handler = Callable[[str, datetime], object]
KEEP_RUNS = timedelta(days=2)  # longer than any redelivery: the record answers "was this job done?"


def partition_of(asset: str, partitions: int) -> int:
    """The partition an asset's jobs go to: a stable hash, the same on every machine and Python."""
    return zlib.crc32(asset.encode("utf-8")) % partitions


@dataclass(frozen=True, slots=True)
class AssetJob:
    kind: str
    asset: str
    until: datetime

    @property
    def id(self) -> str:
        """The job's identity: JetStream drops a second publish of it, the run record keeps it once."""
        return f"{self.kind}:{self.asset}:{to_epoch_us(self.until)}"

    def encode(self) -> bytes:
        return json.dumps({"kind": self.kind, "asset": self.asset, "until_us": to_epoch_us(self.until)}).encode()

    @classmethod
    def decode(cls, data: bytes) -> AssetJob:
        """The job in a message; ValueError when the message is not one."""
        try:
            body = json.loads(data)
            kind, asset, until = body["kind"], body["asset"], body["until_us"]
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a pitstop job: {exc}") from None
        if not (isinstance(kind, str) and isinstance(asset, str) and isinstance(until, int)) or not kind or not asset:
            raise ValueError("not a pitstop job: kind, asset and until_us must be given")
        return cls(kind, asset, from_epoch_us(until))


class JobRuns:
    """`fleet_job_runs`: one row per finished job id, so a job handed out again after it finished is
    acknowledged without running (and the cluster test can count that nothing was lost)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def done(self, job_id: str) -> bool:
        with self.db.connect() as conn:
            return conn.execute(select(fleet_job_runs.c.id).where(fleet_job_runs.c.id == job_id)).first() is not None

    def record(self, job: AssetJob, *, worker: str, deliveries: int, started: datetime, finished: datetime) -> bool:
        """Record a finished job; False when another worker recorded it first."""
        values = {
            "id": job.id,
            "kind": job.kind,
            "asset": job.asset,
            "until_at": job.until,
            "worker": worker,
            "deliveries": deliveries,
            "started_at": started,
            "finished_at": finished,
        }
        try:
            with self.db.begin() as conn:
                conn.execute(insert(fleet_job_runs).values(**values))
        except IntegrityError:
            return False
        return True

    def count(self, kind: str | None = None) -> int:
        query = select(func.count()).select_from(fleet_job_runs)
        if kind is not None:
            query = query.where(fleet_job_runs.c.kind == kind)
        with self.db.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def prune(self, now: datetime) -> int:
        """Forget runs older than KEEP_RUNS (the scheduler's `fleet-runs` job)."""
        with self.db.begin() as conn:
            return conn.execute(delete(fleet_job_runs).where(fleet_job_runs.c.finished_at < now - KEEP_RUNS)).rowcount
