"""Dashboard pages and their form actions. Every action calls the same services as the API and is audited
(the API's middleware records each successful POST with the session's key as actor)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Query, Request
from fastapi import Path as FastPath
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.errors import PitstopError
from pitstop.storage.repos.sessions import SessionRepo
from pitstop.web import evidence, series
from pitstop.web.markdown import render_markdown
from pitstop.web.pages import (
    HERE,
    PREFIX,
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
    sessions_of,
)
from pitstop.web.plots import (
    Mark,
    band,
    epoch_us,
    figure,
    from_local,
    installation_zone,
    line,
    local,
    plain,
    plotly_bundle,
    plotly_gzipped,
    series_traces,
    unit_label,
)
from pitstop.web.session import COOKIE, LIFETIME_S, Sessions


def mount(app: FastAPI) -> None:
    """Add the dashboard to the API's application: pages under /ui, static files under /ui/static."""
    from pitstop.web import models, runs  # noqa: F401 - their pages join the router (runs)

    pitstop: Pitstop = app.state.pitstop
    app.state.web_sessions = Sessions(pitstop.settings.data_dir, SessionRepo(pitstop.db))
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="web-static")
    app.include_router(router)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        if exc.status == 401:
            return RedirectResponse(f"{PREFIX}/login", status_code=303)
        return render("error.html", request, None, status=exc.status, message=str(exc))

    api_http_error = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        """An unknown dashboard path is a page (the dashboard's layout, links back), 404; anything
        else (the API's paths, static files) keeps the API's JSON error."""
        path = request.url.path
        page = path.startswith(f"{PREFIX}/") and not path.startswith(f"{PREFIX}/static/")
        if exc.status_code == 404 and page:
            return render("not_found.html", request, _logged_in(request), status=404, path=path[:200])
        response: Response = await api_http_error(request, exc)  # type: ignore[misc]
        return response


def _logged_in(request: Request) -> Any:
    """The caller's key when logged in, else None (the page then shows no navigation)."""
    try:
        return caller_key(request)
    except Refused:
        return None


