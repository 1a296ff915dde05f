"""`Maintenance`: the maintenance component, one object wiring its services together."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pitstop.core.clock import Clock
from pitstop.core.types import Severity
from pitstop.incidents import IncidentRegistry, IncidentState
from pitstop.maintenance import kpis
from pitstop.maintenance.emergency import DEFAULT_RUNBOOK, EmergencyResponse
from pitstop.maintenance.kb import KnowledgeBase
from pitstop.maintenance.log import MaintenanceLog
from pitstop.maintenance.planning import Planner
from pitstop.maintenance.procedures import Catalog
from pitstop.maintenance.runs import ProcedureRunner, Run
from pitstop.maintenance.schedules import ScheduleService
from pitstop.maintenance.windows import WindowCapacities
from pitstop.maintenance.workorders import WorkOrder, WorkOrderService
from pitstop.storage.engine import Database
from pitstop.storage.repos.assets import AssetRepo
from pitstop.storage.repos.jobs import JobRepo
from pitstop.storage.repos.readings import ReadingRepo

TICK_JOB = "maintenance"


class Maintenance:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        data_dir: Path,
        incidents: IncidentRegistry,
        assets: AssetRepo,
        readings: ReadingRepo,
        jobs: JobRepo | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.incidents = incidents
        self.assets = assets
        self.readings = readings
        self.jobs = jobs
        self.log = MaintenanceLog(db, clock)
        self.orders = WorkOrderService(db, clock, self.log)
        self.catalog = Catalog(data_dir / "procedures")
        self.capacities = WindowCapacities(db)
        self.runner = ProcedureRunner(
            db,
            clock,
            self.catalog,
            self.orders,
            check_context=self._check_context,
            work_dir=data_dir / "procedure-runs",
        )
        self.schedules = ScheduleService(
            db, clock, self.catalog, self.orders, self.capacities, incidents, assets, readings
        )
        self.planner = Planner(db, clock, self.orders, self.capacities, assets)
        self.kb = KnowledgeBase(db, clock, data_dir / "kb")
        self.emergency = EmergencyResponse(incidents, self.runner, self.orders, self.kb)
        self.orders.register_verifier("incident", self.incident_cleared)
        self.orders.register_verifier("emergency", self.incident_cleared)
        self.orders.register_verifier("remediation", self.incident_cleared)
        self.orders.register_verifier("schedule", self.schedules.order_cleared)
        self.runner.on_finish.append(self._run_finished)

    def _check_context(self) -> Any:
        from pitstop.health.base import CheckContext

        with contextlib.suppress(ImportError):  # registers the built-in checks by name
            importlib.import_module("pitstop.health.checks")
        return CheckContext(clock=self.clock, db=self.db, readings=self.readings, assets=self.assets, jobs=self.jobs)

    @staticmethod
    def check_context_from(base: Any, **extra: Any) -> Callable[[], Any]:
        """Procedure checks in the health monitor's context (`base`: the settings, the metrics, the
        models), with `extra` (e.g. the backup service) added: a copy per step, without the
        per-round caches (latest readings), so a step reads afresh and never disturbs a round."""
        import dataclasses

        from pitstop.health.runner import ROUND_KEYS

        def context() -> Any:
            kept = {k: v for k, v in base.extra.items() if k not in ROUND_KEYS}
            return dataclasses.replace(base, extra={**kept, **extra})

        return context

    def incident_cleared(self, order: WorkOrder) -> bool | None:
        """An incident's order is cleared when no incident of its key is unresolved any more."""
        try:
            return self.incidents.active(order.key) is None
        except Exception:
            return None

    def _run_finished(self, run: Run) -> None:
        self.schedules.completed_by_run(
            run.procedure, run.asset, run.finished_at or self.clock.now(), f"run:{run.id}", run.actor
        )

    # -- the scheduled job ----------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[str]:
        """Schedules come due, meters and conditions open orders, emergencies get their order, runs
        waiting on a reboot go on."""
        events = self.schedules.tick()
        events += [f"run {r.id} ({r.procedure}) went on after its reboot step: {r.state}" for r in self.runner.resume()]
        active = [IncidentState.OPEN, IncidentState.ACKNOWLEDGED, IncidentState.SUPPRESSED]
        names = {a.name for a in self.assets.list_assets()}
        for incident in self.incidents.list(state=active, severity=Severity.EMERGENCY, limit=1000):
            _, created = self.orders.open_for(
                "emergency",
                incident.target if incident.target in names else "",
                incident.key,
                title=f"EMERGENCY: {incident.title}"[:500],
                severity=Severity.EMERGENCY,
                incident_id=incident.id,
                procedure=DEFAULT_RUNBOOK,
                actor="scheduler",
            )
            if created:
                events.append(f"emergency {incident.key}: work order opened")
        return events

    def schedule_jobs(self, scheduler: Any, every: timedelta = timedelta(minutes=5)) -> None:
        scheduler.add(TICK_JOB, every, self.tick)

    # -- reports --------------------------------------------------------------------------------

    def recommend(self, issue: str) -> list[str]:
        """Advice for the diagnostics report: knowledge base entries linked to the issue."""
        if not issue:
            return []
        return [f"Knowledge base: {e.title} (pitstop kb show {e.slug})" for e in self.kb.recommendations_for(issue)]

    def recommendations_hook(self, builtin: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
        """The diagnostics report's hook: its built-in advice, then the knowledge base's entries."""

        def recommend(issue: str) -> list[str]:
            return [*builtin(issue), *self.recommend(issue)]

        return recommend

    def kpis(self, *, since: datetime, until: datetime, site: str | None = None) -> dict[str, Any]:
        return kpis.kpis(self.db, since=since, until=until, now=self.clock.now(), site=site)

    def compliance(self, *, since: datetime, until: datetime, site: str | None = None) -> dict[str, Any]:
        return kpis.compliance(self.db, since=since, until=until, site=site)
