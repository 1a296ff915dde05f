"""The Models pages: versions with their envelope, champion and challenger, the gates' decision records,
drift per feature with its PSI band, promote and roll back behind a confirmation page, a test prediction.

Everything goes through the model lifecycle (`pitstop.models`: its registry and its server), as the CLI
and the API do. Drift (the latest ``models.drift_window_days`` of readings against a version's stored
reference) is computed ahead of the page by the model component's `model-drift` job
(`pitstop.ml.registry.drift_reports`); the page shows the stored report with its time, and has it
computed only when there is none yet.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import Path as FastPath
from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.errors import PitstopError
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

ModelName = Annotated[str, FastPath(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
DRIFT_EVERY = timedelta(minutes=5)
DRIFT_JOB = "dashboard-drift"
BANDS = (("stable", 0.1), ("monitor", 0.2), ("warn", 0.5), ("critical", None))  # PSI below the limit
log = logging.getLogger("pitstop.web")


def _names(p: Pitstop) -> list[str]:
    return p.drift_reports.names()


@router.get("/models")
def models_page(request: Request) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    rows = []
    for name in page_part("models", lambda: _names(p)) or []:
        registry = p.models.registry
        versions = page_part("versions", partial(registry.versions, name)) or []
        decisions = page_part("decisions", partial(registry.decisions, name)) or []
        rows.append(
            {
                "name": name,
                "versions": len(versions),
                "latest": versions[-1] if versions else None,
                "champion": page_part("alias", partial(registry.alias, name, "champion")),
                "challenger": page_part("alias", partial(registry.alias, name, "challenger")),
                "decision": decisions[-1] if decisions else None,
                "drift": page_part("drift", partial(_stored_for_champion, p, name)),
            }
        )
    return render("models.html", request, key, rows=rows)


@router.get("/models/{name}")
def model_page(request: Request, name: ModelName) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    return _model_page(request, key, p, name, prediction=None, error=None, values=None)


@router.get("/models/{name}/predict")
def model_predict(request: Request, name: ModelName) -> HTMLResponse:
    """A test prediction with the champion: one row of inputs from the form (read-only, so a GET).
    Operators only, like the form: a viewer gets 403 (`POST /predict/<name>` with a key is the API's)."""
    key = caller_key(request, Role.OPERATOR)
    p = pitstop_of(request)
    server = p.models.server
    if server is None:
        raise Refused(404, "model serving is not set up")
    inputs = _inputs(p, name)
    values: dict[str, str] = {}
    row: list[float] = []
    error = None
    for feature in inputs:
        raw = request.query_params.get(feature, "").strip()[:40]
        values[feature] = raw
        try:
            number = float(raw)
        except ValueError:
            error = f"{feature}: {raw!r} is not a number"
            continue
        if not math.isfinite(number):
            error = f"{feature}: the value must be finite"
        row.append(number)
    prediction = None
    if error is None:
        try:
            started = time.perf_counter()
            result = server.predict(name, [row])
            result["ms"] = (time.perf_counter() - started) * 1000
            result["pairs"] = list(zip(result["outputs"], result["predictions"][0], strict=True))
            prediction = result
        except PitstopError as exc:
            error = str(exc)
    status = 200 if error is None else 400
    return _model_page(request, key, p, name, prediction=prediction, error=error, values=values, status=status)


def _inputs(p: Pitstop, name: str) -> list[str]:
    champion = p.models.registry.alias(name, "champion")
    if champion is None:
        raise Refused(400, f"model {name} has no champion to predict with")
    envelope = p.models.registry.get(name, champion).envelope
    return [f["name"] for f in envelope.get("features", []) if f.get("role") == "input"]


def _model_page(
    request: Request,
    key: Any,
    p: Pitstop,
    name: str,
    *,
    prediction: dict[str, Any] | None,
    error: str | None,
    values: dict[str, str] | None,
    status: int = 200,
) -> HTMLResponse:
    registry = p.models.registry
    versions = page_part("versions", lambda: registry.versions(name)) or []
    if not versions:
        raise Refused(404, f"no model named {name!r}")
    champion = registry.alias(name, "champion")
    challenger = registry.alias(name, "challenger")
    decisions = list(reversed(page_part("decisions", lambda: registry.decisions(name)) or []))
    moves = list(reversed(page_part("history", lambda: registry.history(name)) or []))
    previous = next((v for v in registry.champion_history(name) if v != champion), None)
    drift = _drift(request, p, name, champion) if champion is not None else None
    form: list[tuple[str, str]] = []
    if champion is not None:
        mv = next((v for v in versions if v.version == champion), None)
        probe = (mv.envelope.get("probe", {}).get("inputs") or [[]])[-1] if mv else []
        names = [f["name"] for f in (mv.envelope.get("features", []) if mv else []) if f.get("role") == "input"]
        for i, feature in enumerate(names):
            default = f"{probe[i]:.6g}" if i < len(probe) else ""
            form.append((feature, (values or {}).get(feature, default)))
    return render(
        "model.html",
        request,
        key,
        status=status,
        model=name,
        versions=list(reversed(versions)),
        champion=champion,
        challenger=challenger,
        previous=previous,
        decisions=decisions[:20],
        moves=moves[:30],
        drift=drift,
        bands=BANDS,
        form=form,
        prediction=prediction,
        error=error,
        metrics=_metrics,
        describe=_describe,
    )


def _metrics(version: Any) -> dict[str, dict[str, float]]:
    """The version's hold-out metrics per output: {output: {r2, mape, mae}}."""
    holdout = version.envelope.get("metrics", {}).get("holdout", {})
    return {o: m for o, m in holdout.items() if isinstance(m, dict)}


def _describe(rule: dict[str, Any]) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in rule.items() if k != "rule")
    return f"{rule.get('rule', '?')}({extra})"


