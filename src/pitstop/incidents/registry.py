"""The incident registry: open, update, acknowledge, assign, suppress, resolve; every step on the timeline.

`open_or_update` is idempotent: the same key and content change nothing and return Change.NONE.
A partial unique index (key, where state <> 'resolved') guarantees one unresolved incident per
key; a writer that loses the race to insert re-reads the winner's row and updates that instead.
"""

from __future__ import annotations

import builtins
import functools
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from pitstop.core.clock import Clock
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput, NotFound
from pitstop.incidents.models import Change, Incident, IncidentEvent, IncidentState, parse_key
from pitstop.storage.engine import Database
from pitstop.storage.repos.audit import AuditRepo
from pitstop.storage.schema import incident_events, incidents

MAX_TEXT = 4000
AREA = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
Write = TypeVar("Write", bound=Callable[..., tuple[Any, Change]])


def _committed(write: Write) -> Write:
    """After a write that changed something has committed, tell the listeners (the feed's thread
    wakes up instead of waiting for its next poll)."""

    @functools.wraps(write)
    def wrapper(self: IncidentRegistry, *args: Any, **kwargs: Any) -> tuple[Any, Change]:
        result = write(self, *args, **kwargs)
        if result[1] is not Change.NONE:
            for listener in self.listeners:
                listener()
        return result

    return wrapper  # type: ignore[return-value]


