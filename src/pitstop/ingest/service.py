"""IngestService: the one way readings come in. Every source (file, HTTP, MQTT) calls `ingest`."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy.exc

from pitstop.background import SupervisedThread, Supervisor
from pitstop.config.models import IngestSettings
from pitstop.core.clock import Clock
from pitstop.core.types import from_epoch_us, to_epoch_us
from pitstop.errors import DatabaseUnavailable, SpoolFull
from pitstop.ingest.spool import Spool
from pitstop.ingest.validate import (
    CONFLICT,
    FIELDS,
    MALFORMED,
    MAX_PAYLOAD_CHARS,
    IntArray,
    Quarantined,
    SensorIndex,
    count_reasons,
    payload_text,
    validate,
)
from pitstop.observability import Metrics
from pitstop.storage.engine import Database
from pitstop.storage.repos.assets import AssetRepo
from pitstop.storage.repos.quarantine import QuarantineRepo
from pitstop.storage.repos.readings import Conflict, ReadingBatch, ReadingRepo

# What a database that is down (restarting, unreachable, disk full) raises on the way in.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)
INVENTORY_TTL_S = 5.0  # how long a read of the inventory is reused for validation
RETRY_DATABASE_S = 1.0  # after a failure, spool without trying the database for this long


@dataclass(frozen=True)
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    spooled: int = 0  # accepted and safe on disk, stored when the database is back
    # What the stored readings touched: their first and last time (µs) and their sensors, so that
    # an import of old readings can have its roll-ups rebuilt.
    first_us: int | None = None
    last_us: int | None = None
    sensor_ids: frozenset[int] = frozenset()

    def __add__(self, other: IngestResult) -> IngestResult:
        reasons = dict(self.reasons)
        for k, v in other.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
        firsts = [t for t in (self.first_us, other.first_us) if t is not None]
        lasts = [t for t in (self.last_us, other.last_us) if t is not None]
        return IngestResult(
            self.stored + other.stored,
            self.duplicates + other.duplicates,
            self.quarantined + other.quarantined,
            reasons,
            self.spooled + other.spooled,
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
            self.sensor_ids | other.sensor_ids,
        )


class _Entry:
    """One caller's batch on its way to the database (or the spool), and what became of it."""

    __slots__ = ("batch", "conflicts", "done", "error", "quarantined", "result", "source")

    def __init__(self, batch: ReadingBatch, quarantined: list[Quarantined], source: str) -> None:
        self.batch = batch
        self.quarantined = quarantined
        self.source = source
        self.done = False
        self.result = (0, 0, 0)  # stored, duplicates, spooled
        self.conflicts: list[Quarantined] = []  # readings that contradict a stored value
        self.error: BaseException | None = None

    def finish(self, result: tuple[int, int, int]) -> None:
        self.result, self.done = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True


@dataclass(frozen=True)
class ReplayResult:
    checked: int
    stored: int
    duplicates: int
    still_quarantined: int
    reasons: dict[str, int]


