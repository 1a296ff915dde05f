"""Emergency response: an incident of severity emergency, a runbook with timed steps, a timeline, a review.

`declare` opens (or raises to emergency) the incident, opens its work order and starts the
runbook run (the maintenance log's `emergency` entry comes from the incident feed, like every
incident's); the runbook's steps carry `within` limits from the start of the run, and a step
done later is marked overtime. `timeline` merges the incident's transitions, the runbook steps
and the maintenance log entries; `review` records the post-incident review with lessons learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pitstop.core.types import Severity
from pitstop.errors import InvalidInput, NotFound
from pitstop.incidents import Incident, IncidentRegistry
from pitstop.maintenance.kb import KnowledgeBase, Lesson
from pitstop.maintenance.runs import ProcedureRunner, Run
from pitstop.maintenance.workorders import WorkOrder, WorkOrderService

DEFAULT_RUNBOOK = "emergency-restore"


@dataclass(frozen=True, slots=True)
class Emergency:
    incident: Incident
    order: WorkOrder
    run: Run


class EmergencyResponse:
    def __init__(
        self,
        incidents: IncidentRegistry,
        runner: ProcedureRunner,
        orders: WorkOrderService,
        kb: KnowledgeBase,
    ) -> None:
        self.incidents = incidents
        self.runner = runner
        self.orders = orders
        self.kb = kb

    def declare(
        self, key: str, title: str, *, actor: str, runbook: str = DEFAULT_RUNBOOK, asset: str = ""
    ) -> Emergency:
        if not self.runner.catalog.get(runbook).procedure.runbook:
            raise InvalidInput(f"procedure {runbook} is not a runbook (runbook = true)")
        incident, _ = self.incidents.open_or_update(
            key, severity=Severity.EMERGENCY, title=title, source="maintenance", actor=actor
        )
        order, _ = self.orders.open_for(
            "emergency",
            asset,
            key,
            title=f"EMERGENCY: {incident.title}"[:500],
            severity=Severity.EMERGENCY,
            incident_id=incident.id,
            procedure=runbook,
            actor=actor,
        )
        run = self.runner.start(runbook, actor=actor, asset=asset, incident_key=key)
        return Emergency(incident, order, run)

    def timeline(self, key: str) -> list[dict[str, Any]]:
        incident = self.incidents.get(key)
        rows: list[dict[str, Any]] = [
            {"at": e.at.isoformat(), "who": e.actor, "what": f"incident {e.action}", "detail": e.detail}
            for e in self.incidents.timeline(incident.id)
        ]
        for run in self.runner.runs(limit=1000):
            if run.incident_key != key:
                continue
            for step in run.steps:
                if step.at is not None:
                    rows.append(
                        {
                            "at": step.at,
                            "who": step.by,
                            "what": f"runbook {run.procedure} step {step.id}: {step.status}",
                            "detail": {"overtime": step.overtime, "note": step.note},
                        }
                    )
        for lesson in self.kb.lessons(key):
            rows.append({"at": lesson.at.isoformat(), "who": lesson.author, "what": lesson.kind, "detail": lesson.text})
        return sorted(rows, key=lambda r: str(r["at"]))

    def review(self, key: str, *, summary: str, lessons: str, author: str) -> Lesson:
        try:
            incident = self.incidents.get(key)
        except NotFound:
            raise NotFound(f"no incident {key[:200]!r} to review") from None
        overtime = [
            f"{run.procedure}.{s.id}"
            for run in self.runner.runs(limit=1000)
            if run.incident_key == key
            for s in run.steps
            if s.overtime
        ]
        text = f"{summary.strip()}\n\nLessons learned:\n{lessons.strip()}"
        if overtime:
            text += f"\n\nSteps done later than the runbook allows: {', '.join(overtime)}"
        return self.kb.add_lesson(key, text, author=author, incident_id=incident.id, kind="review")