# -- login -------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return render("login.html", request, None, error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    body = await request.body()
    fields = {k: v[0] for k, v in parse_qs(body[:4096].decode(errors="replace"), max_num_fields=5).items()}
    token = fields.get("key", "").strip()[:200]
    pitstop = pitstop_of(request)
    key = pitstop.keys.authenticate(token) if token else None
    if key is None:
        return render("login.html", request, None, status=401, error="That key is not valid.")
    request.state.actor = f"web:{key.name}:{key.prefix}"
    response = redirect("/")
    response.set_cookie(
        COOKIE,
        sessions_of(request).issue(key, pitstop.clock.now()),
        max_age=LIFETIME_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=PREFIX,
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await posted_form(request, Role.VIEWER)
    sessions_of(request).end(request.cookies.get(COOKIE))
    response = redirect("/login")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# -- overview ----------------------------------------------------------------------------------


@router.get("/")
def overview(request: Request) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    now = p.clock.now()
    report = page_part("health report", lambda: p.health.report().as_dict())
    active = (
        page_part("incidents", lambda: p.incidents.list(state=[s for s in _states() if s.active], limit=1000)) or []
    )
    by_severity = Counter(i.severity.value for i in active)
    healing = page_part("remediation", lambda: _healing(p, now))
    due = page_part("work orders", lambda: _due_orders(p, now)) or []
    window = page_part("windows", lambda: _next_window(p, now))
    backup = page_part("backups", lambda: p.backup.records.last("backup"))
    drill = page_part("drills", lambda: p.backup.records.last("drill"))
    return render(
        "overview.html",
        request,
        key,
        report=report,
        by_severity=by_severity,
        active=active[:10],
        healing=healing,
        due=due,
        window=window,
        backup=backup,
        drill=drill,
    )


def _states() -> list[Any]:
    from pitstop.incidents import IncidentState

    return list(IncidentState)


def _healing(p: Pitstop, now: datetime) -> dict[str, Any]:
    since = now - timedelta(hours=24)
    done = [r for r in p.remediation.store.list(limit=500) if r.updated_at >= since]
    return {"count": len(done), "by_state": Counter(r.state for r in done), "recent": done[:5]}


def _due_orders(p: Pitstop, now: datetime) -> list[Any]:
    end = now + timedelta(days=7)
    return [o for o in p.maintenance.orders.list(active=True, limit=1000) if o.due_at is not None and o.due_at <= end]


def _next_window(p: Pitstop, now: datetime) -> tuple[str, datetime, datetime] | None:
    best: tuple[str, datetime, datetime] | None = None
    for w in p.alerts.mutes.windows():
        start_end = next(iter(w.occurrences(now, now + timedelta(days=31))), None)
        if start_end and (best is None or start_end[0] < best[1]):
            best = (w.name, start_end[0], start_end[1])
    return best


# -- incidents ---------------------------------------------------------------------------------


@router.get("/incidents")
def incidents_page(
    request: Request,
    state: Annotated[str, Query(max_length=20)] = "active",
    severity: Annotated[str, Query(max_length=20)] = "",
    area: Annotated[str, Query(max_length=50, pattern=r"^[a-z0-9_-]*$")] = "",
) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    from pitstop.core.types import Severity
    from pitstop.incidents import IncidentState

    states: list[IncidentState] | IncidentState | None
    if state == "active":
        states = [s for s in IncidentState if s.active]
    elif state == "all":
        states = None
    elif state in {s.value for s in IncidentState}:
        states = IncidentState(state)
    else:
        raise Refused(400, "state is not one of active, all, " + ", ".join(IncidentState))
    if severity and severity not in {s.value for s in Severity}:
        raise Refused(400, "severity is not one of " + ", ".join(Severity))
    items = (
        page_part(
            "incidents",
            lambda: p.incidents.list(
                state=states, area=area or None, severity=Severity(severity) if severity else None, limit=500
            ),
        )
        or []
    )
    plans = page_part("remediation", lambda: p.remediation.store.list(state="awaiting_approval", limit=100)) or []
    return render(
        "incidents.html",
        request,
        key,
        items=items,
        plans=plans,
        filters={"state": state, "severity": severity, "area": area},
        states=["active", "all", *IncidentState],
        severities=list(Severity),
    )


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, incident_id: int) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    if not 1 <= incident_id < 2**31:
        raise Refused(404, "no such incident")
    try:
        item = p.incidents.get(incident_id)
    except PitstopError:
        raise Refused(404, f"incident {incident_id} not found") from None
    timeline = page_part("timeline", lambda: p.incidents.timeline(item.id)) or []
    lessons = page_part("lessons", lambda: p.maintenance.kb.lessons(item.key)) or []
    now = p.clock.now()
    silences = [
        s
        for s in page_part("silences", lambda: p.alerts.mutes.silences(active_at=now)) or []
        if s.matchers.get("key") == item.key
    ]
    found = page_part("evidence", lambda: evidence.describe(p, item)) or evidence.read(item.detail)
    return render(
        "incident.html",
        request,
        key,
        item=item,
        evidence=found,
        advice=page_part("knowledge base", lambda: evidence.recommended(p, item, found)) or [],
        timeline=timeline,
        in_words=evidence.inline,
        lessons=lessons,
        markdown=render_markdown,
        silences=silences,
        silence_for=list(SILENCE_FOR),
    )


@router.post("/incidents/{incident_id}/ack")
async def incident_ack(request: Request, incident_id: int) -> Response:
    fields = await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    note = form_text(fields, "note", required=False)
    run_action(lambda: p.incidents.acknowledge(p.incidents.get(incident_id).key, actor=request.state.actor, note=note))
    return redirect(f"/incidents/{incident_id}")


