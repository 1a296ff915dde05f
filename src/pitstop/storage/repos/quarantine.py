"""Quarantined readings: what arrived, from where, and why it was not stored."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pitstop.storage.engine import Database
from pitstop.storage.schema import quarantine


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    id: int
    received_at: datetime
    source: str
    reason: str
    payload: str


class QuarantineRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_in(self, conn: Connection, rows: Sequence[tuple[str, str]], source: str, at: datetime) -> None:
        """Insert (payload, reason) pairs inside the caller's transaction; a payload already quarantined
        from the same source (a redelivery, a retry) is not added again."""
        if not rows:
            return
        source = _text(source)
        values = []
        for p, r in rows:
            payload = _text(p)
            values.append(
                {
                    "received_at": at,
                    "source": source,
                    "reason": r,
                    "payload": payload,
                    "dedup_key": dedup_key(source, payload),
                }
            )
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(dialect_insert(quarantine).on_conflict_do_nothing(index_elements=["dedup_key"]), values)

    def list(self, *, reason: str | None = None, limit: int = 100, after_id: int = 0) -> list[QuarantineRow]:
        columns = [quarantine.c[f] for f in ("id", "received_at", "source", "reason", "payload")]
        query = select(*columns).where(quarantine.c.id > after_id).order_by(quarantine.c.id).limit(limit)
        if reason is not None:
            query = query.where(quarantine.c.reason == reason)
        with self.db.connect() as conn:
            return [QuarantineRow(**row._mapping) for row in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        query = select(quarantine.c.reason, func.count()).group_by(quarantine.c.reason)
        with self.db.connect() as conn:
            return {str(r): int(n) for r, n in conn.execute(query)}

    def count(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(quarantine)).scalar_one())

    @staticmethod
    def delete_in(conn: Connection, ids: Sequence[int]) -> None:
        for i in range(0, len(ids), 500):
            conn.execute(delete(quarantine).where(quarantine.c.id.in_(ids[i : i + 500])))

    @staticmethod
    def set_reason_in(conn: Connection, ids: Sequence[int], reason: str) -> None:
        for i in range(0, len(ids), 500):
            conn.execute(update(quarantine).where(quarantine.c.id.in_(ids[i : i + 500])).values(reason=reason))


def dedup_key(source: str, payload: str) -> str:
    """What makes a quarantined row the same row again: its source and its payload."""
    return hashlib.sha256(f"{source}\n{payload}".encode("utf-8", "backslashreplace")).hexdigest()


def _text(value: str) -> str:
    """Storable anywhere: no NUL (PostgreSQL refuses it), no lone surrogates (not UTF-8)."""
    return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
