"""The record of backup work: one `backup_runs` row per backup, verify, drill, restore and prune,
and what it says of the sets on disk: which copy of each source is good (`good_copies`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from pitstop.backup.sets import BackupSet
from pitstop.core.types import Severity
from pitstop.errors import BackupError
from pitstop.incidents import IncidentRegistry
from pitstop.storage.engine import Database
from pitstop.storage.schema import backup_runs

log = logging.getLogger("pitstop.backup")
# The reason of the copy a forced restore takes of its target first (not a backup of the schedule).
SAFETY = "safety"


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

    def of_sets(self, set_ids: Iterable[str]) -> dict[str, list[BackupRun]]:
        """Every recorded run naming one of these sets, by set, newest first."""
        wanted = sorted(set(set_ids))
        found: dict[str, list[BackupRun]] = {}
        query = select(backup_runs).order_by(backup_runs.c.finished_at.desc(), backup_runs.c.id.desc())
        with self.db.connect() as conn:
            for start in range(0, len(wanted), 500):  # far under every driver's limit of bound values
                chunk = wanted[start : start + 500]
                for r in conn.execute(query.where(backup_runs.c.set_id.in_(chunk))):
                    run = BackupRun(**{**r._mapping, "detail": json.loads(r.detail)})
                    found.setdefault(str(run.set_id), []).append(run)
        for runs in found.values():
            runs.sort(key=lambda run: (run.finished_at, run.id), reverse=True)
        return found


# -- which copies are good ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoodCopy:
    """The newest good copy of one source: what freshness, the RPO, drills and restores count on."""

    source: str
    set: BackupSet
    recorded: bool  # False: a set `backup_runs` does not know (pitstop's own database restored since)
    passed_over: list[tuple[str, str]] = field(default_factory=list)  # newer sets: (id, why not good)

    @property
    def at(self) -> datetime:
        """When its set began: what it holds is as of then, at the latest."""
        return self.set.manifest.started_at


def _checked(runs: Iterable[BackupRun], names_of: Callable[[str], Collection[str]]) -> dict[tuple[str, str], bool]:
    """(set, source) -> whether the latest verify or drill that covered that copy passed it.

    A verify covers every source of its set (those its record names as failed are bad; all of them
    when it names none); a drill covers each source it restored, from the set it names for it."""
    latest: dict[tuple[str, str], tuple[datetime, int, bool]] = {}

    def note(set_id: str, source: str, run: BackupRun, ok: bool) -> None:
        seen = latest.get((set_id, source))
        if seen is None or (run.finished_at, run.id) > seen[:2]:
            latest[(set_id, source)] = (run.finished_at, run.id, ok)

    for run in runs:
        if run.detail.get("offsite"):
            continue  # about the off-site copy, not the set here
        if run.kind == "verify" and run.set_id is not None:
            failed = run.detail.get("failed_sources")
            names = names_of(run.set_id)
            bad = set(failed) if isinstance(failed, list) and failed else set(names)
            for source in names:
                note(run.set_id, source, run, run.outcome == "ok" or source not in bad)
        elif run.kind == "drill" and isinstance(run.detail.get("sources"), list):
            for s in run.detail["sources"]:
                if isinstance(s, dict) and isinstance(s.get("source"), str):
                    set_id = s.get("set") or run.set_id
                    if isinstance(set_id, str):
                        note(set_id, s["source"], run, not s.get("problems"))
    return {key: ok for key, (_, _, ok) in latest.items()}


def _why_not_good(backup_set: BackupSet, source: str, backup: BackupRun | None, checked: bool | None) -> str | None:
    """Why `source` in `backup_set` is not a good copy, or None when it is.

    Good: the set's backup is not recorded as failed (a set the record does not know, e.g. after
    pitstop's own database was restored, is judged by itself: its manifest is written last), the
    latest verify or drill of this copy (if any) passed, and every stored file of the source is
    there at its recorded size (a stat, no read)."""
    if backup is not None and backup.outcome != "ok":
        if backup.detail.get("offsite"):
            return "its off-site copy failed"
        return f"its backup failed: {str(backup.detail.get('error', '?'))[:200]}"
    if checked is False:
        return "the last verify or drill of it failed"
    for file in backup_set.manifest.source(source).files:
        try:
            size = backup_set.stored_path(file).stat().st_size
        except (OSError, BackupError):
            return f"{file.path[:100]} is missing from the set"
        if size != file.stored_size:
            return f"{file.path[:100]} is not the size the manifest says"
    return None


# Drills are weekly: the last hundred reach back further than any set is kept unchecked.
DRILLS_LOOKED_AT = 100


def good_copies(sets: Iterable[BackupSet], records: BackupRecords, names: Collection[str]) -> dict[str, GoodCopy]:
    """The newest good copy of each source in `names` that has one (see `_why_not_good`), looking
    through `sets` newest first. Safety copies taken before a restore are not backups and never count."""
    ordered = sorted(
        (s for s in sets if s.manifest.reason != SAFETY), key=lambda s: (s.manifest.started_at, s.id), reverse=True
    )
    by_id = {s.id: s for s in ordered}
    runs = records.of_sets(by_id)
    checked = _checked(
        [r for rs in runs.values() for r in rs] + records.recent("drill", limit=DRILLS_LOOKED_AT),
        lambda set_id: by_id[set_id].manifest.source_names if set_id in by_id else (),
    )
    found: dict[str, GoodCopy] = {}
    passed: dict[str, list[tuple[str, str]]] = {}
    for backup_set in ordered:
        backup = next((r for r in runs.get(backup_set.id, []) if r.kind == "backup"), None)
        for source in backup_set.manifest.source_names:
            if source not in names or source in found:
                continue
            why = _why_not_good(backup_set, source, backup, checked.get((backup_set.id, source)))
            if why is None:
                found[source] = GoodCopy(source, backup_set, backup is not None, passed.pop(source, []))
            else:
                passed.setdefault(source, []).append((backup_set.id, why))
        if len(found) == len(names):
            break
    return found
