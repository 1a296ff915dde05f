"""Health report and check results."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pitstop.api.deps import PitstopDep, Viewer

router = APIRouter(prefix="/api/health", tags=["health"])


@router.get("/report", summary="Status of the installation, each site and each asset, with reasons")
def health_report(pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    """From the latest stored result of every check target (the scheduler runs them every
    `health.interval_s`); results older than three intervals count as missing."""
    return pitstop.health.report().as_dict()


@router.get("/checks", summary="Check results, newest first (history)")
def check_history(
    pitstop: PitstopDep,
    _key: Viewer,
    check: Annotated[str | None, Query(max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return [r.as_dict() for r in pitstop.health.results.history(check, target, limit)]
