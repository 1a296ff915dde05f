"""On-call: who is on call, schedules (JSON and iCal), contacts and escalations (viewers read);
and the signed acknowledge link of a page, `GET|POST /ack/<token>` (the token is the credential).

The link's GET shows the incident and a button; the POST acknowledges. Mail scanners and chat
previews open links by themselves: a GET that acknowledged would stop escalations nobody saw.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from pitstop.api.deps import Instant, PitstopDep, Viewer
from pitstop.errors import InvalidInput
from pitstop.incidents import Incident
from pitstop.oncall.links import LinkRefused

router = APIRouter(tags=["oncall"])

Token = Annotated[str, Path(min_length=1, max_length=200)]
ScheduleName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
Days = Annotated[int, Query(ge=1, le=366, description="how many days from start")]


@router.get("/api/oncall/now", summary="Who is on call in each schedule, and the escalations under way")
def oncall_now(pitstop: PitstopDep, _key: Viewer, at: Instant | None = None) -> dict[str, Any]:
    return {
        "on_call": [o.as_dict() for o in pitstop.oncall.now(at)],
        "escalations": [e.as_dict() for e in pitstop.oncall.list(active=True)],
    }


@router.get("/api/oncall/schedules", summary="The on-call schedules")
def schedules(pitstop: PitstopDep, _key: Viewer) -> list[dict[str, Any]]:
    return [{"name": name, **cfg.model_dump(mode="json")} for name, cfg in pitstop.settings.oncall.schedules.items()]


def _span(pitstop: Any, start: datetime | None, days: int) -> tuple[datetime, datetime]:
    begin = start or pitstop.clock.now()
    if begin.year > 9000:
        raise InvalidInput("schedules are shown between the years 1970 and 9000")
    return begin, begin + timedelta(days=days)


@router.get("/api/oncall/schedules/{name}", summary="A schedule's shifts, overrides applied")
def schedule_shifts(
    name: ScheduleName, pitstop: PitstopDep, _key: Viewer, start: Instant | None = None, days: Days = 14
) -> dict[str, Any]:
    schedule = pitstop.oncall.schedule(name)
    shifts = schedule.shifts(*_span(pitstop, start, days))
    return {"name": name, "timezone": schedule.cfg.timezone, "shifts": [s.as_dict() for s in shifts]}


@router.get("/api/oncall/schedules/{name}/ical", summary="A schedule's shifts as an iCalendar file")
def schedule_ical(
    name: ScheduleName, pitstop: PitstopDep, _key: Viewer, start: Instant | None = None, days: Days = 90
) -> Response:
    schedule = pitstop.oncall.schedule(name)
    names = {k: c.name for k, c in pitstop.settings.oncall.contacts.items()}
    text = schedule.ical(*_span(pitstop, start, days), names, now=pitstop.clock.now())
    return Response(
        text,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="oncall-{name}.ics"'},
    )


@router.get("/api/oncall/contacts", summary="Contacts and how they are reached (webhook URLs are secret)")
def contacts(pitstop: PitstopDep, _key: Viewer) -> list[dict[str, Any]]:
    return [
        {
            "contact": key,
            "name": c.name,
            "email": c.email,
            "phone": c.phone,
            "webhook": c.webhook is not None,
            "webhook_format": c.webhook_format if c.webhook is not None else None,
        }
        for key, c in pitstop.settings.oncall.contacts.items()
    ]


@router.get("/api/oncall/escalations", summary="Escalations, newest first")
def escalations(
    pitstop: PitstopDep,
    _key: Viewer,
    state: Annotated[str, Query(pattern="^(active|all)$")] = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return [e.as_dict() for e in pitstop.oncall.list(active=state == "active", limit=limit)]


# -- the signed acknowledge link ---------------------------------------------------------------


def _page(status: int, heading: str, text: str, form: str = "") -> HTMLResponse:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta name='referrer' content='no-referrer'>"
        f"<title>pitstop: {html.escape(heading)}</title>"
        "<style>body{font:16px system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}"
        "button{font-size:1.2rem;padding:.6rem 1.4rem}</style></head><body>"
        f"<h1>{html.escape(heading)}</h1><p>{html.escape(text)}</p>{form}</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _describe(incident: Incident) -> str:
    return f"#{incident.id} {incident.key} ({incident.severity.value}, {incident.state.value}): {incident.title}"


@router.get("/ack/{token}", include_in_schema=False)
def ack_page(token: Token, pitstop: PitstopDep) -> HTMLResponse:
    try:
        _, incident = pitstop.oncall.check_link(token)
    except LinkRefused as exc:
        return _page(exc.status, "Link refused", str(exc))
    form = "<form method='post'><button type='submit'>Acknowledge</button></form>"
    if incident.state.value != "open":
        form = ""
    return _page(200, "Acknowledge this incident?", _describe(incident), form)


@router.post("/ack/{token}", include_in_schema=False)
def ack_by_link(token: Token, pitstop: PitstopDep) -> HTMLResponse:
    # The registry records who acknowledged (link:<recipient>) in the timeline and the audit log; the
    # request itself is not audited by path, which holds the token.
    try:
        incident, change = pitstop.oncall.acknowledge_link(token)
    except LinkRefused as exc:
        return _page(exc.status, "Not acknowledged", str(exc))
    if change.value == "none":
        return _page(200, "Already acknowledged", _describe(incident))
    return _page(200, "Acknowledged", f"{_describe(incident)}. Escalation stops; resolve it when it is fixed.")
