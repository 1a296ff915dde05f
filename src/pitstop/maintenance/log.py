"""The maintenance log: one append-only record of everything done to an asset or to the system.

People (procedure runs, work orders) and pitstop (remediations, model promotions, backups, the
stages of a software update) write here through `append`; every incident's life (opened,
severity changed, acknowledged, suppressed, resolved) comes from the incident feed
(`record_transitions`); an emergency's declaration is that subscriber's entry of kind
`emergency`. Rows are never updated or deleted; a correction is another entry.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, insert, select

from pitstop.core.clock import Clock
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput
from pitstop.incidents.feed import Transition
from pitstop.maintenance.common import dumps, param, site_of, text
from pitstop.storage.engine import Database
from pitstop.storage.schema import assets, maintenance_log

KINDS = (
    "incident",
    "procedure_run",
    "work_order",
    "remediation",
    "model_training",
    "model_promotion",
    "backup",
    "update",
    "emergency",
    "review",
    "report",
    "note",
)
# incident transitions the log records, and how an entry words them
_LOGGED = {
    "opened": "opened",
    "acknowledged": "acknowledged",
    "suppressed": "suppressed",
    "resolved": "resolved",
    "escalated": "escalated",
}
FIELDS = ("id", "at", "kind", "asset", "site", "actor", "summary", "issues", "actions", "result", "evidence", "ref")


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    at: datetime
    kind: str
    asset: str
    site: str
    actor: str
    summary: str
    issues: str
    actions: str
    result: str
    evidence: list[str]
    ref: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


class MaintenanceLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def append(
        self,
        kind: str,
        summary: str,
        *,
        actor: str,
        asset: str = "",
        issues: str = "",
        actions: str = "",
        result: str = "",
        evidence: Sequence[str] = (),
        ref: str = "",
    ) -> LogEntry:
        """Record something done (what, by whom or which component, what was found and done, the result)."""
        with self.db.begin() as conn:
            entry_id = self.append_in(
                conn,
                kind,
                summary,
                actor=actor,
                asset=asset,
                issues=issues,
                actions=actions,
                result=result,
                evidence=evidence,
                ref=ref,
                at=self.clock.now(),
            )
            return _entry(conn.execute(select(maintenance_log).where(maintenance_log.c.id == entry_id)).one())

    @staticmethod
    def append_in(
        conn: Connection,
        kind: str,
        summary: str,
        *,
        actor: str,
        at: datetime,
        asset: str = "",
        issues: str = "",
        actions: str = "",
        result: str = "",
        evidence: Sequence[str] = (),
        ref: str = "",
    ) -> int:
        """`append` inside the caller's transaction (so the log and the change commit together)."""
        if kind not in KINDS:
            raise InvalidInput(f"log kind {kind[:40]!r} is not one of {', '.join(KINDS)}")
        asset = text("asset", asset, 200, required=False)
        links = [text("evidence link", e, 1000) for e in evidence]
        if len(links) > 50:
            raise InvalidInput("at most 50 evidence links per entry")
        key = conn.execute(
            insert(maintenance_log).values(
                at=at,
                kind=kind,
                asset=asset,
                site=site_of(conn, asset),
                actor=text("actor", actor, 200),
                summary=text("summary", summary, 500),
                issues=text("issues", issues, 20000, required=False),
                actions=text("actions", actions, 20000, required=False),
                result=text("result", result, 50, required=False),
                evidence=dumps(links),
                ref=text("ref", ref, 200, required=False),
            )
        ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def record_transitions(self, transitions: Sequence[Transition]) -> None:
        """The log's subscription to the incident feed: one entry when an incident opens, changes
        severity, is escalated to someone on call, is acknowledged, suppressed or resolved, by whom
        or what. Idempotent by transition
        (the entry's ref is `incident-event:<id>`), so a transition handed over again is logged once."""
        wanted = [t for t in transitions if t.action in _LOGGED or (t.action == "updated" and "severity" in t.detail)]
        if not wanted:
            return
        refs = {f"incident-event:{t.id}": t for t in wanted}
        with self.db.begin() as conn:
            done = set(
                conn.execute(select(maintenance_log.c.ref).where(maintenance_log.c.ref.in_(list(refs)))).scalars()
            )
            for ref, t in refs.items():
                if ref in done:
                    continue
                target = t.key.partition(":")[2]
                asset = target if conn.execute(select(assets.c.id).where(assets.c.name == target)).first() else ""
                what = _LOGGED.get(t.action, f"severity {t.severity.value}")
                reason = str(t.detail.get("reason") or t.detail.get("note") or t.detail.get("paged") or "")
                # an emergency (declared, or an incident risen to one) is the log's `emergency` entry
                emergency = t.severity is Severity.EMERGENCY and (t.action == "opened" or "severity" in t.detail)
                self.append_in(
                    conn,
                    "emergency" if emergency else "incident",
                    f"{t.key} {what}: {t.title}"[:500],
                    actor=t.actor or "pitstop",
                    at=t.at,
                    asset=asset,
                    issues=t.title,
                    actions=reason,
                    result=t.to_state.value,
                    ref=ref,
                )

    def entries(
        self,
        *,
        asset: str | None = None,
        site: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        contains: str | None = None,
        limit: int = 1000,
    ) -> list[LogEntry]:
        """Oldest first, filtered."""
        asset, site, kind = param("asset", asset), param("site", site), param("kind", kind)
        contains = param("contains", contains)
        query = select(maintenance_log).order_by(maintenance_log.c.at, maintenance_log.c.id).limit(max(1, limit))
        if asset is not None:
            query = query.where(maintenance_log.c.asset == asset)
        if site is not None:
            query = query.where(maintenance_log.c.site == site)
        if kind is not None:
            query = query.where(maintenance_log.c.kind == kind)
        if since is not None:
            query = query.where(maintenance_log.c.at >= since)
        if until is not None:
            query = query.where(maintenance_log.c.at < until)
        if contains:
            pattern = f"%{contains}%"
            query = query.where(
                maintenance_log.c.summary.like(pattern)
                | maintenance_log.c.issues.like(pattern)
                | maintenance_log.c.actions.like(pattern)
            )
        with self.db.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]


def export(entries: Sequence[LogEntry], fmt: Literal["csv", "json"]) -> str:
    if fmt == "json":
        return json.dumps([e.as_dict() for e in entries], indent=1)
    if fmt != "csv":
        raise InvalidInput(f"export format {fmt!r} is not csv or json")
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(FIELDS)
    for e in entries:
        row = e.as_dict()
        row["evidence"] = " ".join(e.evidence)
        writer.writerow([row[f] for f in FIELDS])
    return buf.getvalue()


def _entry(row: Row[Any]) -> LogEntry:
    m = row._mapping
    return LogEntry(
        id=m["id"],
        at=m["at"],
        kind=m["kind"],
        asset=m["asset"],
        site=m["site"],
        actor=m["actor"],
        summary=m["summary"],
        issues=m["issues"],
        actions=m["actions"],
        result=m["result"],
        evidence=json.loads(m["evidence"]),
        ref=m["ref"],
    )
