"""Maintenance: procedures and runs, schedules, work orders, planning, the log, KPIs, the knowledge base.

Viewers read; operators run procedures, work orders and plans.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import AfterValidator, BaseModel, Field

from pitstop.api.deps import Instant, Operator, PitstopDep, Viewer
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput
from pitstop.maintenance import report
from pitstop.maintenance.common import duration
from pitstop.maintenance.log import export
from pitstop.maintenance.runs import Answer
from pitstop.maintenance.workorders import OrderState

router = APIRouter(prefix="/api", tags=["maintenance"])

RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Name = Annotated[str, Path(min_length=1, max_length=100)]
Short = Annotated[str, Field(max_length=200)]
Long = Annotated[str, Field(max_length=20_000)]


def _actor(request: Request) -> str:
    actor: str = request.state.actor
    return actor


class AnswerIn(BaseModel):
    value: float | Annotated[str, Field(max_length=500)] | None = None
    passed: bool | None = None
    note: Annotated[str, Field(max_length=4000)] = ""
    attachment: Annotated[str, Field(max_length=1000)] | None = None

    def answer(self) -> Answer:
        return Answer(self.value, self.passed, self.note, self.attachment)


class RunIn(BaseModel):
    asset: Short = ""
    answers: Annotated[dict[Annotated[str, Field(max_length=100)], AnswerIn], Field(max_length=200)] = Field(
        default_factory=dict
    )


class StepAnswerIn(AnswerIn):
    step: Annotated[str, Field(min_length=1, max_length=100)]


class OrderIn(BaseModel):
    key: Annotated[str, Field(min_length=1, max_length=500)]
    title: Annotated[str, Field(min_length=1, max_length=500)]
    asset: Short = ""
    severity: Severity = Severity.WARNING
    detail: Long = ""
    estimated_h: Annotated[float, Field(gt=0, le=1000)] | None = None
    due_at: Instant | None = None


class CloseIn(BaseModel):
    actual_h: Annotated[float, Field(ge=0, le=10_000)] | None = None
    parts: Annotated[list[Short], Field(max_length=100)] = Field(default_factory=list)
    note: Long = ""
    failure_code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,99}$")] | None = Field(
        default=None, description="what was found: failed, no_fault, or the failure mode repaired (bearing_wear)"
    )


class VerifyIn(BaseModel):
    confirmed: bool = False


class CancelIn(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class AssignIn(BaseModel):
    assignee: Short | None = None


class PlanIn(BaseModel):
    horizon: Annotated[str, Field(max_length=20, description="e.g. 14d, 4w")] = "14d"
    dry_run: bool = False


class CapacityIn(BaseModel):
    capacity_h: Annotated[float, Field(ge=0, le=100_000)]
    sites: Annotated[list[Short], Field(max_length=100)] = Field(default_factory=list)
    assets: Annotated[list[Short], Field(max_length=1000)] = Field(default_factory=list)
    fallback: Annotated[str, Field(max_length=220)] = "next"
    max_fallbacks: Annotated[int, Field(ge=0, le=10)] = 1


class LogIn(BaseModel):
    kind: Annotated[str, Field(max_length=50)]
    summary: Annotated[str, Field(min_length=1, max_length=500)]
    asset: Short = ""
    issues: Long = ""
    actions: Long = ""
    result: Annotated[str, Field(max_length=50)] = ""
    evidence: Annotated[list[Annotated[str, Field(max_length=1000)]], Field(max_length=50)] = Field(
        default_factory=list
    )
    ref: Short = ""


class LessonIn(BaseModel):
    incident_key: Annotated[str, Field(min_length=1, max_length=500)]
    text: Annotated[str, Field(min_length=1, max_length=20_000)]


class PromoteIn(BaseModel):
    slug: Annotated[str, Field(max_length=100)] | None = None
    title: Annotated[str, Field(max_length=500)] | None = None


# -- procedures and runs -----------------------------------------------------------------------


@router.get("/procedures", summary="Procedures (shipped and the site's own)")
def list_procedures(pitstop: PitstopDep, _key: Viewer) -> list[dict[str, Any]]:
    return [
        {"name": n, "title": pf.procedure.title, "origin": pf.origin, "content_hash": pf.content_hash}
        for n, pf in sorted(pitstop.maintenance.catalog.files().items())
    ]


@router.get("/procedures/{name}", summary="One procedure with its steps and recorded versions")
def get_procedure(name: Name, pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    m = pitstop.maintenance
    pf = m.catalog.get(name)
    return {**pf.procedure.model_dump(), "content_hash": pf.content_hash, "versions": m.runner.versions(name)}


# A printed page fetches nothing: no scripts, images, fonts or frames, only its own inline style.
PRINT_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@router.get(
    "/maintenance/procedures/{name}/print",
    summary="A printable copy of a procedure or runbook (self-contained HTML)",
    response_class=HTMLResponse,
)
def print_procedure(name: Annotated[str, Path(min_length=1)], pitstop: PitstopDep, _key: Viewer) -> HTMLResponse:
    from pitstop.maintenance import printable
    from pitstop.maintenance.common import name as checked_name

    m = pitstop.maintenance
    pf = m.catalog.get(checked_name("procedure", name))  # 400 for a name no procedure can have, 404 unknown
    version = printable.version_of(pf, m.runner.versions(pf.procedure.name))
    page = printable.render(pf, version=version, oncall=pitstop.settings.oncall, now=m.clock.now())
    return HTMLResponse(page, headers={"Content-Security-Policy": PRINT_CSP})


@router.post("/procedures/{name}/runs", summary="Run a procedure (automated steps now, checklist answers given)")
def run_procedure(name: Name, body: RunIn, request: Request, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    answers = {k: v.answer() for k, v in body.answers.items()}
    run = pitstop.maintenance.runner.start(name, actor=_actor(request), asset=body.asset, answers=answers)
    return run.as_dict()


@router.get("/procedure-runs", summary="Recent procedure runs")
def list_runs(
    pitstop: PitstopDep,
    _key: Viewer,
    procedure: Annotated[str | None, Query(max_length=100)] = None,
    asset: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return [r.as_dict() for r in pitstop.maintenance.runner.runs(procedure=procedure, asset=asset, limit=limit)]


@router.get("/procedure-runs/{run_id}", summary="One procedure run")
def get_run(run_id: RowId, pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    from pitstop.maintenance.printable import run_contacts

    m = pitstop.maintenance
    run = m.runner.get(run_id)
    try:
        proc = m.runner.procedure_of(run)
    except InvalidInput:  # a recorded version today's model no longer reads: the run as it is
        return run.as_dict()
    # runbooks (and procedures with contacts = true) carry who to call: contacts, contacts_note
    return {**run.as_dict(), **run_contacts(proc, pitstop.settings.oncall, m.clock.now())}


@router.post("/procedure-runs/{run_id}/answers", summary="Record a checklist item's result")
def answer_step(
    run_id: RowId, body: StepAnswerIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    return pitstop.maintenance.runner.answer(run_id, body.step, body.answer(), actor=_actor(request)).as_dict()


@router.get("/schedules", summary="Schedules and their current occurrence")
def list_schedules(pitstop: PitstopDep, _key: Viewer) -> list[dict[str, Any]]:
    m = pitstop.maintenance
    now = m.clock.now()
    out = []
    for s in m.schedules.schedules():
        due = m.schedules.open_due(s.id)
        out.append({**s.as_dict(), "current": due.as_dict(now) if due else None})
    return out


# -- work orders -------------------------------------------------------------------------------


@router.get("/workorders", summary="Work orders, highest priority first")
def list_orders(
    pitstop: PitstopDep,
    _key: Viewer,
    state: Annotated[str, Query(max_length=20, description="active, all, or one state")] = "active",
    asset: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    orders = pitstop.maintenance.orders
    if state == "active":
        found = orders.list(active=True, asset=asset, limit=limit)
    elif state == "all":
        found = orders.list(asset=asset, limit=limit)
    elif state in {s.value for s in OrderState}:
        found = orders.list(state=OrderState(state), asset=asset, limit=limit)
    else:
        raise InvalidInput(f"state {state!r} is not active, all, {', '.join(OrderState)}")
    return [o.as_dict() for o in found]


@router.get("/workorders/{order_id}", summary="One work order")
def get_order(order_id: RowId, pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    return pitstop.maintenance.orders.get(order_id).as_dict()


@router.post("/workorders", summary="Open a work order, or update the active one for the same asset and key")
def open_order(body: OrderIn, request: Request, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    order, created = pitstop.maintenance.orders.open_for(
        "manual",
        body.asset,
        body.key,
        title=body.title,
        severity=body.severity,
        detail=body.detail,
        due_at=body.due_at,
        estimated_h=body.estimated_h,
        actor=_actor(request),
    )
    return {**order.as_dict(), "created": created}


@router.post("/workorders/{order_id}/start", summary="Work begins")
def start_order(order_id: RowId, request: Request, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    return pitstop.maintenance.orders.start(order_id, actor=_actor(request)).as_dict()


@router.post("/workorders/{order_id}/close", summary="Done: re-runs the condition that opened it")
def close_order(
    order_id: RowId, body: CloseIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    order = pitstop.maintenance.orders.close(
        order_id,
        actor=_actor(request),
        actual_h=body.actual_h,
        parts=body.parts,
        note=body.note,
        failure_code=body.failure_code,
    )
    return order.as_dict()


@router.post("/workorders/{order_id}/verify", summary="Check a done order again, or confirm it by hand")
def verify_order(
    order_id: RowId, body: VerifyIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    return pitstop.maintenance.orders.verify(order_id, actor=_actor(request), confirmed=body.confirmed).as_dict()


@router.post("/workorders/{order_id}/cancel", summary="Cancel an order")
def cancel_order(
    order_id: RowId, body: CancelIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    return pitstop.maintenance.orders.cancel(order_id, actor=_actor(request), reason=body.reason).as_dict()


@router.post("/workorders/{order_id}/assign", summary="Assign an order")
def assign_order(
    order_id: RowId, body: AssignIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    return pitstop.maintenance.orders.assign(order_id, assignee=body.assignee, actor=_actor(request)).as_dict()


@router.post("/plan", summary="Place open work orders into maintenance windows")
def plan(body: PlanIn, request: Request, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    result = pitstop.maintenance.planner.plan(
        duration(body.horizon, "horizon"), apply=not body.dry_run, actor=_actor(request)
    )
    return result.as_dict()


@router.put("/windows/{name}/capacity", summary="Technician hours, scope and fallback of a maintenance window")
def set_capacity(
    name: Annotated[str, Path(min_length=1, max_length=200)], body: CapacityIn, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    cap = pitstop.maintenance.capacities.set(
        name,
        body.capacity_h,
        sites=body.sites,
        assets=body.assets,
        fallback=body.fallback,
        max_fallbacks=body.max_fallbacks,
    )
    return cap.as_dict()


# -- the log -----------------------------------------------------------------------------------


@router.get("/maintenance-log", summary="The maintenance log, filtered; JSON or CSV", response_model=None)
def get_log(
    pitstop: PitstopDep,
    _key: Viewer,
    asset: Annotated[str | None, Query(max_length=200)] = None,
    site: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str | None, Query(max_length=50)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    contains: Annotated[str | None, Query(max_length=200)] = None,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> list[dict[str, Any]] | PlainTextResponse:
    entries = pitstop.maintenance.log.entries(
        asset=asset, site=site, kind=kind, since=since, until=until, contains=contains, limit=limit
    )
    if fmt == "csv":
        return PlainTextResponse(export(entries, "csv"), media_type="text/csv")
    return [e.as_dict() for e in entries]


@router.post("/maintenance-log", summary="Append an entry (remediations, promotions, backups, notes)")
def append_log(body: LogIn, request: Request, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    entry = pitstop.maintenance.log.append(
        body.kind,
        body.summary,
        actor=_actor(request),
        asset=body.asset,
        issues=body.issues,
        actions=body.actions,
        result=body.result,
        evidence=body.evidence,
        ref=body.ref,
    )
    return entry.as_dict()


# -- compliance, KPIs, report ------------------------------------------------------------------


def _period(pitstop: Any, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or pitstop.clock.now()
    return since or until - timedelta(days=30), until


@router.get("/maintenance/kpis", summary="MTTR, MTBF, backlog and self-healing success rate")
def get_kpis(
    pitstop: PitstopDep,
    _key: Viewer,
    since: Instant | None = None,
    until: Instant | None = None,
    site: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    start, end = _period(pitstop, since, until)
    return pitstop.maintenance.kpis(since=start, until=end, site=site)


@router.get("/maintenance/compliance", summary="Planned-maintenance compliance per schedule and site")
def get_compliance(
    pitstop: PitstopDep,
    _key: Viewer,
    since: Instant | None = None,
    until: Instant | None = None,
    site: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    start, end = _period(pitstop, since, until)
    return pitstop.maintenance.compliance(since=start, until=end, site=site)


def _month(text: str) -> str:
    """The report's own month check, as a validation error of the query (422) rather than a crash."""
    try:
        report.month_bounds(text)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None
    return text


