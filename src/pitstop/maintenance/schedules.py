"""Schedules: when a procedure is due.

- calendar: a cron expression or `every` N days/weeks; `fixed` (on the calendar) or `floating`
  (counted from the last completion). Each occurrence is a due row with a deadline: the end of
  the first occurrence of the schedule's maintenance window that starts after `due - lead`, or
  `due + grace` without a window. A missed window falls back as the window's capacity row says
  (`next`, `window:<name>`, `missed`), up to `max_fallbacks` times; then the occurrence is missed.
  A fixed occurrence still open when the next one comes due is missed too.
- meter: running hours or cycles from telemetry (`counter`: the sensor is the meter; `running`:
  hours while the sensor reads at or above `on_above`); due every `every` units since the last
  completion, `lead` units early.
- condition: an active incident whose key matches `pattern` opens a work order for the procedure.

Every due occurrence opens a work order (key `schedule.<name>`); completing the procedure, or
closing that order, completes the occurrence.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import Row, insert, select, update

from pitstop.core.clock import Clock
from pitstop.core.types import Severity, to_epoch_us
from pitstop.errors import InvalidInput, NotFound
from pitstop.incidents import IncidentRegistry, IncidentState
from pitstop.maintenance.common import duration, name, text
from pitstop.maintenance.cron import Cron
from pitstop.maintenance.log import MaintenanceLog
from pitstop.maintenance.procedures import Catalog
from pitstop.maintenance.windows import WindowCapacities
from pitstop.maintenance.workorders import OrderState, WorkOrder, WorkOrderService
from pitstop.storage.engine import Database
from pitstop.storage.repos.assets import AssetRepo
from pitstop.storage.repos.readings import ReadingRepo
from pitstop.storage.schema import maintenance_schedules, schedule_dues

Kind = Literal["calendar", "meter", "condition"]
CATCH_UP = 2000  # at most this many occurrences are settled in one tick


@dataclass(frozen=True, slots=True)
class Schedule:
    id: int
    name: str
    procedure: str
    asset: str
    site: str
    kind: str
    rule: dict[str, Any]
    enabled: bool
    last_done_at: datetime | None
    meter_base: float | None
    created_at: datetime

    @property
    def order_key(self) -> str:
        return f"schedule.{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "procedure": self.procedure,
            "asset": self.asset,
            "site": self.site,
            "kind": self.kind,
            "rule": self.rule,
            "enabled": self.enabled,
            "last_done_at": self.last_done_at.isoformat() if self.last_done_at else None,
            "meter_base": self.meter_base,
        }


@dataclass(frozen=True, slots=True)
class Due:
    id: int
    schedule_id: int
    due_at: datetime
    deadline: datetime
    state: str  # due, done, missed
    fallbacks: int
    completed_at: datetime | None
    work_order_id: int | None

    def status(self, now: datetime) -> str:
        """upcoming, due, overdue, on_time, late or missed."""
        if self.state == "done":
            assert self.completed_at is not None
            return "on_time" if self.completed_at <= self.deadline else "late"
        if self.state == "missed":
            return "missed"
        if now > self.deadline:
            return "overdue"
        return "due" if now >= self.due_at else "upcoming"

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "schedule_id": self.schedule_id,
            "due_at": self.due_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "status": self.status(now),
            "fallbacks": self.fallbacks,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "work_order_id": self.work_order_id,
        }


def check_rule(kind: str, rule: dict[str, Any]) -> dict[str, Any]:
    """A checked copy of a schedule rule; InvalidInput naming the problem otherwise."""
    rule = dict(rule)
    if kind == "calendar":
        allowed = {"cron", "every", "mode", "lead", "grace", "window", "anchor"}
        if (rule.get("cron") is None) == (rule.get("every") is None):
            raise InvalidInput("a calendar schedule needs either `cron` or `every`")
        mode = rule.setdefault("mode", "fixed")
        if mode not in ("fixed", "floating"):
            raise InvalidInput("calendar mode is fixed or floating")
        if rule.get("cron") is not None:
            if mode == "floating":
                raise InvalidInput("a floating schedule counts `every` from the last completion; cron is fixed")
            Cron.parse(str(rule["cron"]))
        else:
            if duration(rule["every"], "every") < timedelta(hours=1):
                raise InvalidInput("`every` must be at least 1h")
        duration(rule.setdefault("lead", "0h"), "lead")
        if rule.get("grace") is not None:
            duration(rule["grace"], "grace")
        if rule.get("window") is not None:
            text("window", str(rule["window"]), 200)
        if rule.get("anchor") is not None:
            try:
                if datetime.fromisoformat(str(rule["anchor"])).tzinfo is None:
                    raise ValueError
            except ValueError:
                raise InvalidInput("anchor must be an ISO date and time with a zone") from None
    elif kind == "meter":
        allowed = {"sensor", "mode", "every", "lead", "on_above", "grace", "base"}
        text("sensor", str(rule.get("sensor", "")), 200)
        if rule.setdefault("mode", "counter") not in ("counter", "running"):
            raise InvalidInput("meter mode is counter or running")
        for field in ("every", "lead", "on_above", "base"):
            value = rule.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise InvalidInput(f"meter {field} must be a number")
        if not 0 < float(rule.get("every") or 0) <= 1e9:
            raise InvalidInput("meter `every` must be a positive number of hours or cycles")
        if not 0 <= float(rule.setdefault("lead", 0)) < float(rule["every"]):
            raise InvalidInput("meter `lead` must be at least 0 and below `every`")
        if rule["mode"] == "running" and rule.get("on_above") is None:
            raise InvalidInput("a running-hours meter needs `on_above`: the reading at which the asset runs")
        duration(rule.setdefault("grace", "7d"), "grace")
    elif kind == "condition":
        allowed = {"pattern", "min_severity"}
        text("pattern", str(rule.get("pattern", "")), 500)
        try:
            Severity(rule.setdefault("min_severity", "warning"))
        except ValueError:
            raise InvalidInput("min_severity is info, warning, critical or emergency") from None
    else:
        raise InvalidInput(f"schedule kind {kind[:30]!r} is not calendar, meter or condition")
    unknown = set(rule) - allowed
    if unknown:
        raise InvalidInput(f"unknown {kind} schedule field(s): {', '.join(sorted(unknown))[:200]}")
    return rule


class ScheduleService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        catalog: Catalog,
        orders: WorkOrderService,
        capacities: WindowCapacities,
        incidents: IncidentRegistry,
        assets: AssetRepo,
        readings: ReadingRepo,
    ) -> None:
        self.db = db
        self.clock = clock
        self.catalog = catalog
        self.orders = orders
        self.capacities = capacities
        self.incidents = incidents
        self.assets = assets
        self.readings = readings
        orders.on_done.append(self._order_done)

    # -- definitions ----------------------------------------------------------------------------

    def add(
        self,
        schedule_name: str,
        procedure: str,
        kind: str,
        rule: dict[str, Any],
        *,
        asset: str = "",
        site: str = "",
        actor: str = "pitstop",
    ) -> Schedule:
        name("schedule name", schedule_name)
        self.catalog.get(procedure)
        rule = check_rule(kind, rule)
        asset = text("asset", asset, 200, required=False)
        site = text("site", site, 200, required=False)
        if kind == "meter" and not asset:
            raise InvalidInput("a meter schedule needs the asset whose sensor is the meter")
        now = self.clock.now()
        with self.db.begin() as conn:
            if conn.execute(
                select(maintenance_schedules.c.id).where(maintenance_schedules.c.name == schedule_name)
            ).first():
                raise InvalidInput(f"a schedule named {schedule_name!r} already exists")
            base = None
            if kind == "meter":
                base = float(rule["base"]) if rule.get("base") is not None else 0.0
            new = conn.execute(
                insert(maintenance_schedules).values(
                    name=schedule_name,
                    procedure=procedure,
                    asset=asset,
                    site=site,
                    kind=kind,
                    rule=json.dumps(rule, sort_keys=True),
                    enabled=1,
                    meter_base=base,
                    created_at=now,
                )
            ).inserted_primary_key
            assert new is not None
            MaintenanceLog.append_in(
                conn, "note", f"schedule {schedule_name} added for {procedure}", actor=actor, at=now, asset=asset
            )
        return self.get(schedule_name)

    def enable(self, procedure: str, *, asset: str = "", site: str = "", actor: str = "pitstop") -> Schedule:
        """Enable the schedule a procedure file suggests, named after the procedure (and asset)."""
        spec = self.catalog.get(procedure).procedure.schedule
        if spec is None:
            raise InvalidInput(f"procedure {procedure} suggests no schedule; add one with an explicit rule")
        rule = {k: v for k, v in spec.model_dump().items() if v is not None}
        schedule_name = f"{procedure}.{asset}" if asset else procedure
        return self.add(schedule_name, procedure, "calendar", rule, asset=asset, site=site, actor=actor)

    def get(self, schedule_name: str) -> Schedule:
        text("schedule name", schedule_name, 200)
        with self.db.connect() as conn:
            row = conn.execute(
                select(maintenance_schedules).where(maintenance_schedules.c.name == schedule_name)
            ).first()
        if row is None:
            raise NotFound(f"no schedule named {schedule_name[:200]!r}")
        return _schedule(row)

    def schedules(self) -> list[Schedule]:
        with self.db.connect() as conn:
            return [
                _schedule(r) for r in conn.execute(select(maintenance_schedules).order_by(maintenance_schedules.c.name))
            ]

    def dues(self, schedule_id: int | None = None, *, since: datetime | None = None) -> list[Due]:
        query = select(schedule_dues).order_by(schedule_dues.c.due_at, schedule_dues.c.id)
        if schedule_id is not None:
            query = query.where(schedule_dues.c.schedule_id == schedule_id)
        if since is not None:
            query = query.where(schedule_dues.c.due_at >= since)
        with self.db.connect() as conn:
            return [_due(r) for r in conn.execute(query)]

    def open_due(self, schedule_id: int) -> Due | None:
        with self.db.connect() as conn:
            row = conn.execute(
                select(schedule_dues)
                .where(schedule_dues.c.schedule_id == schedule_id, schedule_dues.c.state == "due")
                .order_by(schedule_dues.c.id.desc())
            ).first()
        return _due(row) if row else None

    # -- time passes ----------------------------------------------------------------------------

    def tick(self) -> list[str]:
        """Bring every enabled schedule up to now; returns what happened, one line each."""
        events: list[str] = []
        for schedule in self.schedules():
            if not schedule.enabled:
                continue
            if schedule.kind == "calendar":
                events += self._tick_calendar(schedule)
            elif schedule.kind == "meter":
                events += self._tick_meter(schedule)
            else:
                events += self._tick_condition(schedule)
        return events

    def _tick_calendar(self, s: Schedule) -> list[str]:
        now = self.clock.now()
        events: list[str] = []
        for _ in range(CATCH_UP):
            current = self.open_due(s.id)
            if current is not None:
                windowed = bool(s.rule.get("window"))
                if windowed and now > current.deadline and self._fall_back(s, current, now):
                    events.append(f"{s.name}: window missed, falls back")
                    continue
                if not (windowed and now > current.deadline) and not self._superseded(s, current, now):
                    return events  # still open: due, or overdue until done
                self._settle_missed(s, current, now)
                events.append(f"{s.name}: occurrence due {current.due_at.isoformat()} missed")
                s = self._reload(s)
                continue
            due_at = self._next_due(s)
            lead = duration(s.rule.get("lead", "0h"))
            if now < due_at - lead:
                return events
            deadline = self._deadline(s, due_at)
            self._create_due(s, due_at, deadline)
            events.append(f"{s.name}: due {due_at.isoformat()}")
        return events

    def _superseded(self, s: Schedule, current: Due, now: datetime) -> bool:
        """A fixed occurrence is missed once the next one comes due (floating ones wait)."""
        if s.rule.get("mode") != "fixed":
            return False
        following = self._after(s, current.due_at)
        return now >= following and now > current.deadline

    def _next_due(self, s: Schedule) -> datetime:
        with self.db.connect() as conn:
            row = conn.execute(
                select(schedule_dues).where(schedule_dues.c.schedule_id == s.id).order_by(schedule_dues.c.id.desc())
            ).first()
        last = _due(row) if row is not None else None
        anchor = datetime.fromisoformat(s.rule["anchor"]) if s.rule.get("anchor") else s.created_at
        if s.rule.get("mode") == "floating":
            every = duration(s.rule["every"])
            if last is not None and last.state == "missed":
                return max(last.deadline, last.due_at)  # still needed: due again at once
            return (s.last_done_at or anchor) + every
        if last is None:
            if s.rule.get("cron"):
                return Cron.parse(s.rule["cron"]).next_after(anchor - timedelta(microseconds=1))
            return anchor + duration(s.rule["every"])
        return self._after(s, last.due_at)

    def _after(self, s: Schedule, due_at: datetime) -> datetime:
        if s.rule.get("cron"):
            return Cron.parse(str(s.rule["cron"])).next_after(due_at)
        return due_at + duration(s.rule["every"])

    def _deadline(self, s: Schedule, due_at: datetime) -> datetime:
        window = s.rule.get("window")
        if window:
            slot = self.capacities.next_slot(window, due_at - duration(s.rule.get("lead", "0h")))
            if slot is not None:
                return slot[1]
        grace = s.rule.get("grace")
        if grace is not None:
            return due_at + duration(grace)
        return due_at + min(timedelta(days=1), self._after(s, due_at) - due_at)

    def _fall_back(self, s: Schedule, current: Due, now: datetime) -> bool:
        """Move a missed window's occurrence to its fallback window; False when none is left."""
        window = s.rule.get("window")
        if not window:
            return False
        cap = self.capacities.get(window)
        rule, limit = (cap.fallback, cap.max_fallbacks) if cap else ("next", 1)
        if rule == "missed" or current.fallbacks >= limit:
            return False
        target = window if rule == "next" else rule[len("window:") :]
        slot = self.capacities.next_slot(target, current.deadline)
        if slot is None:
            return False
        with self.db.begin() as conn:
            conn.execute(
                update(schedule_dues)
                .where(schedule_dues.c.id == current.id)
                .values(deadline=slot[1], fallbacks=current.fallbacks + 1)
            )
            MaintenanceLog.append_in(
                conn,
                "note",
                f"{s.name}: window {window} missed; falls back to {target} until {slot[1].isoformat()}",
                actor="scheduler",
                at=now,
                asset=s.asset,
                result="fallback",
            )
        return True

    def _settle_missed(self, s: Schedule, current: Due, now: datetime) -> None:
        with self.db.begin() as conn:
            conn.execute(update(schedule_dues).where(schedule_dues.c.id == current.id).values(state="missed"))
            MaintenanceLog.append_in(
                conn,
                "note",
                f"{s.name}: occurrence due {current.due_at.isoformat()} missed",
                actor="scheduler",
                at=now,
                asset=s.asset,
                result="missed",
            )
        if current.work_order_id is not None:
            order = self.orders.get(current.work_order_id)
            if order.state in (OrderState.OPEN, OrderState.PLANNED):
                self.orders.cancel(order.id, actor="scheduler", reason="the occurrence was missed")

    def _create_due(self, s: Schedule, due_at: datetime, deadline: datetime, detail: str = "") -> Due:
        proc = self.catalog.get(s.procedure).procedure
        order, _ = self.orders.open_for(
            "schedule",
            s.asset,
            s.order_key,
            title=f"{proc.title}" + (f" on {s.asset}" if s.asset else ""),
            detail=detail or f"scheduled by {s.name}, due {due_at.isoformat()}",
            due_at=deadline,
            estimated_h=proc.estimated_hours,
            procedure=s.procedure,
            actor="scheduler",
        )
        with self.db.begin() as conn:
            new = conn.execute(
                insert(schedule_dues).values(
                    schedule_id=s.id, due_at=due_at, deadline=deadline, state="due", work_order_id=order.id
                )
            ).inserted_primary_key
            assert new is not None
            row = conn.execute(select(schedule_dues).where(schedule_dues.c.id == int(new[0]))).one()
        return _due(row)

    # -- meters ---------------------------------------------------------------------------------

    def meter(self, s: Schedule, at: datetime | None = None) -> float:
        """The meter of a meter schedule now: the counter's latest value, or running hours so far."""
        at = at or self.clock.now()
        sensor = next((x for x in self.assets.sensors(s.asset) if x.name == s.rule["sensor"]), None)
        if sensor is None:
            raise NotFound(f"asset {s.asset!r} has no sensor {s.rule['sensor']!r}")
        end = to_epoch_us(at) + 1
        if s.rule.get("mode", "counter") == "counter":
            frame = self.readings.window(sensor.id, to_epoch_us(at - timedelta(days=30)), end)
            if frame.empty:
                frame = self.readings.window(sensor.id, None, end)
            return float(frame["value"].iloc[-1]) if not frame.empty else 0.0
        frame = self.readings.window(sensor.id, to_epoch_us(s.created_at), end)
        if len(frame) < 2:
            return 0.0
        ts = (pd.DatetimeIndex(frame.index) - pd.Timestamp(0, tz="UTC")).total_seconds().to_numpy()
        gaps = np.minimum(np.diff(ts), 2 * sensor.period_s)
        running = frame["value"].to_numpy()[:-1] >= float(s.rule["on_above"])
        return float(gaps[running].sum() / 3600.0)

    def _tick_meter(self, s: Schedule) -> list[str]:
        if self.open_due(s.id) is not None:
            return []
        value = self.meter(s)
        base = s.meter_base or 0.0
        every, lead = float(s.rule["every"]), float(s.rule.get("lead", 0))
        if value < base + every - lead:
            return []
        now = self.clock.now()
        self._create_due(
            s,
            now,
            now + duration(s.rule.get("grace", "7d")),
            detail=f"meter {s.rule['sensor']} at {value:g} (due at {base + every:g}, last service at {base:g})",
        )
        return [f"{s.name}: meter {value:g} reached {base + every - lead:g}"]

    # -- conditions -----------------------------------------------------------------------------

    def _tick_condition(self, s: Schedule) -> list[str]:
        pattern, floor = s.rule["pattern"], Severity(s.rule.get("min_severity", "warning"))
        proc = self.catalog.get(s.procedure).procedure
        assets = {a.name for a in self.assets.list_assets()}
        events = []
        active = [IncidentState.OPEN, IncidentState.ACKNOWLEDGED, IncidentState.SUPPRESSED]
        for incident in self.incidents.list(state=active, limit=10_000):
            if not fnmatch.fnmatchcase(incident.key, pattern) or incident.severity.rank < floor.rank:
                continue
            asset = incident.target if incident.target in assets else (s.asset or "")
            _, created = self.orders.open_for(
                "incident",
                asset,
                incident.key,
                title=incident.title,
                detail=f"{incident.detail or ''}\nprocedure: {proc.title}".strip(),
                severity=incident.severity,
                estimated_h=proc.estimated_hours,
                incident_id=incident.id,
                procedure=s.procedure,
                actor="scheduler",
            )
            if created:
                events.append(f"{s.name}: incident {incident.key} opened a work order")
        return events

    # -- completion -----------------------------------------------------------------------------

    def complete(self, s: Schedule, *, at: datetime, ref: str = "", close_order: bool = True, actor: str = "") -> None:
        """Count a completion: the open occurrence is done, floating and meter schedules restart from here."""
        current = self.open_due(s.id)
        values: dict[str, Any] = {"last_done_at": at}
        if s.kind == "meter":
            values["meter_base"] = self.meter(s, at)
        with self.db.begin() as conn:
            conn.execute(update(maintenance_schedules).where(maintenance_schedules.c.id == s.id).values(**values))
            if current is not None:
                conn.execute(
                    update(schedule_dues).where(schedule_dues.c.id == current.id).values(state="done", completed_at=at)
                )
        if current is not None and close_order and current.work_order_id is not None:
            order = self.orders.get(current.work_order_id)
            if order.state.active and order.state is not OrderState.DONE:
                self.orders.close(order.id, actor=actor or "scheduler", note=f"completed by {ref}".strip())

    def completed_by_run(self, procedure: str, asset: str, at: datetime, ref: str, actor: str) -> None:
        for s in self.schedules():
            if s.procedure == procedure and s.asset == asset and s.kind in ("calendar", "meter"):
                self.complete(s, at=at, ref=ref, actor=actor)

    def _order_done(self, order: WorkOrder) -> None:
        if order.source != "schedule":
            return
        with self.db.connect() as conn:
            row = conn.execute(
                select(schedule_dues.c.schedule_id).where(
                    schedule_dues.c.work_order_id == order.id, schedule_dues.c.state == "due"
                )
            ).first()
            sched = (
                conn.execute(select(maintenance_schedules).where(maintenance_schedules.c.id == row[0])).first()
                if row
                else None
            )
        if sched is not None:
            self.complete(
                _schedule(sched), at=order.closed_at or self.clock.now(), ref=f"wo:{order.id}", close_order=False
            )

    def order_cleared(self, order: WorkOrder) -> bool | None:
        """Verifier for schedule orders: cleared once its occurrence is done."""
        with self.db.connect() as conn:
            row = conn.execute(select(schedule_dues.c.state).where(schedule_dues.c.work_order_id == order.id)).first()
        return None if row is None else row[0] == "done"

    def _reload(self, s: Schedule) -> Schedule:
        return self.get(s.name)


def _schedule(row: Row[Any]) -> Schedule:
    m = row._mapping
    return Schedule(
        id=m["id"],
        name=m["name"],
        procedure=m["procedure"],
        asset=m["asset"],
        site=m["site"],
        kind=m["kind"],
        rule=json.loads(m["rule"]),
        enabled=bool(m["enabled"]),
        last_done_at=m["last_done_at"],
        meter_base=m["meter_base"],
        created_at=m["created_at"],
    )


def _due(row: Row[Any]) -> Due:
    m = row._mapping
    return Due(
        id=m["id"],
        schedule_id=m["schedule_id"],
        due_at=m["due_at"],
        deadline=m["deadline"],
        state=m["state"],
        fallbacks=m["fallbacks"],
        completed_at=m["completed_at"],
        work_order_id=m["work_order_id"],
    )
