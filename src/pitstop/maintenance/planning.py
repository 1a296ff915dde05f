"""Planning: put active work orders into maintenance-window occurrences without exceeding capacity.

Orders are taken by priority (high first), then due date (earliest first), then age. Each goes
into the earliest occurrence that serves its asset and still has the hours it needs; if that
occurrence ends after the order's due date it is placed as late. What cannot be placed is
reported with the reason. `plan()` is pure; `Planner` reads and writes the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pitstop.core.clock import Clock
from pitstop.incidents.windows import MuteStore
from pitstop.maintenance.log import MaintenanceLog
from pitstop.maintenance.windows import Capacity, WindowCapacities
from pitstop.maintenance.workorders import OrderState, WorkOrderService
from pitstop.storage.engine import Database
from pitstop.storage.repos.assets import AssetRepo

FAR = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Slot:
    window: str
    start: datetime
    end: datetime
    capacity_h: float
    sites: frozenset[str] = frozenset()
    assets: frozenset[str] = frozenset()

    def serves(self, asset: str, site: str) -> bool:
        return (not self.sites or site in self.sites) and (not self.assets or asset in self.assets)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    asset: str
    site: str
    priority: int
    due_at: datetime | None
    hours: float


@dataclass(frozen=True, slots=True)
class Placement:
    order_id: int
    window: str
    start: datetime
    end: datetime
    hours: float
    late: bool


@dataclass(frozen=True, slots=True)
class Unplaced:
    order_id: int
    reason: str


@dataclass
class PlanResult:
    placements: list[Placement] = field(default_factory=list)
    unplaced: list[Unplaced] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    used_h: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "placed": [
                {
                    "order": p.order_id,
                    "window": p.window,
                    "start": p.start.isoformat(),
                    "end": p.end.isoformat(),
                    "hours": p.hours,
                    "late": p.late,
                }
                for p in self.placements
            ],
            "unplaced": [{"order": u.order_id, "reason": u.reason} for u in self.unplaced],
            "windows": [
                {
                    "window": s.window,
                    "start": s.start.isoformat(),
                    "end": s.end.isoformat(),
                    "capacity_h": s.capacity_h,
                    "used_h": round(used, 3),
                }
                for s, used in zip(self.slots, self.used_h, strict=True)
            ],
        }


def plan(jobs: Sequence[Job], slots: Sequence[Slot]) -> PlanResult:
    """Place jobs into slots; never more hours into a slot than its capacity."""
    ordered_slots = sorted(slots, key=lambda s: (s.start, s.window))
    remaining = [s.capacity_h for s in ordered_slots]
    result = PlanResult(slots=list(ordered_slots))
    serving: dict[tuple[str, str], list[int]] = {}
    for job in sorted(jobs, key=lambda j: (-j.priority, j.due_at or FAR, j.id)):
        scope = (job.asset, job.site)
        candidates = serving.get(scope)
        if candidates is None:
            candidates = serving[scope] = [i for i, s in enumerate(ordered_slots) if s.serves(job.asset, job.site)]
        chosen = -1
        for i in candidates:
            if remaining[i] + 1e-9 >= job.hours:
                chosen = i
                break
        if chosen < 0:
            result.unplaced.append(
                Unplaced(job.id, _why(job, [ordered_slots[i] for i in candidates], remaining, candidates))
            )
            continue
        remaining[chosen] -= job.hours
        slot = ordered_slots[chosen]
        late = job.due_at is not None and slot.end > job.due_at
        result.placements.append(Placement(job.id, slot.window, slot.start, slot.end, job.hours, late))
    result.used_h = [s.capacity_h - r for s, r in zip(ordered_slots, remaining, strict=True)]
    return result


def _why(job: Job, candidates: list[Slot], remaining: list[float], indexes: list[int]) -> str:
    where = f"asset {job.asset}" if job.asset else "the system"
    if job.site:
        where += f" (site {job.site})"
    if not candidates:
        return f"no maintenance window with capacity in the horizon serves {where}"
    largest = max(s.capacity_h for s in candidates)
    if job.hours > largest:
        return f"needs {job.hours:g} h; the largest window serving {where} offers {largest:g} h"
    free = max(remaining[i] for i in indexes)
    return (
        f"needs {job.hours:g} h; the {len(candidates)} window occurrence(s) serving {where} are full "
        f"(most free: {free:g} h)"
    )


class Planner:
    def __init__(
        self, db: Database, clock: Clock, orders: WorkOrderService, capacities: WindowCapacities, assets: AssetRepo
    ) -> None:
        self.db = db
        self.clock = clock
        self.orders = orders
        self.capacities = capacities
        self.assets = assets

    def slots(self, start: datetime, end: datetime) -> list[Slot]:
        caps: dict[str, Capacity] = self.capacities.all()
        out = []
        for window in MuteStore(self.db).windows():
            cap = caps.get(window.name)
            if cap is None or cap.capacity_h <= 0:
                continue
            for begin, finish in window.occurrences(start, end):
                if begin >= start:
                    out.append(Slot(window.name, begin, finish, cap.capacity_h, cap.sites, cap.assets))
        return out

    def plan(self, horizon: timedelta, *, apply: bool = True, actor: str = "planner") -> PlanResult:
        """Replan every open or planned order into the window occurrences starting in the horizon.

        An order already planned into an occurrence beyond the horizon keeps its place: a short
        replan must not undo a longer one.
        """
        now = self.clock.now()
        sites = {a.name: a.site for a in self.assets.list_assets()}
        orders = [
            o
            for o in self.orders.list(state=[OrderState.OPEN, OrderState.PLANNED], limit=1_000_000)
            if not (o.state is OrderState.PLANNED and o.planned_start is not None and o.planned_start >= now + horizon)
        ]
        jobs = [Job(o.id, o.asset, sites.get(o.asset, ""), o.priority, o.due_at, o.estimated_h) for o in orders]
        result = plan(jobs, self.slots(now, now + horizon))
        if apply:
            with self.db.begin() as conn:
                self.orders.place(
                    conn,
                    [(p.order_id, p.window, p.start) for p in result.placements]
                    + [(u.order_id, None, None) for u in result.unplaced],
                )
                MaintenanceLog.append_in(
                    conn,
                    "note",
                    f"planned {len(result.placements)} work order(s) over {horizon}; "
                    f"{len(result.unplaced)} could not be placed",
                    actor=actor,
                    at=now,
                    issues=_summary(result.unplaced),
                    result="planned",
                )
        return result


def _summary(unplaced: Sequence[Unplaced], shown: int = 50) -> str:
    lines = [f"wo:{u.order_id}: {u.reason}"[:300] for u in unplaced[:shown]]
    if len(unplaced) > shown:
        lines.append(f"... and {len(unplaced) - shown} more")
    return "\n".join(lines)
