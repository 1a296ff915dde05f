"""Compliance and KPIs, computed from the records (nothing is counted twice or kept separately).

- compliance: occurrences of calendar and meter schedules due in a period, each on time
  (completed by its deadline), late (completed after), missed, or still open;
- MTTR: mean hours from opening to closing of corrective work orders closed in the period;
- MTBF: asset operating hours in the period / corrective work orders opened in it;
- backlog: active work orders, their estimated hours, how many are past their due date;
- self-healing success rate: from the self-healing engine's records when they exist, else n/a.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, column, func, inspect, select, table

from pitstop.maintenance.common import param
from pitstop.maintenance.workorders import ACTIVE, OrderState
from pitstop.storage.engine import Database
from pitstop.storage.schema import assets, maintenance_schedules, schedule_dues, sites, work_orders

PREVENTIVE = ("schedule", "meter")


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def compliance(db: Database, *, since: datetime, until: datetime, site: str | None = None) -> dict[str, Any]:
    param("site", site)
    query = (
        select(
            maintenance_schedules.c.name,
            maintenance_schedules.c.procedure,
            maintenance_schedules.c.site,
            maintenance_schedules.c.asset,
            schedule_dues.c.state,
            schedule_dues.c.deadline,
            schedule_dues.c.completed_at,
            sites.c.name.label("asset_site"),
        )
        .join(maintenance_schedules, maintenance_schedules.c.id == schedule_dues.c.schedule_id)
        .outerjoin(assets, assets.c.name == maintenance_schedules.c.asset)
        .outerjoin(sites, sites.c.id == assets.c.site_id)
        .where(schedule_dues.c.due_at >= since, schedule_dues.c.due_at < until)
    )
    per_schedule: dict[str, dict[str, Any]] = {}
    per_site: dict[str, dict[str, int]] = defaultdict(lambda: {"on_time": 0, "late": 0, "missed": 0, "open": 0})
    with db.connect() as conn:
        rows = conn.execute(query).all()
    for r in rows:
        where = r.site or r.asset_site or ""
        if site is not None and where != site:
            continue
        if r.state == "done":
            outcome = "on_time" if r.completed_at <= r.deadline else "late"
        elif r.state == "missed":
            outcome = "missed"
        else:
            outcome = "open"
        entry = per_schedule.setdefault(
            r.name,
            {
                "schedule": r.name,
                "procedure": r.procedure,
                "site": where,
                "on_time": 0,
                "late": 0,
                "missed": 0,
                "open": 0,
            },
        )
        entry[outcome] += 1
        per_site[where][outcome] += 1
    for counts in [*per_schedule.values(), *per_site.values()]:
        decided = counts["on_time"] + counts["late"] + counts["missed"]
        counts["compliance_pct"] = _pct(counts["on_time"], decided)
    total = {k: sum(c[k] for c in per_schedule.values()) for k in ("on_time", "late", "missed", "open")}
    total["compliance_pct"] = _pct(total["on_time"], total["on_time"] + total["late"] + total["missed"])
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "site": site,
        "total": total,
        "schedules": sorted(per_schedule.values(), key=lambda c: c["schedule"]),
        "sites": {k: v for k, v in sorted(per_site.items())},
    }


def _asset_filter(site: str | None) -> Any:
    if site is None:
        return None
    return work_orders.c.asset.in_(
        select(assets.c.name).join(sites, sites.c.id == assets.c.site_id).where(sites.c.name == site)
    )


def kpis(db: Database, *, since: datetime, until: datetime, now: datetime, site: str | None = None) -> dict[str, Any]:
    scope = _asset_filter(param("site", site))
    corrective = work_orders.c.source.not_in(PREVENTIVE)
    with db.connect() as conn:

        def where(*conds: Any) -> Any:
            return and_(*conds, scope) if scope is not None else and_(*conds)

        closed = conn.execute(
            select(work_orders.c.opened_at, work_orders.c.closed_at).where(
                where(corrective, work_orders.c.closed_at >= since, work_orders.c.closed_at < until)
            )
        ).all()
        failures = conn.execute(
            select(func.count()).where(
                where(corrective, work_orders.c.opened_at >= since, work_orders.c.opened_at < until)
            )
        ).scalar_one()
        n_assets_query = select(func.count()).select_from(assets)
        if site is not None:
            n_assets_query = n_assets_query.join(sites, sites.c.id == assets.c.site_id).where(sites.c.name == site)
        n_assets = conn.execute(n_assets_query).scalar_one()
        active = conn.execute(
            select(func.count(), func.coalesce(func.sum(work_orders.c.estimated_h), 0.0)).where(
                where(work_orders.c.state.in_(ACTIVE))
            )
        ).one()
        overdue = conn.execute(
            select(func.count()).where(where(work_orders.c.state.in_(ACTIVE), work_orders.c.due_at < now))
        ).scalar_one()
        by_state: dict[str, int] = dict(
            conn.execute(
                select(work_orders.c.state, func.count())
                .where(where(work_orders.c.state.in_(ACTIVE)))
                .group_by(work_orders.c.state)
            ).all()
        )
    repair_h = [(c - o).total_seconds() / 3600 for o, c in closed]
    period_h = (until - since).total_seconds() / 3600
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "site": site,
        "mttr_h": round(sum(repair_h) / len(repair_h), 2) if repair_h else None,
        "repairs": len(repair_h),
        "mtbf_h": round(period_h * n_assets / failures, 1) if failures else None,
        "failures": int(failures),
        "backlog": {
            "orders": int(active[0]),
            "estimated_h": round(float(active[1]), 2),
            "overdue": int(overdue),
            "by_state": {OrderState(k).value: int(v) for k, v in by_state.items()},
        },
        "self_healing": self_healing(db, since=since, until=until),
    }


def self_healing(db: Database, *, since: datetime, until: datetime) -> dict[str, Any] | str:
    """Healed share of the self-healing engine's finished attempts (state healed or failed) in the period,
    read from its `remediations` table; "n/a" where that table does not exist."""
    try:
        with db.connect() as conn:
            if not inspect(conn).has_table("remediations"):
                return "n/a"
            t = table("remediations", column("state"), column("finished_at"))
            counts: dict[str, int] = dict(
                conn.execute(
                    select(t.c.state, func.count())
                    .where(t.c.state.in_(["healed", "failed"]), t.c.finished_at >= since, t.c.finished_at < until)
                    .group_by(t.c.state)
                ).all()
            )
    except Exception:  # a self-healing record we cannot read is no figure, not a failed report
        return "n/a"
    ok, bad = int(counts.get("healed", 0)), int(counts.get("failed", 0))
    return {"healed": ok, "failed": bad, "success_pct": _pct(ok, ok + bad)}
