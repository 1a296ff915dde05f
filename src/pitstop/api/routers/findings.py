"""Findings of the stream scorer per asset: evidence window, score, cut-off, explanation, incident;
and whether the scorer is still learning the asset's baseline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from pitstop.api.deps import Instant, PitstopDep, Viewer
from pitstop.errors import NotFound

router = APIRouter(prefix="/api", tags=["monitoring"])

AssetName = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/assets/{name}/findings", summary="What the stream scorer found on an asset, newest first")
def asset_findings(
    name: AssetName,
    pitstop: PitstopDep,
    _key: Viewer,
    since: Annotated[Instant | None, Query(description="only findings whose evidence ends at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    if pitstop.assets.get_asset(name) is None:
        raise NotFound(f"no asset named {name!r}")
    return {
        "asset": name,
        "scoring": pitstop.scoring.status(name).as_dict(),
        "findings": pitstop.scoring.findings(name, since=since, limit=limit),
    }