@router.post("/incidents/{incident_id}/resolve")
async def incident_resolve(request: Request, incident_id: int) -> Response:
    fields = await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    reason = form_text(fields, "reason")
    lesson = form_text(fields, "lesson", required=False, limit=10_000)

    def resolve() -> None:
        item = p.incidents.get(incident_id)
        resolved, _ = p.incidents.resolve(item.key, reason=reason, actor=request.state.actor)
        if resolved is None:
            raise Refused(400, f"incident {incident_id} is already resolved")
        if lesson and hasattr(p, "maintenance"):
            p.maintenance.kb.add_lesson(item.key, lesson, author=request.state.actor)

    run_action(resolve)
    return redirect(f"/incidents/{incident_id}")


SILENCE_FOR = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


@router.post("/incidents/{incident_id}/assign")
async def incident_assign(request: Request, incident_id: int) -> Response:
    fields = await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    assignee = form_text(fields, "assignee", required=False, limit=200) or None
    run_action(
        lambda: p.incidents.assign(p.incidents.get(incident_id).key, assignee=assignee, actor=request.state.actor)
    )
    return redirect(f"/incidents/{incident_id}")


@router.post("/incidents/{incident_id}/silence")
async def incident_silence(request: Request, incident_id: int) -> Response:
    """Hold back the incident's notifications for a while (a silence on its key) and mark it suppressed."""
    from pitstop.incidents.windows import Silence

    fields = await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    reason = form_text(fields, "reason")
    span = SILENCE_FOR.get(fields.get("for", ""))
    if span is None:
        raise Refused(400, "silence for one of " + ", ".join(SILENCE_FOR))

    def silence() -> None:
        item = p.incidents.get(incident_id)
        now = p.clock.now()
        added = p.alerts.mutes.add_silence(
            Silence({"key": item.key}, request.state.actor, reason, now, now + span), now=now
        )
        until = added.ends_at.strftime("%Y-%m-%d %H:%M UTC")
        p.incidents.suppress(item.key, reason=f"silenced until {until}: {reason}", actor=request.state.actor)

    run_action(silence)
    return redirect(f"/incidents/{incident_id}")


@router.post("/remediations/{remediation_id}/{decision}")
async def remediation_decide(request: Request, remediation_id: int, decision: str) -> Response:
    fields = await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    if decision not in {"approve", "reject"}:
        raise Refused(404, "the decision is approve or reject")
    reason = form_text(fields, "reason", required=False) or f"{decision}d on the dashboard"
    method = p.remediation.approve if decision == "approve" else p.remediation.reject
    run_action(lambda: method(remediation_id, actor=request.state.actor, reason=reason))
    return redirect("/incidents")


# -- health ------------------------------------------------------------------------------------


@router.get("/health")
def health_page(request: Request) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    report = page_part("health report", lambda: p.health.report())
    specs = page_part("check specs", lambda: {s.id: s for s in p.health.specs()}) or {}
    rows = []
    for r in report.results if report else []:
        spec = specs.get(f"{r.check}:{r.target}")
        levels = list(spec.thresholds.values()) if spec else []
        metric = levels[0].metric if levels else next(iter(r.observed), None)
        level = levels[0] if levels else None
        history = page_part("history", partial(p.health.results.history, r.check, r.target, 60)) or []
        points = [
            (h.checked_at.timestamp(), float(h.observed[metric]))
            for h in history
            if metric is not None and metric in h.observed
        ]
        marks = [v for v in (level.warning, level.critical) if v is not None] if level else []
        rows.append(
            {
                "result": r,
                "metric": metric,
                "value": r.observed.get(metric) if metric else None,
                "level": level,
                "spark": line(points, width=160, height=32, thresholds=marks, label=f"{r.check} {r.target}"),
            }
        )
    return render("health.html", request, key, report=report, rows=rows)


@router.post("/health/run")
async def health_run(request: Request) -> Response:
    await posted_form(request, Role.OPERATOR)
    p = pitstop_of(request)
    run_action(lambda: p.health.evaluate(p.health.run_checks()))
    return redirect("/health")