class IncidentRegistry:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.listeners: list[Callable[[], None]] = []  # called after each committed change

    # -- writes ---------------------------------------------------------------------------------

    @_committed
    def open_or_update(
        self,
        key: str,
        *,
        severity: Severity,
        title: str,
        detail: str | None = None,
        source: str = "pitstop",
        actor: str = "pitstop",
    ) -> tuple[Incident, Change]:
        """Open the incident for `key`, or update the unresolved one; Change.NONE when nothing changed."""
        parse_key(key)
        title = _text("title", title, 500)
        detail = _text("detail", detail, MAX_TEXT) if detail is not None else None
        severity = Severity(severity)
        now = self.clock.now()
        for _ in range(3):
            with self.db.begin() as conn:
                row = _active(conn, key)
                if row is None:
                    try:
                        with conn.begin_nested():
                            new_id = conn.execute(
                                insert(incidents).values(
                                    key=key,
                                    state=IncidentState.OPEN.value,
                                    severity=severity.value,
                                    title=title,
                                    detail=detail,
                                    source=source,
                                    opened_at=now,
                                    updated_at=now,
                                )
                            ).inserted_primary_key
                    except IntegrityError:
                        continue  # another writer opened it first: update theirs
                    assert new_id is not None
                    _event(
                        conn,
                        int(new_id[0]),
                        now,
                        actor,
                        "opened",
                        None,
                        IncidentState.OPEN,
                        {"severity": severity.value, "title": title, "source": source},
                    )
                    return self._get_id(conn, int(new_id[0])), Change.OPENED
                current = _incident(row)
                changes: dict[str, Any] = {}
                if current.severity is not severity:
                    changes["severity"] = severity.value
                if current.title != title:
                    changes["title"] = title
                if current.detail != detail:
                    changes["detail"] = detail
                if not changes:
                    return current, Change.NONE
                conn.execute(update(incidents).where(incidents.c.id == current.id).values(**changes, updated_at=now))
                _event(
                    conn,
                    current.id,
                    now,
                    actor,
                    "updated",
                    current.state,
                    current.state,
                    {k: v for k, v in changes.items() if k != "detail"},
                )
                return self._get_id(conn, current.id), Change.UPDATED
        raise RuntimeError(f"could not open or update incident {key!r}: concurrent writers kept conflicting")

    @_committed
    def acknowledge(
        self, key: str, *, actor: str, note: str = "", incident_id: int | None = None
    ) -> tuple[Incident, Change]:
        """`incident_id`: acknowledge only that incident of the key (a link made for it), not a newer one."""
        return self._transition(
            key,
            actor,
            "acknowledged",
            IncidentState.ACKNOWLEDGED,
            Change.ACKNOWLEDGED,
            {"note": _text("note", note, MAX_TEXT)} if note else {},
            allowed={IncidentState.OPEN},
            incident_id=incident_id,
        )

    @_committed
    def suppress(self, key: str, *, reason: str, actor: str) -> tuple[Incident, Change]:
        return self._transition(
            key,
            actor,
            "suppressed",
            IncidentState.SUPPRESSED,
            Change.SUPPRESSED,
            {"reason": _text("reason", reason, MAX_TEXT)},
            allowed={IncidentState.OPEN, IncidentState.ACKNOWLEDGED},
        )

    @_committed
    def resolve(self, key: str, *, reason: str, actor: str) -> tuple[Incident | None, Change]:
        """Resolve the unresolved incident of `key`; (None, NONE) when there is none."""
        parse_key(key)
        reason = _text("reason", reason, MAX_TEXT)
        now = self.clock.now()
        with self.db.begin() as conn:
            row = _active(conn, key)
            if row is None:
                return None, Change.NONE
            current = _incident(row)
            conn.execute(
                update(incidents)
                .where(incidents.c.id == current.id)
                .values(state=IncidentState.RESOLVED.value, updated_at=now, resolved_at=now)
            )
            _event(conn, current.id, now, actor, "resolved", current.state, IncidentState.RESOLVED, {"reason": reason})
            _audit(conn, now, actor, "incident.resolve", key, {"reason": reason})
            return self._get_id(conn, current.id), Change.RESOLVED

    @_committed
    def assign(self, key: str, *, assignee: str | None, actor: str) -> tuple[Incident, Change]:
        parse_key(key)
        assignee = _text("assignee", assignee, 200) if assignee else None
        now = self.clock.now()
        with self.db.begin() as conn:
            current = _require_active(conn, key)
            if current.assignee == assignee:
                return current, Change.NONE
            conn.execute(
                update(incidents).where(incidents.c.id == current.id).values(assignee=assignee, updated_at=now)
            )
            _event(
                conn,
                current.id,
                now,
                actor,
                "assigned",
                current.state,
                current.state,
                {"from": current.assignee, "to": assignee},
            )
            _audit(conn, now, actor, "incident.assign", key, {"assignee": assignee})
            return self._get_id(conn, current.id), Change.ASSIGNED

    @_committed
    def escalated(self, incident_id: int, *, actor: str, detail: dict[str, Any]) -> tuple[Incident, Change]:
        """On the timeline (and so to the feed's subscribers, the maintenance log among them): people
        were paged for this incident. Its state does not change."""
        now = self.clock.now()
        with self.db.begin() as conn:
            current = self._get_id(conn, incident_id)
            _event(conn, current.id, now, actor, "escalated", current.state, current.state, detail)
            return current, Change.ESCALATED

    def _transition(
        self,
        key: str,
        actor: str,
        action: str,
        to: IncidentState,
        change: Change,
        detail: dict[str, Any],
        *,
        allowed: set[IncidentState],
        incident_id: int | None = None,
    ) -> tuple[Incident, Change]:
        parse_key(key)
        now = self.clock.now()
        with self.db.begin() as conn:
            current = _require_active(conn, key)
            if incident_id is not None and current.id != incident_id:
                raise NotFound(f"incident {incident_id} of {key[:200]!r} is resolved; a newer one is open")
            if current.state is to:
                return current, Change.NONE
            if current.state not in allowed:
                raise InvalidInput(f"incident {key!r} is {current.state.value}; it cannot be {action}")
            conn.execute(update(incidents).where(incidents.c.id == current.id).values(state=to.value, updated_at=now))
            _event(conn, current.id, now, actor, action, current.state, to, detail)
            _audit(conn, now, actor, f"incident.{action}", key, detail)
            return self._get_id(conn, current.id), change

    # -- reads ----------------------------------------------------------------------------------

    def get(self, key_or_id: str | int) -> Incident:
        """The unresolved incident of a key, else its latest one; or the incident with that id."""
        with self.db.connect() as conn:
            if isinstance(key_or_id, int) or (key_or_id.isascii() and key_or_id.isdigit()):
                return self._get_id(conn, int(key_or_id))
            if "\x00" in key_or_id:
                raise NotFound("no incident with a NUL in its key")
            row = conn.execute(
                select(incidents)
                .where(incidents.c.key == key_or_id)
                .order_by((incidents.c.state == IncidentState.RESOLVED.value).asc(), incidents.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            raise NotFound(f"no incident with key {str(key_or_id)[:200]!r}")
        return _incident(row)

    def active(self, key: str) -> Incident | None:
        with self.db.connect() as conn:
            row = _active(conn, key)
        return _incident(row) if row else None

    def list(
        self,
        *,
        state: IncidentState | Sequence[IncidentState] | None = None,
        area: str | None = None,
        severity: Severity | None = None,
        limit: int = 100,
    ) -> list[Incident]:
        """Newest first. `state` None means every state; "active" states are open, acknowledged, suppressed."""
        query = select(incidents).order_by(incidents.c.updated_at.desc(), incidents.c.id.desc()).limit(limit)
        if isinstance(state, IncidentState):
            query = query.where(incidents.c.state == state.value)
        elif state is not None:
            query = query.where(incidents.c.state.in_([s.value for s in state]))
        if area is not None:
            if not AREA.match(area):
                raise InvalidInput(f"area {area[:60]!r} is not a lowercase area name like disk or asset")
            query = query.where(incidents.c.key.like(f"{area}.%"))
        if severity is not None:
            query = query.where(incidents.c.severity == Severity(severity).value)
        with self.db.connect() as conn:
            return [_incident(r) for r in conn.execute(query)]

    def timeline(self, incident_id: int) -> builtins.list[IncidentEvent]:
        query = (
            select(incident_events).where(incident_events.c.incident_id == incident_id).order_by(incident_events.c.id)
        )
        with self.db.connect() as conn:
            return [IncidentEvent(**event_fields(r)) for r in conn.execute(query)]

    @staticmethod
    def _get_id(conn: Connection, incident_id: int) -> Incident:
        if not 0 < incident_id < 2**31:
            raise NotFound(f"no incident with id {incident_id}")
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        if row is None:
            raise NotFound(f"no incident with id {incident_id}")
        return _incident(row)


def event_fields(row: Row[Any]) -> dict[str, Any]:
    """The fields of an `IncidentEvent` from an `incident_events` row (the timeline and the feed)."""
    detail = json.loads(row.detail)
    return {
        "id": row.id,
        "incident_id": row.incident_id,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "from_state": IncidentState(row.from_state) if row.from_state else None,
        "to_state": IncidentState(row.to_state),
        "detail": detail if isinstance(detail, dict) else {},
    }


def _active(conn: Connection, key: str) -> Row[Any] | None:
    return conn.execute(
        select(incidents).where(incidents.c.key == key, incidents.c.state != IncidentState.RESOLVED.value)
    ).first()


def _require_active(conn: Connection, key: str) -> Incident:
    row = _active(conn, key)
    if row is None:
        raise NotFound(f"no unresolved incident with key {key[:200]!r}")
    return _incident(row)


def _incident(row: Row[Any]) -> Incident:
    m = row._mapping
    return Incident(
        id=m["id"],
        key=m["key"],
        state=IncidentState(m["state"]),
        severity=Severity(m["severity"]),
        title=m["title"],
        detail=m["detail"],
        source=m["source"],
        assignee=m["assignee"],
        opened_at=m["opened_at"],
        updated_at=m["updated_at"],
        resolved_at=m["resolved_at"],
    )


FEED_ORDER_LOCK = 0x70697473  # "pits": pitstop's advisory lock for the order of incident events


def _event(
    conn: Connection,
    incident_id: int,
    at: datetime,
    actor: str,
    action: str,
    from_state: IncidentState | None,
    to_state: IncidentState,
    detail: dict[str, Any],
) -> None:
    if conn.dialect.name == "postgresql":
        # The feed reads events by id after its cursor, so ids must be handed out in commit order:
        # a transaction-scoped lock, taken before the id, holds other writers of events until this
        # one commits. Without it a later id that commits first moves the cursor past an earlier
        # one still in flight, which is never delivered (several workers write incidents at once).
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_ORDER_LOCK})
    conn.execute(
        insert(incident_events).values(
            incident_id=incident_id,
            at=at,
            actor=actor[:200],
            action=action,
            from_state=from_state.value if from_state else None,
            to_state=to_state.value,
            detail=json.dumps(detail, default=str),
        )
    )


def _audit(conn: Connection, at: datetime, actor: str, action: str, key: str, detail: dict[str, Any]) -> None:
    AuditRepo.record(conn, at=at, actor=actor[:200], action=action, target=key, detail=detail)


def _text(what: str, value: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character")
    return value
