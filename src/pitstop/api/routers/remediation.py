"""Remediations: viewers read what self-healing did and would do; operators approve, reject, reset."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from pitstop.api.deps import Operator, PitstopDep, Viewer

router = APIRouter(prefix="/api", tags=["remediation"])

RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class DecisionIn(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000)] = "decided through the API"


class ResetIn(BaseModel):
    target: Annotated[str, Field(min_length=1, max_length=500)]
    action: Annotated[str | None, Field(max_length=100)] = None


def _actor(request: Request) -> str:
    actor: str = request.state.actor
    return actor


@router.get("/remediations", summary="Remediations, newest first")
def list_remediations(
    pitstop: PitstopDep,
    _key: Viewer,
    state: Annotated[str | None, Query(max_length=40, description="e.g. awaiting_approval, healed")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return [r.as_dict() for r in pitstop.remediation.store.list(state=state, limit=limit)]


@router.get("/remediations/plan", summary="What self-healing would do now (changes nothing)")
def plan_remediations(pitstop: PitstopDep, _key: Viewer) -> list[dict[str, Any]]:
    return [p.as_dict() for p in pitstop.remediation.preview()]


@router.get("/remediations/kpis", summary="Self-healing success rate and MTTR per action and per target")
def remediation_kpis(pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    return pitstop.remediation.kpis()


@router.get("/remediations/breakers", summary="Open circuit breakers")
def remediation_breakers(pitstop: PitstopDep, _key: Viewer) -> list[dict[str, Any]]:
    return [b.as_dict() for b in pitstop.remediation.store.breakers()]


@router.get("/remediations/{remediation_id}", summary="One remediation with every step")
def get_remediation(remediation_id: RowId, pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    r = pitstop.remediation.store.get(remediation_id)
    return r.as_dict() | {"steps": [s.as_dict() for s in pitstop.remediation.store.steps(r.id)]}


@router.post("/remediations/{remediation_id}/approve", summary="Approve a remediation awaiting approval")
def approve_remediation(
    remediation_id: RowId, body: DecisionIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    request.state.audited = True
    return pitstop.remediation.approve(remediation_id, actor=_actor(request), reason=body.reason).as_dict()


@router.post("/remediations/{remediation_id}/reject", summary="Reject a remediation awaiting approval")
def reject_remediation(
    remediation_id: RowId, body: DecisionIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    request.state.audited = True
    return pitstop.remediation.reject(remediation_id, actor=_actor(request), reason=body.reason).as_dict()


@router.post("/remediations/reset", summary="Close the circuit breaker(s) of a target")
def reset_breaker(body: ResetIn, request: Request, pitstop: PitstopDep, _key: Operator) -> list[dict[str, Any]]:
    request.state.audited = True
    return [b.as_dict() for b in pitstop.remediation.reset(body.target, actor=_actor(request), action=body.action)]
