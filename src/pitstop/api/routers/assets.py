"""Sites, assets, sensors and their readings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from pitstop import inventory
from pitstop.api.deps import Admin, Instant, PitstopDep, Viewer
from pitstop.core.types import to_epoch_us
from pitstop.errors import NotFound

router = APIRouter(prefix="/api", tags=["assets"])


class SensorOut(BaseModel):
    name: str
    unit: str
    min: float | None
    max: float | None
    period_s: float
    alarm: inventory.AlarmSpec | None = None  # as the inventory gave them


class AssetOut(BaseModel):
    name: str
    site: str
    parent: str | None
    type: str
    criticality: int
    location: str


class AssetDetail(AssetOut):
    sensors: list[SensorOut]


class SiteOut(BaseModel):
    name: str
    location: str


class LoadOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    changes: list[str]


class ReadingsOut(BaseModel):
    asset: str
    sensor: str
    ts: list[datetime]
    value: list[float]


@router.get("/sites", summary="All sites")
def list_sites(pitstop: PitstopDep, _key: Viewer) -> list[SiteOut]:
    return [SiteOut(name=n, location=loc) for n, loc in pitstop.assets.list_sites()]


@router.get("/assets", summary="All assets, optionally of one site")
def list_assets(pitstop: PitstopDep, _key: Viewer, site: str | None = None) -> list[AssetOut]:
    return [
        AssetOut(
            name=a.name,
            site=a.site,
            parent=a.parent,
            type=a.type,
            criticality=a.criticality,
            location=a.location,
        )
        for a in pitstop.assets.list_assets(site)
    ]


@router.get("/assets/{name}", summary="One asset with its sensors")
def get_asset(name: str, pitstop: PitstopDep, _key: Viewer) -> AssetDetail:
    asset = pitstop.assets.get_asset(name)
    if asset is None:
        raise NotFound(f"no asset named {name!r}")
    sensors = [
        SensorOut(
            name=s.name,
            unit=s.unit,
            min=s.min_value,
            max=s.max_value,
            period_s=s.period_s,
            alarm=inventory.AlarmSpec.model_validate(s.alarm.as_dict(), strict=False) if s.alarm else None,
        )
        for s in pitstop.assets.sensors(name)
    ]
    return AssetDetail(
        name=asset.name,
        site=asset.site,
        parent=asset.parent,
        type=asset.type,
        criticality=asset.criticality,
        location=asset.location,
        sensors=sensors,
    )


@router.post("/inventory", summary="Create or update sites, assets and sensors (idempotent)")
def load_inventory(spec: inventory.InventorySpec, request: Request, pitstop: PitstopDep, _key: Admin) -> LoadOut:
    spec = inventory.validated(spec, source="api")
    summary = inventory.apply(pitstop.db, spec, actor=request.state.actor, now=pitstop.clock.now())
    request.state.audited = True  # apply() wrote a detailed entry when anything changed
    return LoadOut(
        created=summary.created, updated=summary.updated, unchanged=summary.unchanged, changes=summary.changes
    )


@router.get("/assets/{name}/sensors/{sensor}/readings", summary="Readings of one sensor in a time range")
def readings(
    name: str,
    sensor: str,
    pitstop: PitstopDep,
    _key: Viewer,
    start: Annotated[Instant | None, Query()] = None,
    end: Annotated[Instant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> ReadingsOut:
    info = pitstop.assets.sensor_index().get((name, sensor))
    if info is None:
        raise NotFound(f"no sensor {sensor!r} on asset {name!r}")
    frame = pitstop.readings.window(
        info.id, to_epoch_us(start) if start else None, to_epoch_us(end) if end else None
    ).tail(limit)
    index = pd.DatetimeIndex(frame.index)
    return ReadingsOut(asset=name, sensor=sensor, ts=list(index.to_pydatetime()), value=frame["value"].tolist())
