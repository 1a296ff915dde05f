"""The record of remediations: one row per attempt, one row per step, circuit breakers, KPIs."""

from __future__ import annotations

import builtins
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, or_, select, update

from pitstop.errors import InvalidInput, NotFound
from pitstop.incidents import Incident
from pitstop.remediation.base import Plan
from pitstop.storage.engine import Database
from pitstop.storage.repos.audit import AuditRepo
from pitstop.storage.schema import remediation_breakers, remediation_steps, remediations

MAX_TEXT = 20000
# States of a remediation row.
AWAITING = "awaiting_approval"
APPROVED = "approved"
REJECTED = "rejected"
APPLYING = "applying"
HEALED = "healed"
FAILED = "failed"
DRY_RUN = "dry_run"
STATES = (AWAITING, APPROVED, REJECTED, APPLYING, HEALED, FAILED, DRY_RUN)
DONE = (HEALED, FAILED)


@dataclass(frozen=True, slots=True)
class Remediation:
    id: int
    incident_id: int
    incident_key: str
    incident_opened_at: datetime
    action: str
    target: str
    rule: str
    state: str
    destructive: bool
    plan: Plan
    created_at: datetime
    updated_at: datetime
    applied_at: datetime | None
    finished_at: datetime | None
    decided_by: str | None
    result: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "incident_key": self.incident_key,
            "action": self.action,
            "target": self.target,
            "rule": self.rule,
            "state": self.state,
            "destructive": self.destructive,
            "plan": self.plan.as_dict(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "applied_at": self.applied_at.isoformat() if self.applied_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "decided_by": self.decided_by,
            "result": self.result,
        }


@dataclass(frozen=True, slots=True)
class StepRow:
    id: int
    remediation_id: int
    step: str
    at: datetime
    ok: bool
    detail: str
    output: str
    data: dict[str, Any]
    duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "at": self.at.isoformat(),
            "ok": self.ok,
            "detail": self.detail,
            "output": self.output,
            "data": self.data,
            "duration_s": round(self.duration_s, 6),
        }


@dataclass(frozen=True, slots=True)
class Breaker:
    id: int
    action: str
    target: str
    opened_at: datetime
    reason: str
    escalated_to: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "opened_at": self.opened_at.isoformat(),
            "reason": self.reason,
            "escalated_to": self.escalated_to,
        }


class RemediationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes ---------------------------------------------------------------------------------

    def create(self, incident: Incident, rule: str, plan: Plan, state: str, now: datetime) -> int:
        with self.db.begin() as conn:
            new = conn.execute(
                insert(remediations).values(
                    incident_id=incident.id,
                    incident_key=incident.key,
                    incident_opened_at=incident.opened_at,
                    action=plan.action,
                    target=plan.target,
                    rule=rule[:500],
                    state=state,
                    destructive=int(plan.destructive),
                    plan=plan.to_json(),
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key
        assert new is not None
        return int(new[0])

    def step(
        self,
        remediation_id: int,
        step: str,
        *,
        at: datetime,
        ok: bool,
        detail: str = "",
        output: str = "",
        data: dict[str, Any] | None = None,
        duration_s: float = 0.0,
    ) -> None:
        with self.db.begin() as conn:
            conn.execute(
                insert(remediation_steps).values(
                    remediation_id=remediation_id,
                    step=step,
                    at=at,
                    ok=int(ok),
                    detail=detail[:MAX_TEXT],
                    output=output[:MAX_TEXT],
                    data=json.dumps(data or {}, default=str),
                    duration_s=duration_s,
                )
            )

    def set_state(self, remediation_id: int, state: str, now: datetime, **values: Any) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(remediations)
                .where(remediations.c.id == remediation_id)
                .values(state=state, updated_at=now, **values)
            )

    def decide(self, remediation_id: int, *, approve: bool, actor: str, reason: str, now: datetime) -> Remediation:
        """Approve or reject a remediation awaiting approval (idempotent for the same decision)."""
        to = APPROVED if approve else REJECTED
        with self.db.begin() as conn:
            current = _get(conn, remediation_id)
            if current.state == to:
                return current
            if current.state != AWAITING:
                raise InvalidInput(
                    f"remediation {remediation_id} is {current.state}; only one awaiting approval can be"
                )
            conn.execute(
                update(remediations)
                .where(remediations.c.id == remediation_id)
                .values(state=to, updated_at=now, decided_by=actor[:200], result=reason[:MAX_TEXT])
            )
            _step(conn, remediation_id, to, now, True, f"{to} by {actor}: {reason}"[:MAX_TEXT])
            AuditRepo.record(
                conn,
                at=now,
                actor=actor[:200],
                action=f"remediation.{'approve' if approve else 'reject'}",
                target=str(remediation_id),
                detail={"incident": current.incident_key, "action": current.action, "reason": reason[:2000]},
            )
            return _get(conn, remediation_id)

    def open_breaker(self, action: str, target: str, *, reason: str, escalated_to: str, now: datetime) -> None:
        with self.db.begin() as conn:
            if _open_breaker(conn, action, target) is None:
                conn.execute(
                    insert(remediation_breakers).values(
                        action=action, target=target, opened_at=now, reason=reason[:MAX_TEXT], escalated_to=escalated_to
                    )
                )

    def reset(self, target: str, *, actor: str, now: datetime, action: str | None = None) -> builtins.list[Breaker]:
        """Close the open breakers of a target (of one action, or all); returns those closed."""
        if not target or "\x00" in target or len(target) > 500:
            raise InvalidInput("give the target of the breaker (1 to 500 characters, no NUL)")
        query = select(remediation_breakers).where(
            remediation_breakers.c.target == target, remediation_breakers.c.reset_at.is_(None)
        )
        if action is not None:
            query = query.where(remediation_breakers.c.action == action)
        with self.db.begin() as conn:
            rows = [_breaker(r) for r in conn.execute(query)]
            if not rows:
                raise NotFound(f"no open circuit breaker for target {target[:200]!r}")
            conn.execute(
                update(remediation_breakers)
                .where(remediation_breakers.c.id.in_([b.id for b in rows]))
                .values(reset_at=now, reset_by=actor[:200])
            )
            AuditRepo.record(
                conn,
                at=now,
                actor=actor[:200],
                action="remediation.reset",
                target=target,
                detail={"actions": [b.action for b in rows]},
            )
        return rows

    # -- reads ----------------------------------------------------------------------------------

    def get(self, remediation_id: int) -> Remediation:
        with self.db.connect() as conn:
            return _get(conn, remediation_id)

    def list(self, *, state: str | None = None, limit: int = 100) -> list[Remediation]:
        query = select(remediations).order_by(remediations.c.id.desc()).limit(limit)
        if state is not None:
            if state not in STATES:
                raise InvalidInput(f"state {state[:40]!r} is not one of {', '.join(STATES)}")
            query = query.where(remediations.c.state == state)
        with self.db.connect() as conn:
            return [_remediation(r) for r in conn.execute(query)]

    def steps(self, remediation_id: int) -> builtins.list[StepRow]:
        query = (
            select(remediation_steps)
            .where(remediation_steps.c.remediation_id == remediation_id)
            .order_by(remediation_steps.c.id)
        )
        with self.db.connect() as conn:
            return [
                StepRow(
                    r.id,
                    r.remediation_id,
                    r.step,
                    r.at,
                    bool(r.ok),
                    r.detail,
                    r.output,
                    json.loads(r.data),
                    r.duration_s,
                )
                for r in conn.execute(query)
            ]

    def for_incident(self, incident_id: int) -> builtins.list[Remediation]:
        query = select(remediations).where(remediations.c.incident_id == incident_id).order_by(remediations.c.id)
        with self.db.connect() as conn:
            return [_remediation(r) for r in conn.execute(query)]

    def history(self, action: str, target: str, since: datetime) -> tuple[int, datetime | None, bool]:
        """(attempts applied since `since` and since the last reset, the last attempt, breaker open)."""
        with self.db.connect() as conn:
            last_reset = conn.execute(
                select(remediation_breakers.c.reset_at)
                .where(
                    remediation_breakers.c.action == action,
                    remediation_breakers.c.target == target,
                    remediation_breakers.c.reset_at.is_not(None),
                )
                .order_by(remediation_breakers.c.reset_at.desc())
                .limit(1)
            ).scalar()
            floor = max(since, last_reset) if last_reset is not None else since
            mine = and_(remediations.c.action == action, remediations.c.target == target)
            applied = remediations.c.applied_at
            attempts = conn.execute(
                select(func.count()).where(mine, applied.is_not(None), applied > floor)
            ).scalar_one()
            last = conn.execute(
                select(applied).where(mine, applied.is_not(None)).order_by(applied.desc()).limit(1)
            ).scalar()
            breaker = _open_breaker(conn, action, target)
        return int(attempts), last, breaker is not None

    def breakers(self) -> builtins.list[Breaker]:
        query = select(remediation_breakers).where(remediation_breakers.c.reset_at.is_(None))
        with self.db.connect() as conn:
            return [_breaker(r) for r in conn.execute(query.order_by(remediation_breakers.c.id))]

    def kpis(self, since: datetime | None = None) -> dict[str, Any]:
        """Success rate and MTTR (incident opened -> healed, seconds) per action and per target."""
        query = select(
            remediations.c.action,
            remediations.c.target,
            remediations.c.state,
            remediations.c.incident_opened_at,
            remediations.c.finished_at,
        ).where(or_(*(remediations.c.state == s for s in DONE)))
        if since is not None:
            query = query.where(remediations.c.finished_at >= since)
        with self.db.connect() as conn:
            rows = list(conn.execute(query))
        return {"overall": _kpi(rows), "by_action": _group(rows, 0), "by_target": _group(rows, 1)}


def _group(rows: Sequence[Row[Any, Any, Any, Any, Any]], column: int) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Row[Any, Any, Any, Any, Any]]] = defaultdict(list)
    for r in rows:
        groups[str(r[column])].append(r)
    return {name: _kpi(items) for name, items in sorted(groups.items())}