# -- assets ------------------------------------------------------------------------------------

RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "1y": timedelta(days=365),
}


@router.get("/assets")
def assets_page(request: Request) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    assets = page_part("assets", p.assets.list_assets) or []
    report = page_part("health report", lambda: p.health.report().as_dict())
    statuses = {a["name"]: a["status"] for a in (report or {}).get("assets", [])}
    return render("assets.html", request, key, assets=assets, statuses=statuses)


@router.get("/assets/{name}")
def asset_page(
    request: Request,
    name: Annotated[str, FastPath(max_length=200)],
    range: Annotated[str, Query(max_length=5)] = "24h",
) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    if range not in RANGES:
        raise Refused(400, "range is one of " + ", ".join(RANGES))
    asset = p.assets.get_asset(name)
    if asset is None:
        raise Refused(404, f"no asset {name!r}")
    end = p.clock.now()
    start = end - RANGES[range]
    incidents = [
        i
        for i in page_part("incidents", lambda: p.incidents.list(state=None, limit=1000)) or []
        if _target_is(i.key, name)
    ][:20]
    orders = page_part("work orders", lambda: p.maintenance.orders.list(asset=name, limit=50)) or []
    plots = page_part("charts", partial(_charts, p, asset, start, end, incidents, orders)) or {"charts": []}
    entries = page_part("maintenance log", lambda: p.maintenance.log.entries(asset=name, limit=100000)) or []
    rul = _rul(p, name, RANGES[range]) if name in (page_part("prognostics", p.prognostics.monitored) or []) else None
    scoring = page_part("anomaly scoring", partial(p.scoring.status, name))
    return render(
        "asset.html",
        request,
        key,
        asset=asset,
        plots=plots,
        range=range,
        ranges=list(RANGES),
        incidents=incidents,
        briefs={i.id: evidence.read(i.detail, target=i.target).sentence for i in incidents},
        orders=orders,
        entries=list(reversed(entries))[:30],
        rul=rul,
        scoring=scoring,
    )


def _rul(p: Pitstop, name: str, span: timedelta) -> dict[str, Any] | None:
    """The remaining-life panel: the latest estimate and how its interval moved over the range."""
    summary = page_part(
        "remaining life", partial(p.prognostics.summary, name, days=max(span.total_seconds() / 86400, 1))
    )
    if summary is None:
        return None
    points = [
        (datetime.fromisoformat(c["at"]).timestamp(), c["lower_h"], c["median_h"], c["upper_h"])
        for c in summary["curve"]
    ]
    svg = band(points, thresholds=[summary["lead_time_h"]], label=f"remaining useful life of {name}, hours")
    return {**summary, "svg": svg}


def _charts(p: Pitstop, asset: Any, start: datetime, end: datetime, incidents: list[Any], orders: list[Any]) -> Any:
    """The asset page's sensor charts (web/plots.py, web/series.py): each sensor's buckets from the
    roll-ups, the twin's expected band, the incidents, findings and work orders on the time line, all
    charts over one extent: the data's within the window (and the marks' starts in it)."""
    zone, zone_name = installation_zone()
    start_us, end_us = epoch_us(start), epoch_us(end)
    sensors = page_part("sensors", partial(p.assets.sensors, asset.name)) or []
    data = {s.id: page_part("readings", partial(series.buckets, p.db, s.id, start_us, end_us)) or [] for s in sensors}
    marks = _chart_marks(p, asset.name, start, incidents, orders)
    edges = [t for b in data.values() if b for t in (b[0].start_us, b[-1].end_us)]
    edges += [t for t in (epoch_us(m.start) for m in marks) if start_us <= t <= end_us]
    extent = (min(edges), max(edges)) if edges else None
    expected = (
        page_part("expected values", partial(series.expected, p, asset.type, sensors, *extent)) if extent else None
    ) or {}
    charts = [
        {
            "id": f"chart-{s.id}",
            "sensor": s,
            "unit": unit_label(s.unit),
            "count": plain(sum(b.n for b in data[s.id])),
            "figure": figure(
                s,
                data[s.id],
                zone=zone,
                extent_us=extent,
                window_s=(end - start).total_seconds(),
                expected=expected.get(s.name),
                marks=marks,
            ),
        }
        for s in sensors
    ]
    shown = None if extent is None else (local(extent[0], zone)[:16], local(extent[1], zone)[:16])
    return {"charts": charts, "zone": zone_name, "extent": shown, "bundle": plotly_bundle(), "twin": bool(expected)}


