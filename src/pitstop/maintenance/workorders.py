"""Work orders: open -> planned -> in progress -> done -> verified (or cancelled).

`open_for(source, asset, key, ...)` is the one way in, for people and for the rest of pitstop
(incidents, failed checklist items, due schedules, meters, predictions, the self-healing engine).
It deduplicates: while an order for (asset, key) is active, a second request updates that order.
A partial unique index guarantees one active order per (asset, key), also under concurrent writers.

Closing an order re-runs the condition that opened it through the verifier registered for its
source: cleared -> verified; still holds -> back to in progress; cannot tell -> stays done.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from pitstop.core.clock import Clock
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput, NotFound
from pitstop.maintenance.common import criticality_of, dumps, param, text
from pitstop.maintenance.log import MaintenanceLog
from pitstop.storage.engine import Database
from pitstop.storage.schema import work_orders

log = logging.getLogger("pitstop.maintenance")

SOURCE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
FAILURE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
SEVERITY_WEIGHT = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3, Severity.EMERGENCY: 4}


class OrderState(StrEnum):
    OPEN = "open"
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    VERIFIED = "verified"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self not in (OrderState.VERIFIED, OrderState.CANCELLED)


ACTIVE = tuple(s.value for s in OrderState if s.active)
_MOVES = {
    OrderState.OPEN: {OrderState.PLANNED, OrderState.IN_PROGRESS, OrderState.DONE, OrderState.CANCELLED},
    OrderState.PLANNED: {
        OrderState.OPEN,
        OrderState.PLANNED,
        OrderState.IN_PROGRESS,
        OrderState.DONE,
        OrderState.CANCELLED,
    },
    OrderState.IN_PROGRESS: {OrderState.DONE, OrderState.CANCELLED},
    OrderState.DONE: {OrderState.VERIFIED, OrderState.IN_PROGRESS},
    OrderState.VERIFIED: set(),
    OrderState.CANCELLED: set(),
}


def priority(criticality: int, severity: Severity) -> int:
    """Asset criticality (1..5) x severity weight (info 1 .. emergency 4): 1..20, higher first."""
    return max(1, min(5, criticality)) * SEVERITY_WEIGHT[Severity(severity)]


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: int
    asset: str
    key: str
    title: str
    detail: str
    source: str
    state: OrderState
    severity: Severity
    priority: int
    assignee: str | None
    due_at: datetime | None
    estimated_h: float
    actual_h: float | None
    parts: list[str]
    incident_id: int | None
    run_id: int | None
    prediction: str | None
    procedure: str | None
    window_name: str | None
    planned_start: datetime | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    verified_at: datetime | None
    updates: int
    failure_code: str | None = None  # what was found when it closed: "failed", "no_fault", a failure mode

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f: getattr(self, f) for f in self.__slots__}
        for k, v in data.items():
            if isinstance(v, datetime):
                data[k] = v.isoformat()
        data["state"], data["severity"] = self.state.value, self.severity.value
        return data


Verifier = Callable[[WorkOrder], bool | None]
"""Re-run the condition that opened an order: True cleared, False still holds, None cannot tell."""


class WorkOrderService:
    def __init__(self, db: Database, clock: Clock, log: MaintenanceLog) -> None:
        self.db = db
        self.clock = clock
        self.log = log
        self.verifiers: dict[str, Verifier] = {}
        self.on_done: list[Callable[[WorkOrder], None]] = []

    def register_verifier(self, source: str, verifier: Verifier) -> None:
        self.verifiers[source] = verifier

    # -- the way in -----------------------------------------------------------------------------

    def open_for(
        self,
        source: str,
        asset: str,
        key: str,
        *,
        title: str,
        severity: Severity = Severity.WARNING,
        detail: str = "",
        due_at: datetime | None = None,
        estimated_h: float | None = None,
        incident_id: int | None = None,
        run_id: int | None = None,
        prediction: str | None = None,
        procedure: str | None = None,
        actor: str = "pitstop",
        reschedule: bool = False,
    ) -> tuple[WorkOrder, bool]:
        """Open an order for (asset, key), or update the active one. Returns (order, created).

        An update only ever brings the due date forward, unless ``reschedule`` (a prediction that
        moved) sets it to ``due_at`` either way.
        """
        if not SOURCE.fullmatch(source):
            raise InvalidInput(f"source {source[:60]!r} must be a short lowercase name")
        asset = text("asset", asset, 200, required=False)
        key = text("key", key, 500)
        title = text("title", title, 500)
        detail = text("detail", detail, 20000, required=False)
        severity = Severity(severity)
        if estimated_h is not None and not 0 < estimated_h <= 1000:
            raise InvalidInput("estimated hours must be more than 0 and at most 1000")
        if due_at is not None and due_at.tzinfo is None:
            raise InvalidInput("due date must carry a time zone")
        now = self.clock.now()
        for _ in range(3):
            with self.db.begin() as conn:
                row = _active(conn, asset, key)
                if row is None:
                    values = dict(
                        asset=asset,
                        key=key,
                        title=title,
                        detail=detail,
                        source=source,
                        state=OrderState.OPEN.value,
                        severity=severity.value,
                        priority=priority(criticality_of(conn, asset), severity),
                        due_at=due_at,
                        estimated_h=estimated_h or 1.0,
                        incident_id=incident_id,
                        run_id=run_id,
                        prediction=prediction,
                        procedure=procedure,
                        opened_at=now,
                        updated_at=now,
                    )
                    try:
                        with conn.begin_nested():
                            new = conn.execute(insert(work_orders).values(**values)).inserted_primary_key
                    except IntegrityError:
                        continue  # another writer opened it first: update theirs
                    assert new is not None
                    order = _get(conn, int(new[0]))
                    MaintenanceLog.append_in(
                        conn,
                        "work_order",
                        f"opened work order {order.id}: {title}"[:500],
                        actor=actor,
                        at=now,
                        asset=asset,
                        issues=detail,
                        result="opened",
                        ref=f"wo:{order.id}",
                    )
                    return order, True
                current = _order(row)
                changes: dict[str, Any] = {"updates": current.updates + 1, "updated_at": now, "title": title}
                if detail:
                    changes["detail"] = detail
                if SEVERITY_WEIGHT[severity] > SEVERITY_WEIGHT[current.severity]:
                    changes["severity"] = severity.value
                    changes["priority"] = priority(criticality_of(conn, asset), severity)
                if due_at is not None and (reschedule or current.due_at is None or due_at < current.due_at):
                    changes["due_at"] = due_at
                if estimated_h is not None:
                    changes["estimated_h"] = estimated_h
                for field, value in (
                    ("incident_id", incident_id),
                    ("run_id", run_id),
                    ("prediction", prediction),
                    ("procedure", procedure),
                ):
                    if value is not None:
                        changes[field] = value
                conn.execute(update(work_orders).where(work_orders.c.id == current.id).values(**changes))
                return _get(conn, current.id), False
        raise RuntimeError(f"could not open or update the work order for {asset!r} {key!r}: writers kept conflicting")

    # -- transitions ----------------------------------------------------------------------------

    def start(self, order_id: int, *, actor: str) -> WorkOrder:
        return self._move(order_id, OrderState.IN_PROGRESS, actor, "started")

    def cancel(self, order_id: int, *, actor: str, reason: str) -> WorkOrder:
        return self._move(order_id, OrderState.CANCELLED, actor, "cancelled", note=text("reason", reason, 2000))

    def assign(self, order_id: int, *, assignee: str | None, actor: str) -> WorkOrder:
        who = text("assignee", assignee, 200) if assignee else None
        with self.db.begin() as conn:
            order = _get(conn, order_id)
            if not order.state.active:
                raise InvalidInput(f"work order {order_id} is {order.state.value}")
            conn.execute(
                update(work_orders)
                .where(work_orders.c.id == order_id)
                .values(assignee=who, updated_at=self.clock.now())
            )
            return _get(conn, order_id)

    def close(
        self,
        order_id: int,
        *,
        actor: str,
        actual_h: float | None = None,
        parts: Sequence[str] = (),
        note: str = "",
        failure_code: str | None = None,
    ) -> WorkOrder:
        """Mark done, then re-run what opened it: verified, back to in progress, or done (cannot tell).

        ``failure_code`` records what was found: ``failed`` (the asset broke down), ``no_fault``
        (nothing wrong), or the failure mode found and repaired before a breakdown (``bearing_wear``).
        """
        if failure_code is not None and not FAILURE_CODE.fullmatch(failure_code):
            raise InvalidInput(
                f"failure code {failure_code[:60]!r} must be a short lowercase name: failed, no_fault, bearing_wear"
            )
        if actual_h is not None and not 0 <= actual_h <= 10000:
            raise InvalidInput("actual hours must be between 0 and 10000")
        part_list = [text("part", p, 200) for p in parts]
        if len(part_list) > 100:
            raise InvalidInput("at most 100 parts per order")
        note = text("note", note, 20000, required=False)
        now = self.clock.now()
        with self.db.begin() as conn:
            order = _get(conn, order_id)
            if OrderState.DONE not in _MOVES[order.state]:
                raise InvalidInput(f"work order {order_id} is {order.state.value}; it cannot be closed")
            conn.execute(
                update(work_orders)
                .where(work_orders.c.id == order_id)
                .values(
                    state=OrderState.DONE.value,
                    closed_at=now,
                    updated_at=now,
                    actual_h=actual_h,
                    parts=dumps(part_list),
                    failure_code=failure_code,
                )
            )
            MaintenanceLog.append_in(
                conn,
                "work_order",
                f"closed work order {order_id}: {order.title}"[:500],
                actor=actor,
                at=now,
                asset=order.asset,
                issues=order.detail,
                actions="; ".join(
                    x
                    for x in (
                        note,
                        f"parts: {', '.join(part_list)}" if part_list else "",
                        f"found: {failure_code}" if failure_code else "",
                    )
                    if x
                ),
                result="done",
                ref=f"wo:{order_id}",
            )
            order = _get(conn, order_id)
        for hook in self.on_done:
            try:
                hook(order)
            except Exception:  # the order is closed and committed: a hook's failure is logged, not the caller's
                log.exception("a hook on closing work order %s failed", order_id)
        return self.verify(order_id, actor=actor)

    def verify(self, order_id: int, *, actor: str, confirmed: bool = False) -> WorkOrder:
        """Re-run the opening condition of a done order (or take a person's confirmation)."""
        order = self.get(order_id)
        if order.state is not OrderState.DONE:
            return order
        verifier = self.verifiers.get(order.source)
        cleared = True if confirmed else (verifier(order) if verifier is not None else None)
        if cleared is None:
            return order
        if cleared:
            return self._move(order_id, OrderState.VERIFIED, actor, "verified", note="the condition has cleared")
        return self._move(
            order_id, OrderState.IN_PROGRESS, actor, "reopened", note="the condition that opened it still holds"
        )

    def _move(self, order_id: int, to: OrderState, actor: str, action: str, *, note: str = "") -> WorkOrder:
        now = self.clock.now()
        with self.db.begin() as conn:
            order = _get(conn, order_id)
            if to not in _MOVES[order.state]:
                raise InvalidInput(f"work order {order_id} is {order.state.value}; it cannot be {action}")
            values: dict[str, Any] = {"state": to.value, "updated_at": now}
            if to is OrderState.VERIFIED:
                values["verified_at"] = now
            conn.execute(update(work_orders).where(work_orders.c.id == order_id).values(**values))
            MaintenanceLog.append_in(
                conn,
                "work_order",
                f"work order {order_id} {action}: {order.title}"[:500],
                actor=actor,
                at=now,
                asset=order.asset,
                actions=note,
                result=action,
                ref=f"wo:{order_id}",
            )
            return _get(conn, order_id)

    def place(self, conn: Connection, placements: Sequence[tuple[int, str | None, datetime | None]]) -> None:
        """Planner: put open/planned orders into window slots, (order id, window, start); no window: back to open."""
        if not placements:
            return
        conn.execute(
            update(work_orders)
            .where(
                work_orders.c.id == bindparam("oid"),
                (work_orders.c.state == OrderState.OPEN.value) | (work_orders.c.state == OrderState.PLANNED.value),
            )
            .values(state=bindparam("new_state"), window_name=bindparam("wn"), planned_start=bindparam("ps")),
            [
                {
                    "oid": oid,
                    "new_state": (OrderState.PLANNED if window else OrderState.OPEN).value,
                    "wn": window,
                    "ps": start,
                }
                for oid, window, start in placements
            ],
        )

    # -- reads ----------------------------------------------------------------------------------

    def get(self, order_id: int) -> WorkOrder:
        with self.db.connect() as conn:
            return _get(conn, order_id)

    def active_for(self, asset: str, key: str) -> WorkOrder | None:
        with self.db.connect() as conn:
            row = _active(conn, asset, key)
        return _order(row) if row else None

    def list(
        self,
        *,
        state: OrderState | Sequence[OrderState] | None = None,
        asset: str | None = None,
        source: str | None = None,
        active: bool = False,
        limit: int = 1000,
    ) -> builtins.list[WorkOrder]:
        asset, source = param("asset", asset), param("source", source)
        query = select(work_orders).order_by(work_orders.c.priority.desc(), work_orders.c.id).limit(max(1, limit))
        if isinstance(state, OrderState):
            query = query.where(work_orders.c.state == state.value)
        elif state is not None:
            query = query.where(work_orders.c.state.in_([OrderState(s).value for s in state]))
        if active:
            query = query.where(work_orders.c.state.in_(ACTIVE))
        if asset is not None:
            query = query.where(work_orders.c.asset == asset)
        if source is not None:
            query = query.where(work_orders.c.source == source)
        with self.db.connect() as conn:
            return [_order(r) for r in conn.execute(query)]


def _active(conn: Connection, asset: str, key: str) -> Row[Any] | None:
    return conn.execute(
        select(work_orders).where(
            work_orders.c.asset == asset, work_orders.c.key == key, work_orders.c.state.in_(ACTIVE)
        )
    ).first()


def _get(conn: Connection, order_id: int) -> WorkOrder:
    row = conn.execute(select(work_orders).where(work_orders.c.id == order_id)).first()
    if row is None:
        raise NotFound(f"no work order with id {order_id}")
    return _order(row)


def _order(row: Row[Any]) -> WorkOrder:
    m = dict(row._mapping)
    m["state"], m["severity"] = OrderState(m["state"]), Severity(m["severity"])
    m["parts"] = json.loads(m["parts"])
    return WorkOrder(**m)
