"""Running a procedure from the dashboard: start a run for an asset, answer its checklist (tick, enter
values, pass/fail, notes), and see what it opened.

The maintenance service does the work (`pitstop.maintenance.runner`): automated steps run when the
run starts, each answer is recorded as it comes, the run finishes when every step has a result, and
a failed checklist item opens one work order (deduplicated by asset and step). The run page shows
those orders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path as FastPath
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.errors import PitstopError
from pitstop.maintenance.runs import StepResult
from pitstop.web.pages import (
    Refused,
    caller_key,
    form_text,
    page_part,
    pitstop_of,
    posted_form,
    redirect,
    render,
    router,
    run_action,
)

RunId = Annotated[int, FastPath(ge=1, lt=2**31)]


@dataclass(frozen=True, slots=True)
class Item:
    """One step of a run: the step as the run's procedure version has it, and its result."""

    step: Any
    result: StepResult


@router.get("/procedures")
def procedures_page(request: Request) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    files = page_part("procedures", p.maintenance.catalog.files) or {}
    procedures = sorted((f.procedure for f in files.values()), key=lambda proc: proc.title.casefold())
    assets = page_part("assets", p.assets.list_assets) or []
    runs = page_part("runs", lambda: p.maintenance.runner.runs(limit=30)) or []
    return render("procedures.html", request, key, procedures=procedures, assets=assets, runs=runs)


@router.post("/procedures/start")
async def procedure_start(request: Request) -> Response:
    fields = await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    name = form_text(fields, "procedure", limit=200)
    asset = form_text(fields, "asset", required=False, limit=200)
    if asset and p.assets.get_asset(asset) is None:
        raise Refused(400, f"no asset named {asset!r}")
    started: list[int] = []
    run_action(lambda: started.append(p.maintenance.runner.start(name, actor=request.state.actor, asset=asset).id))
    return redirect(f"/runs/{started[0]}")


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: RunId) -> HTMLResponse:
    key = caller_key(request)
    return _run_page(request, key, pitstop_of(request), run_id, errors=[])


def _run_page(
    request: Request, key: Any, p: Pitstop, run_id: int, *, errors: list[str], status: int = 200
) -> HTMLResponse:
    runner = p.maintenance.runner
    try:
        run = runner.get(run_id)
        proc = runner.procedure_of(run)
    except PitstopError:
        raise Refused(404, f"no procedure run {run_id}") from None
    steps = {s.id: s for s in proc.steps}
    items = [Item(steps.get(r.id), r) for r in run.steps]
    orders = [
        o
        for o in page_part(
            "work orders", lambda: p.maintenance.orders.list(source="procedure", asset=run.asset, limit=1000)
        )
        or []
        if o.run_id == run.id
    ]
    return render(
        "run.html",
        request,
        key,
        status=status,
        run=run,
        proc=proc,
        items=items,
        orders=orders,
        errors=errors,
        pending=[i for i in items if i.result.status == "pending" and i.step is not None],
    )


@router.post("/runs/{run_id}/answers")
async def run_answers(request: Request, run_id: RunId) -> Response:
    """Record every filled-in checklist item of the form; items left empty stay pending."""
    from pitstop.maintenance.procedures import ManualStep
    from pitstop.maintenance.runs import Answer

    fields = await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    runner = p.maintenance.runner
    try:
        run = runner.get(run_id)
        proc = runner.procedure_of(run)
    except PitstopError:
        raise Refused(404, f"no procedure run {run_id}") from None
    if run.state != "running":
        raise Refused(400, f"run {run_id} is {run.state}; it takes no more answers")
    errors: list[str] = []
    answered = 0
    for result in run.steps:
        step = next((s for s in proc.steps if s.id == result.id), None)
        if result.status != "pending" or not isinstance(step, ManualStep):
            continue
        raw = form_text(fields, f"value:{step.id}", required=False, limit=500)
        verdict = fields.get(f"result:{step.id}", "")
        note = form_text(fields, f"note:{step.id}", required=False, limit=4000)
        if not raw and verdict not in ("pass", "fail"):
            continue  # not filled in: stays pending
        value: float | str | None = raw or None
        if raw and (step.min is not None or step.max is not None):
            try:
                number = float(raw.replace(",", "."))
            except ValueError:
                errors.append(f"{step.title}: {raw!r} is not a number")
                continue
            if not math.isfinite(number):
                errors.append(f"{step.title}: the value must be finite")
                continue
            value = number
        passed = {"pass": True, "fail": False}.get(verdict)
        try:
            runner.answer(run_id, step.id, Answer(value=value, passed=passed, note=note), actor=request.state.actor)
            answered += 1
        except PitstopError as exc:
            errors.append(f"{step.title}: {exc}")
    if errors:
        return _run_page(request, caller_key(request, Role.OPERATOR), p, run_id, errors=errors, status=400)
    if not answered:
        return _run_page(
            request, caller_key(request, Role.OPERATOR), p, run_id, errors=["nothing was filled in"], status=400
        )
    return redirect(f"/runs/{run_id}")
