"""The record of backup work: one `backup_runs` row per backup, verify, drill, restore and prune."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from pitstop.core.types import Severity
from pitstop.incidents import IncidentRegistry
from pitstop.storage.engine import Database
from pitstop.storage.schema import backup_runs

log = logging.getLogger("pitstop.backup")


@dataclass(frozen=True, slots=True)
class BackupRun:
    id: int
    kind: str  # backup, verify, drill, restore, prune
    set_id: str | None
    started_at: datetime
    finished_at: datetime
    outcome: str  # ok, failed
    seconds: float
    bytes: int
    detail: dict[str, Any]


class FailedRunIncidents:
    """A failed backup, verify or drill is the incident `backup.<kind>_failed:pitstop` until one of
    the same kind succeeds."""

    KINDS = ("backup", "verify", "drill")

    def __init__(self, incidents: IncidentRegistry) -> None:
        self.incidents = incidents

    def __call__(self, run: BackupRun) -> None:
        if run.kind not in self.KINDS:
            return
        key = f"backup.{run.kind}_failed:pitstop"
        if run.outcome == "ok":
            self.incidents.resolve(key, reason=f"{run.kind} succeeded (set {run.set_id})", actor="backup")
            return
        error = str(run.detail.get("error", ""))
        self.incidents.open_or_update(
            key,
            severity=Severity.CRITICAL,
            title=f"the last {run.kind} failed" + (f": {error}" if error else ""),
            source="backup",
            actor="backup",
        )


class BackupRecords:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Told of every run once it is recorded (app.py: the maintenance log, and `FailedRunIncidents`).
        # A listener that fails is logged; the run stays recorded.
        self.listeners: list[Callable[[BackupRun], None]] = []

    def add(
        self,
        kind: str,
        *,
        set_id: str | None,
        started_at: datetime,
        finished_at: datetime,
        ok: bool,
        seconds: float,
        size: int = 0,
        detail: dict[str, Any] | None = None,
    ) -> int:
        with self.db.begin() as conn:
            key = conn.execute(
                insert(backup_runs).values(
                    kind=kind,
                    set_id=set_id,
                    started_at=started_at,
                    finished_at=finished_at,
                    outcome="ok" if ok else "failed",
                    seconds=seconds,
                    bytes=size,
                    detail=json.dumps(detail or {}, sort_keys=True, default=str),
                )
            ).inserted_primary_key
        assert key is not None
        run = BackupRun(
            int(key[0]), kind, set_id, started_at, finished_at, "ok" if ok else "failed", seconds, size, detail or {}
        )
        for listener in self.listeners:
            try:
                listener(run)
            except Exception:
                log.exception("a listener of backup %s %s failed", kind, run.id)
        return run.id

    def recent(self, kind: str | None = None, *, outcome: str | None = None, limit: int = 50) -> list[BackupRun]:
        query = select(backup_runs).order_by(backup_runs.c.finished_at.desc(), backup_runs.c.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(backup_runs.c.kind == kind)
        if outcome is not None:
            query = query.where(backup_runs.c.outcome == outcome)
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return [BackupRun(**{**r._mapping, "detail": json.loads(r.detail)}) for r in rows]

    def last(self, kind: str, *, outcome: str | None = None) -> BackupRun | None:
        runs = self.recent(kind, outcome=outcome, limit=1)
        return runs[0] if runs else None
