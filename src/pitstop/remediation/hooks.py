"""How the engine reaches the rest of pitstop: the health checks (verification), the alert
channels and the maintenance work orders (escalation), and pitstop's own links (reconnect)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pitstop.alerts.base import Alert, AlertItem
from pitstop.core.types import Severity, Status
from pitstop.incidents import Incident

if TYPE_CHECKING:
    from pitstop.alerts.router import AlertRouter
    from pitstop.health.monitor import HealthMonitor
    from pitstop.remediation.engine import Escalate, Verifier
    from pitstop.remediation.store import Remediation
    from pitstop.storage.engine import Database

WORK_ORDER = "work_order"


def check_verifier(health: HealthMonitor) -> Verifier:
    """Re-run the check that opened the incident (source `check:<name>`, the incident's target)."""

    def verify(incident: Incident) -> tuple[bool, str] | None:
        name = incident.source.removeprefix("check:")
        for spec, check in health.runner().instances:
            if spec.check == name and spec.target == incident.target:
                try:
                    result = check.run(health.context)
                except Exception as exc:  # a broken check verifies nothing
                    return False, f"check {name} failed: {type(exc).__name__}: {exc}"[:500]
                health.results.save([result])
                return result.status is Status.HEALTHY, f"check {name}: {result.status.value}: {result.summary}"
        return None

    return verify


def escalator(router: AlertRouter, maintenance: Any | None, clock: Any) -> Escalate:
    """Escalate to an alert channel by name, or to a work order when maintenance is there."""

    def escalate(to: str, incident: Incident, title: str, body: str) -> tuple[bool, str]:
        if to == WORK_ORDER:
            if maintenance is None:
                return False, "no maintenance component to open a work order"
            order, created = maintenance.orders.open_for(
                "remediation",
                "",
                incident.key,
                title=title,
                severity=max(incident.severity, Severity.WARNING, key=lambda s: s.rank),
                detail=body,
                incident_id=incident.id,
                actor="remediation",
            )
            return True, f"work order {order.id} {'opened' if created else 'updated'}"
        if to not in router.notifiers:
            return False, f"no alert channel named {to!r}"
        now = clock.now()
        item = AlertItem(
            incident.key,
            "escalated",
            max(incident.severity, Severity.CRITICAL, key=lambda s: s.rank),
            f"{title}\n{body}",
            now,
            {"target": incident.target, "source": "remediation"},
        )
        # through the router: its retries, and a delivery record like every other notification
        (record,) = router.send(to, Alert({"target": incident.target}, (item,)), now)
        return record.outcome == "sent", f"{to}: {record.outcome if record.error is None else record.error}"

    return escalate


def maintenance_logger(maintenance: Any) -> Callable[[Remediation], None]:
    """Each finished remediation as one entry of the maintenance log (kind `remediation`)."""

    def append(r: Remediation) -> None:
        maintenance.log.append(
            "remediation",
            f"{r.action} on {r.target}: {r.state}"[:500],
            actor=f"remediation:{r.action}",
            issues=f"{r.incident_key}\nverification: {r.result}"[:20000],
            actions="; ".join(r.plan.steps)[:20000],
            result=r.state,
            ref=f"remediation:{r.id}",
        )

    return append


def own_links(background: Sequence[Any], db: Database) -> Mapping[str, object]:
    """pitstop's own links by name: its background parts and its database pool."""
    links: dict[str, object] = {"database": db}
    for part in background:
        links.setdefault(str(getattr(part, "name", "")), part)
    return links
