"""Check results with history: one row per result, the latest per target, pruning by age."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select

from pitstop.core.types import Status
from pitstop.errors import InvalidInput
from pitstop.health.base import CheckResult
from pitstop.storage.engine import Database
from pitstop.storage.schema import check_results


class ResultStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, results: Sequence[CheckResult]) -> None:
        if not results:
            return
        rows = [
            {
                "check_name": r.check,
                "target": r.target[:500],
                "status": r.status.value,
                "summary": r.summary,
                "issue_key": r.issue_key,
                "observed": json.dumps(dict(r.observed)),
                "checked_at": r.checked_at,
                "duration_s": r.duration_s,
                "error": r.error,
            }
            for r in results
        ]
        with self.db.begin() as conn:
            conn.execute(insert(check_results), rows)

    def latest(self) -> list[CheckResult]:
        newest = (
            select(func.max(check_results.c.id).label("id"))
            .group_by(check_results.c.check_name, check_results.c.target)
            .subquery()
        )
        query = (
            select(check_results)
            .join(newest, newest.c.id == check_results.c.id)
            .order_by(check_results.c.check_name, check_results.c.target)
        )
        with self.db.connect() as conn:
            return [_result(r) for r in conn.execute(query)]

    def history(self, check: str | None = None, target: str | None = None, limit: int = 100) -> list[CheckResult]:
        if any("\x00" in v for v in (check or "", target or "")):
            raise InvalidInput("check and target must not contain NUL characters")
        query = select(check_results).order_by(check_results.c.id.desc()).limit(limit)
        if check is not None:
            query = query.where(check_results.c.check_name == check)
        if target is not None:
            query = query.where(check_results.c.target == target)
        with self.db.connect() as conn:
            return [_result(r) for r in conn.execute(query)]

    def prune(self, before: datetime) -> int:
        with self.db.begin() as conn:
            return int(conn.execute(delete(check_results).where(check_results.c.checked_at < before)).rowcount)


def _result(row: Row[Any]) -> CheckResult:
    return CheckResult(
        check=row.check_name,
        target=row.target,
        status=Status(row.status),
        summary=row.summary,
        checked_at=row.checked_at,
        issue_key=row.issue_key,
        observed=json.loads(row.observed),
        duration_s=row.duration_s,
        error=row.error,
    )