def _stored_for_champion(p: Pitstop, name: str) -> dict[str, Any] | None:
    champion = p.models.registry.alias(name, "champion")
    return p.drift_reports.stored(name, champion) if champion is not None else None


def _drift(request: Request, p: Pitstop, name: str, version: int) -> dict[str, Any]:
    """The version's drift on the latest window as stored by the job (computed here when there is none
    yet), with the bin shares drawn."""
    result = p.drift_reports.latest(name, version)
    report = result.get("report")
    bars = {f["feature"]: _bars(f["reference_share"], f["current_share"]) for f in (report or {}).get("features", [])}
    return {**result, "bars": bars}


def _bars(reference: list[float], current: list[float], width: int = 200, height: int = 40) -> Markup:
    """Reference and current bin shares side by side, one pair per bin, as inline SVG."""
    n = max(len(reference), 1)
    top = max([*reference, *current, 1e-9])
    slot = width / n
    parts = [f'<svg class="bars" viewBox="0 0 {width} {height}" role="img" aria-label="bin shares">']
    for i, (r, c) in enumerate(zip(reference, current, strict=False)):
        for j, share in enumerate((r, c)):
            h = share / top * (height - 2)
            x = i * slot + j * slot / 2 + 0.5
            cls = "ref" if j == 0 else "cur"
            parts.append(
                f'<rect class="{cls}" x="{x:.1f}" y="{height - h:.1f}" width="{max(slot / 2 - 1, 0.5):.1f}" '
                f'height="{h:.1f}"><title>bin {i + 1}: {"reference" if j == 0 else "current"} {share:.1%}'
                "</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


# -- promote and roll back: a confirmation page, then the POST --------------------------------------


@router.get("/models/{name}/promote")
def promote_confirm(request: Request, name: ModelName, version: Annotated[int, Query(ge=1, lt=2**31)]) -> HTMLResponse:
    key = caller_key(request, Role.OPERATOR)
    p = pitstop_of(request)
    try:
        target = p.models.registry.get(name, version)
    except PitstopError as exc:
        raise Refused(404, str(exc)) from None
    champion = p.models.registry.alias(name, "champion")
    if champion == version:
        raise Refused(400, f"version {version} of {name} is already the champion")
    decision = next((d for d in reversed(p.models.registry.decisions(name)) if d.get("candidate") == version), None)
    return render(
        "model_confirm.html",
        request,
        key,
        model=name,
        action="promote",
        target=target,
        champion=champion,
        decision=decision,
        describe=_describe,
    )


@router.get("/models/{name}/rollback")
def rollback_confirm(request: Request, name: ModelName) -> HTMLResponse:
    key = caller_key(request, Role.OPERATOR)
    p = pitstop_of(request)
    champion = p.models.registry.alias(name, "champion")
    previous = next((v for v in p.models.registry.champion_history(name) if v != champion), None)
    if champion is None or previous is None:
        raise Refused(400, f"model {name} has no previous champion to roll back to")
    target = p.models.registry.get(name, previous)
    return render(
        "model_confirm.html",
        request,
        key,
        model=name,
        action="rollback",
        target=target,
        champion=champion,
        decision=None,
        describe=_describe,
    )


@router.post("/models/{name}/promote")
async def promote(request: Request, name: ModelName) -> Response:
    fields = await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    version_text = form_text(fields, "version", limit=10)
    if not version_text.isdigit() or not 1 <= int(version_text) < 2**31:
        raise Refused(400, "version must be a version number")
    reason = form_text(fields, "reason", required=False) or "promoted on the dashboard"
    run_action(lambda: p.models.registry.promote(name, int(version_text), actor=request.state.actor, reason=reason))
    return redirect(f"/models/{name}")


@router.post("/models/{name}/rollback")
async def rollback(request: Request, name: ModelName) -> Response:
    fields = await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    reason = form_text(fields, "reason", required=False) or "rolled back on the dashboard"
    run_action(lambda: p.models.registry.rollback(name, actor=request.state.actor, reason=reason))
    return redirect(f"/models/{name}")
