"""Remaining useful life: per-asset estimates with their intervals, ends of life, calibration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from pitstop.api.deps import Instant, Operator, PitstopDep, Viewer

router = APIRouter(prefix="/api", tags=["prognostics"])

AssetName = Annotated[str, Path(min_length=1, max_length=200)]


class LifeEndIn(BaseModel):
    ended_at: Instant
    failed: bool = Field(description="true: the asset broke down; false: replaced or repaired before it did")
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,99}$", description="failure mode, e.g. bearing_wear")]
    note: Annotated[str, Field(max_length=2000)] = ""


@router.get(
    "/assets/{name}/rul", summary="Remaining useful life: latest estimate, its curve, ends of life, calibration"
)
def asset_rul(
    name: AssetName,
    pitstop: PitstopDep,
    _key: Viewer,
    days: Annotated[float, Query(gt=0, le=3650, description="how far back the curve goes")] = 30.0,
) -> dict[str, Any]:
    return pitstop.prognostics.summary(name, days=days)


@router.post("/assets/{name}/rul/estimate", summary="Estimate the asset's remaining life now")
def estimate_now(name: AssetName, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    found = pitstop.prognostics.run(asset=name)
    return {"asset": name, "estimate": found[0].as_dict() if found else None}


@router.post("/assets/{name}/life-ends", summary="Record a failure or a replacement (a run-to-failure history ends)")
def add_life_end(
    name: AssetName, body: LifeEndIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    end = pitstop.prognostics.record_life_end(
        name, body.ended_at, failed=body.failed, code=body.code, source="api", ref=request.state.actor, note=body.note
    )
    return end.as_dict()


@router.get("/rul/calibration", summary="How predictions turned out: interval coverage, early/late errors")
def calibration(
    pitstop: PitstopDep,
    _key: Viewer,
    asset: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> dict[str, Any]:
    return pitstop.prognostics.calibration(asset)