def _chart_marks(p: Pitstop, asset: str, start: datetime, incidents: list[Any], orders: list[Any]) -> list[Mark]:
    """The asset's incidents (a sensor's only on its chart), the anomaly scorer's findings (their
    evidence windows) and its work orders, for the time line."""
    marks = [
        Mark(
            "incident",
            i.opened_at,
            i.resolved_at,
            f"incident #{i.id} ({i.severity.value}, {i.state.value}): {i.title}",
            i.key.partition(":")[2].partition("/")[2] or None,
        )
        for i in incidents
    ]
    for f in page_part("findings", lambda: p.scoring.findings(asset, since=start, limit=50)) or []:
        top = [s["signal"] for s in f["explanation"].get("top_signals", [])][:3]
        text = (
            f"finding: {', '.join(top) or 'signals'} abnormal (score {plain(f['score'])}, cut-off {plain(f['cutoff'])})"
        )
        marks.append(Mark("finding", datetime.fromisoformat(f["start"]), datetime.fromisoformat(f["end"]), text))
    marks += [
        Mark("order", o.opened_at, o.closed_at, f"work order #{o.id} ({o.state.value}): {o.title}") for o in orders
    ]
    return marks


MAX_SERIES_SPAN = timedelta(days=400)


@router.get("/assets/{name}/series")
def asset_series(
    request: Request,
    name: Annotated[str, FastPath(max_length=200)],
    sensor: Annotated[str, Query(max_length=200)],
    start: Annotated[str, Query(max_length=40)],
    end: Annotated[str, Query(max_length=40)],
) -> Response:
    """A chart's series for a zoomed span (times in the charts' zone, as plotly's axis gives them): the
    buckets and the expected band of that span at full resolution, and its y-range, as JSON."""
    caller_key(request)
    p = pitstop_of(request)
    zone, _ = installation_zone()
    try:
        t0, t1 = from_local(start, zone), min(from_local(end, zone), p.clock.now())
    except (ValueError, OverflowError):
        raise Refused(400, "start and end are local times like 2024-05-01 13:00:00") from None
    t0 = max(t0, t1 - MAX_SERIES_SPAN)
    if t0 >= t1:
        raise Refused(400, "start must be before end (and before now)")
    asset = p.assets.get_asset(name)
    found = next((s for s in p.assets.sensors(name) if s.name == sensor), None) if asset else None
    if asset is None or found is None:
        raise Refused(404, f"no sensor {sensor!r} on asset {name!r}")
    t0_us, t1_us = epoch_us(t0), epoch_us(t1)
    data = series.buckets(p.db, found.id, t0_us, t1_us)
    sensors = p.assets.sensors(name)
    expected = page_part(
        "expected values", partial(series.expected, p, asset.type, sensors, t0_us, t1_us, only=found.name)
    )
    traces, y = series_traces(found, data, zone, (expected or {}).get(found.name))
    return JSONResponse(
        {"data": traces, "yrange": y, "readings": sum(b.n for b in data)}, headers={"Cache-Control": "no-store"}
    )


@router.get("/vendor/{file}")
def vendor(request: Request, file: Annotated[str, FastPath(max_length=100)]) -> Response:
    """plotly.js and its CSS from the plotly package (never a CDN): named by version, cached for a year."""
    bundle = plotly_bundle()
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "Vary": "Accept-Encoding"}
    if bundle is not None and file == bundle.js_name:
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                plotly_gzipped(), media_type="text/javascript", headers={**headers, "Content-Encoding": "gzip"}
            )
        return FileResponse(bundle.path, media_type="text/javascript", headers=headers)
    if bundle is not None and file == bundle.css_name:
        return Response(bundle.css, media_type="text/css", headers=headers)
    raise Refused(404, f"no file {file[:100]!r} here")