Month = Annotated[
    str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, 1970-01 to 9998-12"), AfterValidator(_month)
]


@router.get("/maintenance/report", summary="The monthly report as HTML", response_class=HTMLResponse)
def get_report(
    pitstop: PitstopDep,
    _key: Viewer,
    month: Month,
    site: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    page = report.monthly(pitstop.maintenance, month=month, site=site, predictions=pitstop.prognostics.calibration)
    return HTMLResponse(page)


# -- knowledge base ----------------------------------------------------------------------------


@router.get("/kb/search", summary="Full-text search of the knowledge base")
def kb_search(
    pitstop: PitstopDep,
    _key: Viewer,
    q: Annotated[str, Query(max_length=500)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[dict[str, Any]]:
    return [e.as_dict(body=False) for e in pitstop.maintenance.kb.search(q, limit=limit)]


@router.get("/kb/recommendations", summary="Entries linked to an issue or incident key")
def kb_recommendations(
    pitstop: PitstopDep, _key: Viewer, issue: Annotated[str, Query(min_length=1, max_length=500)]
) -> list[dict[str, Any]]:
    return [e.as_dict(body=False) for e in pitstop.maintenance.kb.recommendations_for(issue)]


@router.get("/kb/entries/{slug}", summary="One knowledge base entry")
def kb_entry(slug: Name, pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    return pitstop.maintenance.kb.get(slug).as_dict()


@router.post("/lessons", summary="Record a lesson learned on an incident")
def add_lesson(body: LessonIn, request: Request, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    return pitstop.maintenance.kb.add_lesson(body.incident_key, body.text, author=_actor(request)).as_dict()


@router.post("/lessons/{lesson_id}/promote", summary="Turn a lesson into a knowledge base entry")
def promote_lesson(lesson_id: RowId, body: PromoteIn, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    return pitstop.maintenance.kb.lesson_to_entry(lesson_id, slug=body.slug, title=body.title).as_dict()
