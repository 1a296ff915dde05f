"""The audit log: who changed what, when. Written in the same transaction as the change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from pitstop.storage.engine import Database
from pitstop.storage.schema import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def record(
        conn: Connection,
        *,
        at: datetime,
        actor: str,
        action: str,
        target: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            insert(audit_log).values(
                at=at, actor=actor, action=action, target=target, detail=json.dumps(detail or {}, default=str)
            )
        )

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        with self.db.connect() as conn:
            return [
                AuditEntry(r.id, r.at, r.actor, r.action, r.target, json.loads(r.detail)) for r in conn.execute(query)
            ]