class IngestService:
    def __init__(
        self,
        *,
        db: Database,
        assets: AssetRepo,
        readings: ReadingRepo,
        quarantine: QuarantineRepo,
        spool: Spool,
        clock: Clock,
        metrics: Metrics,
        settings: IngestSettings,
        log: logging.Logger | None = None,
    ) -> None:
        self.db = db
        self.assets = assets
        self.readings = readings
        self.quarantine = quarantine
        self.spool = spool
        self.clock = clock
        self.metrics = metrics
        self.settings = settings
        self.log = log or logging.getLogger("pitstop.ingest")
        # Links of push sources (name -> current state, "ok" when up), shown in /ready.
        self.links: dict[str, Callable[[], str]] = {}
        # For the HTTP edge: parsing and writing off the event loop, on threads of their own. Four,
        # so that pushes waiting for the writer can be committed together (see `_store`).
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pitstop-ingest")
        self._lock = threading.RLock()  # one writer at a time keeps the spool in order
        self._waiting_lock = threading.Lock()
        self._waiting: list[_Entry] = []  # batches waiting for the writer (see `_store`)
        self._index: SensorIndex | None = None
        self._index_at = -math.inf
        self._down_until = -math.inf
        self._down = False
        self._refusing: str | None = None  # why readings are being refused (database and spool both)
        self._probed_at = -math.inf
        metrics.spool_bytes.set(spool.size_bytes)

    # -- the one entry point ----------------------------------------------------------------

    def ingest(
        self,
        rows: pd.DataFrame,
        source: str,
        *,
        malformed: Sequence[str] = (),
        payload: Callable[[IntArray], list[str]] | None = None,
    ) -> IngestResult:
        """Validate raw rows (columns ts, asset, sensor, value) and store them once.

        `malformed`: raw texts of messages or lines that could not even be split into rows; they
        are quarantined as `malformed`. Valid readings are stored (or, with the database down,
        spooled); the rest is quarantined. Raises SpoolFull when neither is possible.
        """
        index = self.sensor_index()
        checked = validate(
            rows,
            index,
            now_us=to_epoch_us(self.clock.now()),
            max_future_us=int(self.settings.max_future_s * 1_000_000),
            payload=payload,
        )
        quarantined = checked.quarantined + [Quarantined(m[:MAX_PAYLOAD_CHARS], MALFORMED) for m in malformed]
        (stored, duplicates, spooled), conflicts = self._store(checked.batch, quarantined, source)
        quarantined += conflicts
        reasons = count_reasons(quarantined)
        kind = source_kind(source)
        if spooled == 0:
            self._count(kind, stored, duplicates, reasons)
        batch = checked.batch
        if stored == 0:
            return IngestResult(stored, duplicates, len(quarantined), reasons, spooled)
        return IngestResult(
            stored,
            duplicates,
            len(quarantined),
            reasons,
            spooled,
            int(batch.ts_us.min()),
            int(batch.ts_us.max()),
            frozenset(np.unique(batch.sensor_id).tolist()),
        )

    def sensor_index(self, *, refresh: bool = False) -> SensorIndex:
        """The inventory for validation, re-read at most every few seconds (and kept while the
        database is down, so readings can still be validated and spooled)."""
        now = self.clock.monotonic()
        stale = refresh or self._index is None or now - self._index_at > INVENTORY_TTL_S
        if stale and (self._index is None or refresh or self._database_up()):
            try:
                self._index = SensorIndex.of(self.assets.sensors())
                self._index_at = now
            except UNAVAILABLE as exc:
                self._mark_down(exc)
                if self._index is None:
                    raise DatabaseUnavailable(f"cannot read the inventory to validate readings: {exc}") from exc
        assert self._index is not None
        return self._index

    def state(self) -> str:
        """ "ok" while readings can be taken in, else why they are refused (for /ready). While they
        are, the spool is probed (at most once a second): room on its disk again makes it ok."""
        if self._refusing is None:
            return "ok"
        now = self.clock.monotonic()
        if now - self._probed_at >= 1.0:
            self._probed_at = now
            if self.spool.writable():
                self._refusing = None
                return "ok"
        return f"refusing readings: {self._refusing}"

    def link_states(self) -> dict[str, str]:
        """State of each push source's link ("ok" when up), for /ready."""
        return {name: state() for name, state in self.links.items()}

    # -- storing, and the spool -------------------------------------------------------------

    def _store(
        self, batch: ReadingBatch, quarantined: list[Quarantined], source: str
    ) -> tuple[tuple[int, int, int], list[Quarantined]]:
        """Store (or spool) one batch; ((stored, duplicates, spooled), conflicts quarantined).

        Group commit: batches that arrive while another is being written (concurrent HTTP pushes)
        wait, and whoever takes the writer's lock next writes all waiting batches in one
        transaction: one commit, and the B-tree pages they share written once.
        """
        if len(batch) == 0 and not quarantined:
            return (0, 0, 0), []
        entry = _Entry(batch, quarantined, source)
        with self._waiting_lock:
            self._waiting.append(entry)
        with self._lock:
            if not entry.done:
                with self._waiting_lock:
                    entries, self._waiting = self._waiting, []
                self._store_locked(entries)
        if entry.error is not None:
            raise entry.error
        return entry.result, entry.conflicts

    def _store_locked(self, entries: list[_Entry]) -> None:
        try:
            if len(self.spool) and self._database_up():
                self._flush_locked()
            if not len(self.spool) and self._database_up():
                try:
                    stored = self._write_many(entries)
                except UNAVAILABLE as exc:
                    self._mark_down(exc)
                else:
                    self._mark_up()
                    self._refusing = None
                    for entry, n in zip(entries, stored, strict=True):
                        entry.finish((n, len(entry.batch) - n - len(entry.conflicts), 0))
                    return
            for entry in entries:
                try:
                    self.spool.append(entry.batch, entry.quarantined, entry.source)
                except SpoolFull as exc:
                    self._refusing = str(exc)
                    self.report_spool_full(exc)
                    entry.fail(exc)
                    continue
                self._refusing = None
                self.metrics.readings_spooled.inc(len(entry.batch))
                entry.finish((0, 0, len(entry.batch)))
            self.metrics.spool_bytes.set(self.spool.size_bytes)
        except BaseException as exc:  # a bug, or the spool's disk: every waiting caller hears of it
            for entry in entries:
                if not entry.done:
                    entry.fail(exc)
            raise

    def _write_many(self, entries: list[_Entry]) -> list[int]:
        """Each entry's readings and quarantined rows, all in one transaction; new rows per entry.

        A reading that was not new is a duplicate when its value is the stored one, and a
        conflict (quarantined with the stored value beside it, in the same transaction) when not."""
        stored = []
        with self.db.begin() as conn:
            for entry in entries:
                n = self.readings.write_in(conn, entry.batch) if len(entry.batch) else 0
                entry.conflicts = []
                if n < len(entry.batch):
                    entry.conflicts = self._conflicts(self.readings.conflicts_in(conn, entry.batch))
                stored.append(n)
                rows = [(q.payload, q.reason) for q in entry.quarantined + entry.conflicts]
                self.quarantine.add_in(conn, rows, entry.source, self.clock.now())
        return stored

    def _conflicts(self, conflicts: list[Conflict]) -> list[Quarantined]:
        """Conflicting readings as quarantine rows that name the asset and sensor, as they arrived."""
        if not conflicts:
            return []
        names = {sensor_id: key for key, sensor_id in self.sensor_index().ids.items()}
        return [
            Quarantined(
                payload_text(
                    {
                        "ts": from_epoch_us(c.ts_us).isoformat(),
                        "asset": names.get(c.sensor_id, ("?", "?"))[0],
                        "sensor": names.get(c.sensor_id, ("?", "?"))[1],
                        "value": c.value,
                        "stored_value": c.stored,
                    }
                ),
                CONFLICT,
            )
            for c in conflicts
        ]

    def flush_spool(self) -> int:
        """Write spooled entries in order while the database takes them; returns how many."""
        with self._lock:
            if not len(self.spool) or not self._database_up():
                return 0
            return self._flush_locked()

    def _flush_locked(self) -> int:
        flushed = 0
        for path in self.spool.entries():
            try:
                entry = Spool.read(path)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                self.log.exception("spool entry %s cannot be read; moved aside as .corrupt", path)
                path.rename(path.with_suffix(".corrupt"))
                self.spool.remove(path)
                continue
            written = _Entry(entry.batch, entry.quarantined, entry.source)
            try:
                stored = self._write_many([written])[0]
            except UNAVAILABLE as exc:
                self._mark_down(exc)
                break
            self._mark_up()
            self._refusing = None
            self.spool.remove(path)
            duplicates = len(entry.batch) - stored - len(written.conflicts)
            reasons = count_reasons(entry.quarantined + written.conflicts)
            self._count(source_kind(entry.source), stored, duplicates, reasons)
            flushed += 1
        if flushed:
            self.log.info("flushed %d spooled batches; %d left", flushed, len(self.spool))
        self.metrics.spool_bytes.set(self.spool.size_bytes)
        return flushed

    def report_spool_full(self, exc: SpoolFull) -> None:
        """The spool reached its cap: readings are being refused. The place for an incident hook
        (the health component opens `ingest.spool_full` here); for now, an error in the log."""
        self.log.error("%s", exc)

    def _database_up(self) -> bool:
        return self.clock.monotonic() >= self._down_until

    def _mark_down(self, exc: BaseException) -> None:
        self._down_until = self.clock.monotonic() + RETRY_DATABASE_S
        if not self._down:
            self._down = True
            self.log.warning("database unavailable, spooling readings to %s: %s", self.spool.directory, exc)

    def _mark_up(self) -> None:
        if self._down:
            self._down = False
            self.log.info("database available again")

    def _count(self, kind: str, stored: int, duplicates: int, reasons: dict[str, int]) -> None:
        self.metrics.readings_stored.labels(kind).inc(stored)
        self.metrics.readings_duplicate.labels(kind).inc(duplicates)
        for reason, n in reasons.items():
            self.metrics.readings_quarantined.labels(kind, reason).inc(n)

    # -- quarantine replay ------------------------------------------------------------------

    def replay(self, *, reason: str | None = None, page: int = 5000) -> ReplayResult:
        """Validate quarantined rows again against the current inventory. Rows that pass are
        stored (once: a reading already stored counts as a duplicate) and leave the quarantine;
        the others stay, with their reason updated."""
        index = self.sensor_index(refresh=True)
        checked = stored = duplicates = still = 0
        reasons: dict[str, int] = {}
        after = 0
        while True:
            rows = self.quarantine.list(reason=reason, limit=page, after_id=after)
            if not rows:
                break
            after = rows[-1].id
            checked += len(rows)
            parsed = [_as_row(r.payload) for r in rows]
            usable = [i for i, p in enumerate(parsed) if p is not None]
            records = [p for p in parsed if p is not None]
            frame = pd.DataFrame({f: pd.Series([r[f] for r in records], dtype=object) for f in FIELDS})
            result = validate(
                frame,
                index,
                now_us=to_epoch_us(self.clock.now()),
                max_future_us=int(self.settings.max_future_s * 1_000_000),
            )
            still_bad = {usable[int(p)]: q.reason for p, q in zip(result.bad_rows, result.quarantined, strict=True)}
            for i, p in enumerate(parsed):
                if p is None:
                    still_bad[i] = MALFORMED
            # the quarantined row (index into `rows`) of each reading in the batch, in order
            origin = [usable[int(p)] for p in np.setdiff1d(np.arange(len(records)), result.bad_rows)]
            with self._lock, self.db.begin() as conn:
                batch = result.batch
                n = self.readings.write_in(conn, batch) if len(batch) else 0
                if n < len(batch):  # a value that contradicts the stored one stays, as a conflict
                    clash = {(c.sensor_id, c.ts_us, c.value) for c in self.readings.conflicts_in(conn, batch)}
                    keys = zip(batch.sensor_id.tolist(), batch.ts_us.tolist(), batch.value.tolist(), strict=True)
                    for j, key in enumerate(keys):
                        if key in clash:
                            still_bad[origin[j]] = CONFLICT
                passed = [rows[i].id for i in usable if i not in still_bad]
                changed: dict[str, list[int]] = {}
                for i, new_reason in still_bad.items():
                    reasons[new_reason] = reasons.get(new_reason, 0) + 1
                    if rows[i].reason != new_reason:
                        changed.setdefault(new_reason, []).append(rows[i].id)
                self.quarantine.delete_in(conn, passed)
                for new_reason, ids in changed.items():
                    self.quarantine.set_reason_in(conn, ids, new_reason)
            stored += n
            duplicates += len(batch) - n - sum(1 for i in origin if still_bad.get(i) == CONFLICT)
            still += len(still_bad)
        return ReplayResult(checked, stored, duplicates, still, reasons)


def source_kind(source: str) -> str:
    """The metric label of a source: `http:key-name` -> `http`."""
    return source.split(":", 1)[0]


def _as_row(payload: str) -> dict[str, object] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    if isinstance(value, dict) and set(FIELDS) <= value.keys():
        return value
    return None


class SpoolFlusher:
    """Background part of `pitstop serve`: flushes the spool every few seconds when the
    database is back, even when no new readings arrive (on a supervised thread)."""

    name = "ingest-spool"

    def __init__(self, service: IngestService, every_s: float = 2.0, supervisor: Supervisor | None = None) -> None:
        self.service = service
        self.every_s = every_s
        self.supervisor = supervisor or Supervisor()
        self._thread: SupervisedThread | None = None

    def start(self) -> None:
        self._thread = self.supervisor.thread(self.name, self.service.flush_spool, every_s=self.every_s)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop(timeout=10)