def _kpi(rows: Sequence[Row[Any, Any, Any, Any, Any]]) -> dict[str, Any]:
    healed = [r for r in rows if r.state == HEALED]
    repair_s = [(r.finished_at - r.incident_opened_at).total_seconds() for r in healed if r.finished_at is not None]
    return {
        "attempts": len(rows),
        "healed": len(healed),
        "success_rate": round(len(healed) / len(rows), 4) if rows else None,
        "mttr_s": round(sum(repair_s) / len(repair_s), 3) if repair_s else None,
    }


def _open_breaker(conn: Connection, action: str, target: str) -> Row[Any] | None:
    return conn.execute(
        select(remediation_breakers).where(
            remediation_breakers.c.action == action,
            remediation_breakers.c.target == target,
            remediation_breakers.c.reset_at.is_(None),
        )
    ).first()


def _step(conn: Connection, remediation_id: int, step: str, at: datetime, ok: bool, detail: str) -> None:
    conn.execute(
        insert(remediation_steps).values(remediation_id=remediation_id, step=step, at=at, ok=int(ok), detail=detail)
    )


def _get(conn: Connection, remediation_id: int) -> Remediation:
    if not 0 < remediation_id < 2**31:
        raise NotFound(f"no remediation with id {remediation_id}")
    row = conn.execute(select(remediations).where(remediations.c.id == remediation_id)).first()
    if row is None:
        raise NotFound(f"no remediation with id {remediation_id}")
    return _remediation(row)


def _remediation(row: Row[Any]) -> Remediation:
    m = row._mapping
    return Remediation(
        id=m["id"],
        incident_id=m["incident_id"],
        incident_key=m["incident_key"],
        incident_opened_at=m["incident_opened_at"],
        action=m["action"],
        target=m["target"],
        rule=m["rule"],
        state=m["state"],
        destructive=bool(m["destructive"]),
        plan=Plan.from_dict(json.loads(m["plan"])),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        applied_at=m["applied_at"],
        finished_at=m["finished_at"],
        decided_by=m["decided_by"],
        result=m["result"],
    )


def _breaker(row: Row[Any]) -> Breaker:
    m = row._mapping
    return Breaker(m["id"], m["action"], m["target"], m["opened_at"], m["reason"], m["escalated_to"])