def _target_is(key: str, asset: str) -> bool:
    """Whether an incident key's target is the asset or one of its sensors (`<asset>/<sensor>`)."""
    return key.endswith(f":{asset}") or key.partition(":")[2].startswith(f"{asset}/")


# -- maintenance, backups, knowledge base (read-only pages) --------------------------------------


@router.get("/maintenance")
def maintenance_page(
    request: Request,
    asset: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[str, Query(max_length=50)] = "",
    contains: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    now = p.clock.now()
    windows = page_part("windows", lambda: _window_times(p, now)) or []
    orders = page_part("work orders", lambda: p.maintenance.orders.list(active=True, limit=500)) or []
    board: dict[str, list[Any]] = {}
    for o in orders:
        board.setdefault(o.state.value, []).append(o)
    entries = _log(request, p, asset, kind, contains, limit=200)
    runs = page_part("procedure runs", lambda: p.maintenance.runner.runs(limit=5)) or []
    return render(
        "maintenance.html",
        request,
        key,
        runs=runs,
        windows=windows,
        board=board,
        entries=list(reversed(entries)),
        filters={"asset": asset, "kind": kind, "contains": contains},
    )


@router.get("/maintenance/log.csv")
def maintenance_log_csv(
    request: Request,
    asset: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[str, Query(max_length=50)] = "",
    contains: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    caller_key(request)
    from pitstop.maintenance.log import export

    entries = _log(request, pitstop_of(request), asset, kind, contains, limit=100_000)
    return Response(
        export(entries, "csv"),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="maintenance-log.csv"'},
    )


def _log(request: Request, p: Pitstop, asset: str, kind: str, contains: str, *, limit: int) -> list[Any]:
    try:
        return p.maintenance.log.entries(asset=asset or None, kind=kind or None, contains=contains or None, limit=limit)
    except PitstopError as exc:
        raise Refused(400, str(exc)) from None
    except AttributeError:
        return []


def _window_times(p: Pitstop, now: datetime) -> list[tuple[Any, list[tuple[datetime, datetime]]]]:
    return [(w, list(w.occurrences(now, now + timedelta(days=7)))[:7]) for w in p.alerts.mutes.windows()]


@router.get("/backups")
def backups_page(request: Request) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    sets = page_part("backup sets", p.backup.list_sets) or []
    prune = page_part("retention preview", lambda: p.backup.prune(dry_run=True)) or []
    drills = page_part("drills", lambda: p.backup.records.recent("drill", limit=20)) or []
    runs = page_part("backup runs", lambda: p.backup.records.recent(limit=20)) or []
    rto = page_part("rto", lambda: p.settings.backup.rto_minutes)
    return render("backups.html", request, key, sets=sets, prune=prune, drills=drills, runs=runs, rto=rto)


@router.get("/kb")
def kb_page(request: Request, q: Annotated[str, Query(max_length=500)] = "") -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    if q:
        found = page_part("knowledge base", lambda: p.maintenance.kb.search(q, limit=50)) or []
    else:
        found = page_part("knowledge base", lambda: p.maintenance.kb.entries()) or []
    return render("kb.html", request, key, q=q, found=found)


@router.get("/kb/{slug}")
def kb_entry_page(request: Request, slug: Annotated[str, FastPath(max_length=200)]) -> HTMLResponse:
    key = caller_key(request)
    p = pitstop_of(request)
    try:
        entry = p.maintenance.kb.get(slug)
    except PitstopError:
        raise Refused(404, "no such knowledge base entry") from None
    return render("kb_entry.html", request, key, entry=entry, body=render_markdown(entry.body))
