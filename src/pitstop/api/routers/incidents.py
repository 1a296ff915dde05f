"""Incidents, silences, maintenance windows and alert deliveries. Viewers read; operators act."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from pitstop.api.deps import Instant, Operator, PitstopDep, Viewer
from pitstop.errors import InvalidInput
from pitstop.incidents import IncidentState
from pitstop.incidents.windows import Silence, Window, parse_matchers, recurring

router = APIRouter(prefix="/api", tags=["incidents"])

Text = Annotated[str, Field(min_length=1, max_length=2000)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class AckIn(BaseModel):
    note: Annotated[str, Field(max_length=2000)] = ""


class ResolveIn(BaseModel):
    reason: Text


class AssignIn(BaseModel):
    assignee: Annotated[str | None, Field(max_length=200)] = None


class SilenceIn(BaseModel):
    matchers: Annotated[dict[str, str], Field(min_length=1, max_length=20)]
    reason: Text
    duration_s: Annotated[float, Field(gt=0, le=90 * 86400)] | None = None
    ends_at: Instant | None = None


class WindowIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    matchers: Annotated[dict[str, str], Field(min_length=1, max_length=20)]
    days: Annotated[str, Field(max_length=60, description="daily, or weekdays: sun / mon,wed")] = "daily"
    start: Annotated[str, Field(max_length=5, description="HH:MM local")] = "02:00"
    end: Annotated[str, Field(max_length=5, description="HH:MM local")] = "04:00"
    timezone: Annotated[str, Field(max_length=64)] = "UTC"
    reason: Annotated[str, Field(max_length=2000)] = ""


def _actor(request: Request) -> str:
    actor: str = request.state.actor
    return actor


# -- incidents ---------------------------------------------------------------------------------


@router.get("/incidents", summary="Incidents, newest first")
def list_incidents(
    pitstop: PitstopDep,
    _key: Viewer,
    state: Annotated[str, Query(description="active, all, open, acknowledged, suppressed, resolved")] = "active",
    area: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    if state == "active":
        states: list[IncidentState] | IncidentState | None = [s for s in IncidentState if s.active]
    elif state == "all":
        states = None
    else:
        try:
            states = IncidentState(state)
        except ValueError:
            raise InvalidInput(f"state {state[:40]!r} is not active, all, {', '.join(IncidentState)}") from None
    return [i.as_dict() for i in pitstop.incidents.list(state=states, area=area, limit=limit)]


@router.get("/incidents/{incident_id}", summary="One incident with its timeline")
def get_incident(incident_id: RowId, pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    item = pitstop.incidents.get(incident_id)
    timeline = [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "from": e.from_state.value if e.from_state else None,
            "to": e.to_state.value,
            "detail": e.detail,
        }
        for e in pitstop.incidents.timeline(item.id)
    ]
    return item.as_dict() | {"timeline": timeline}


def _key_of(pitstop: Any, incident_id: int) -> str:
    key: str = pitstop.incidents.get(incident_id).key
    return key


@router.post("/incidents/{incident_id}/ack", summary="Acknowledge an open incident")
def ack_incident(
    incident_id: RowId, body: AckIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    item, change = pitstop.incidents.acknowledge(_key_of(pitstop, incident_id), actor=_actor(request), note=body.note)
    return item.as_dict() | {"change": change.value}


@router.post("/incidents/{incident_id}/resolve", summary="Resolve an incident by hand")
def resolve_incident(
    incident_id: RowId, body: ResolveIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    item, change = pitstop.incidents.resolve(_key_of(pitstop, incident_id), reason=body.reason, actor=_actor(request))
    if item is None:
        raise InvalidInput(f"incident {incident_id} is already resolved")
    return item.as_dict() | {"change": change.value}


@router.post("/incidents/{incident_id}/assign", summary="Assign an incident (null assignee unassigns)")
def assign_incident(
    incident_id: RowId, body: AssignIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    item, change = pitstop.incidents.assign(
        _key_of(pitstop, incident_id), assignee=body.assignee, actor=_actor(request)
    )
    return item.as_dict() | {"change": change.value}


@router.post("/incidents/{incident_id}/suppress", summary="Suppress an incident (it stays on record)")
def suppress_incident(
    incident_id: RowId, body: ResolveIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    item, change = pitstop.incidents.suppress(_key_of(pitstop, incident_id), reason=body.reason, actor=_actor(request))
    return item.as_dict() | {"change": change.value}


# -- silences and windows ----------------------------------------------------------------------


@router.get("/silences", summary="Silences in force (expired=true: also expired ones)")
def list_silences(pitstop: PitstopDep, _key: Viewer, expired: bool = False) -> list[dict[str, Any]]:
    at = None if expired else pitstop.clock.now()
    return [s.as_dict() for s in pitstop.alerts.mutes.silences(active_at=at)]


@router.post("/silences", summary="Hold back notifications of matching alerts until a time")
def add_silence(body: SilenceIn, request: Request, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    now = pitstop.clock.now()
    if (body.duration_s is None) == (body.ends_at is None):
        raise InvalidInput("give exactly one of duration_s and ends_at")
    ends: datetime = body.ends_at if body.ends_at is not None else now + timedelta(seconds=body.duration_s or 0)
    if ends > now + timedelta(days=90):
        raise InvalidInput("a silence lasts at most 90 days")
    silence = Silence(parse_matchers(body.matchers), _actor(request), body.reason, now, ends)
    return pitstop.alerts.mutes.add_silence(silence, now=now).as_dict()


@router.post("/silences/{silence_id}/expire", summary="End a silence now")
def expire_silence(silence_id: RowId, request: Request, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    return pitstop.alerts.mutes.expire_silence(silence_id, now=pitstop.clock.now(), actor=_actor(request)).as_dict()


@router.get("/windows", summary="Maintenance windows")
def list_windows(pitstop: PitstopDep, _key: Viewer) -> list[dict[str, Any]]:
    return [w.as_dict() for w in pitstop.alerts.mutes.windows()]


@router.post("/windows", summary="Add a recurring maintenance window")
def add_window(body: WindowIn, request: Request, pitstop: PitstopDep, _key: Operator) -> dict[str, Any]:
    window: Window = recurring(
        body.name,
        parse_matchers(body.matchers),
        days=body.days,
        start=body.start,
        end=body.end,
        timezone=body.timezone,
        creator=_actor(request),
        reason=body.reason,
    )
    return pitstop.alerts.mutes.add_window(window, now=pitstop.clock.now()).as_dict()


@router.get("/alerts/notifications", summary="Recent alert deliveries and held-back notifications")
def notifications(
    pitstop: PitstopDep, _key: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    return [
        {
            "at": r.at.isoformat(),
            "key": r.alert_key,
            "event": r.event,
            "severity": r.severity,
            "channel": r.channel,
            "outcome": r.outcome,
            "reason": r.reason,
            "attempts": r.attempts,
            "error": r.error,
        }
        for r in pitstop.alerts.router.recent(limit)
    ]
