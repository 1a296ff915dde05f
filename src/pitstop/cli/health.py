"""`pitstop check`, `pitstop incidents list|show|ack|resolve`, `pitstop silence add|list|expire`,
`pitstop windows add|list|remove`."""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from pitstop.cli.output import AsJson, coloured, emit_json, err, fields, out, say, table
from pitstop.cli.times import parse_span
from pitstop.core.types import Status
from pitstop.errors import InvalidInput

if TYPE_CHECKING:
    from pitstop.app import Pitstop
    from pitstop.incidents.models import Incident

incidents_app = typer.Typer(
    help="Incidents: list (the default), show, acknowledge, resolve.", invoke_without_command=True
)
silence_app = typer.Typer(
    help="Silences: hold back notifications of matching alerts for a while.", no_args_is_help=True
)
windows_app = typer.Typer(
    help="Maintenance windows: recurring or one-off times when alerts are held back.", no_args_is_help=True
)

COLOR = {Status.HEALTHY: "green", Status.WARNING: "yellow", Status.CRITICAL: "red", Status.UNKNOWN: "magenta"}


def _pitstop(ctx: typer.Context) -> "Pitstop":
    pitstop: Pitstop = ctx.obj.pitstop()
    return pitstop


def _actor(given: str | None) -> str:
    import getpass

    return given or f"cli:{getpass.getuser()}"


# -- check -------------------------------------------------------------------------------------


def check_command(
    ctx: typer.Context,
    as_json: AsJson = False,
    notify: Annotated[
        bool, typer.Option("--notify", help="Also judge the results: open/resolve incidents and send their alerts.")
    ] = False,
) -> None:
    """Run every check now and print the status. Exit code 0 healthy, 1 warning or unknown, 2 critical."""
    pitstop = _pitstop(ctx)
    if notify:
        results = pitstop.health.run_round().results
        pitstop.feed.deliver()  # the alert service and the maintenance log, now rather than from `serve`
    else:
        results = pitstop.health.run_checks()
    report = pitstop.health.report(results)
    if as_json:
        emit_json(report.as_dict())
        raise typer.Exit(report.exit_code)
    table(
        ("status", "check", "target", "summary", "ms"),
        (
            (coloured(r.status.value, COLOR[r.status]), r.check, r.target, r.summary, f"{r.duration_s * 1000:.0f}")
            for r in results
        ),
        empty="no checks ran: none is configured (see [health] in pitstop.toml)",
    )
    for part in [*report.assets.values(), *report.sites.values()]:
        if not part.reports:
            say(f"{part.name}: reports nothing of its own (no sensors and no checks that judge it), not counted")
        elif part.status is not Status.HEALTHY:
            _status_line(f"{part.name}: {part.status.value}", part.status, f" ({part.completeness:.0%} complete)")
    inst = report.installation
    _status_line(f"installation: {inst.status.value}", inst.status, f" — {inst.fresh}/{inst.expected} checks reported")
    for advice in inst.recommendations:
        say(f"  → {advice}")
    raise typer.Exit(report.exit_code)


def _status_line(words: str, status: Status, rest: str = "") -> None:
    """A line with a status in its colour."""
    out.print(Text.assemble((words, COLOR[status]), rest), soft_wrap=True)


# -- incidents ---------------------------------------------------------------------------------

IncidentStates = Annotated[
    str, typer.Option("--state", help="active (default), all, open, acknowledged, suppressed, resolved")
]
Area = Annotated[str | None, typer.Option(help="Only keys of this area, e.g. disk.")]
Limit = Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")]


@incidents_app.callback()
def incidents_default(
    ctx: typer.Context, state: IncidentStates = "active", area: Area = None, limit: Limit = 100, as_json: AsJson = False
) -> None:
    """Incidents. `pitstop incidents` alone lists the active ones (as `pitstop incidents list`)."""
    if ctx.invoked_subcommand is None:
        incidents_list(ctx, state=state, area=area, limit=limit, as_json=as_json)


@incidents_app.command("list")
def incidents_list(
    ctx: typer.Context, state: IncidentStates = "active", area: Area = None, limit: Limit = 100, as_json: AsJson = False
) -> None:
    """List incidents, newest first."""
    from pitstop.incidents import IncidentState

    pitstop = _pitstop(ctx)
    if state == "active":
        states: list[IncidentState] | IncidentState | None = [s for s in IncidentState if s.active]
    elif state == "all":
        states = None
    else:
        try:
            states = IncidentState(state)
        except ValueError:
            raise InvalidInput(f"state {state!r} is not active, all, {', '.join(IncidentState)}") from None
    items = pitstop.incidents.list(state=states, area=area, limit=limit)
    if as_json:
        emit_json([i.as_dict() for i in items])
        return
    table(
        ("id", "state", "severity", "key", "title", "assignee", "updated"),
        ((i.id, i.state, i.severity, i.key, i.title, i.assignee, i.updated_at) for i in items),
        empty=f"no {'' if state == 'all' else state + ' '}incidents{f' of area {area}' if area else ''}",
    )


@incidents_app.command("show")
def incidents_show(
    ctx: typer.Context, incident: Annotated[str, typer.Argument(help="Key or id.")], as_json: AsJson = False
) -> None:
    """One incident with its timeline."""
    pitstop = _pitstop(ctx)
    item = pitstop.incidents.get(incident)
    timeline = pitstop.incidents.timeline(item.id)
    if as_json:
        events = [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "to": e.to_state.value, "detail": e.detail}
            for e in timeline
        ]
        emit_json(item.as_dict() | {"timeline": events})
        return
    fields(_incident_fields(item), title=f"incident {item.key}")
    table(
        ("at", "action", "by", "to", "detail"),
        ((e.at, e.action, e.actor, e.to_state, e.detail) for e in timeline),
        empty="no events yet",
        title="timeline",
    )


def _incident_fields(item: "Incident") -> list[tuple[str, Any]]:
    return [
        ("id", item.id),
        ("key", item.key),
        ("state", item.state),
        ("severity", item.severity),
        ("title", item.title),
        ("detail", item.detail),
        ("source", item.source),
        ("assignee", item.assignee),
        ("opened", item.opened_at),
        ("updated", item.updated_at),
        ("resolved", item.resolved_at),
    ]


@incidents_app.command("ack")
def incidents_ack(
    ctx: typer.Context,
    key: str,
    note: Annotated[str, typer.Option(help="What you are doing about it.")] = "",
    by: Annotated[str | None, typer.Option(help="Who acknowledges (default: cli:<user>).")] = None,
    as_json: AsJson = False,
) -> None:
    """Acknowledge an open incident."""
    incident, change = _pitstop(ctx).incidents.acknowledge(key, actor=_actor(by), note=note)
    if as_json:
        emit_json(incident.as_dict() | {"change": change.value})
        return
    say(f"{incident.key}: {incident.state.value}" + (" (no change)" if change.value == "none" else ""))


@incidents_app.command("resolve")
def incidents_resolve(
    ctx: typer.Context,
    key: str,
    reason: Annotated[str, typer.Option(help="Why it is resolved.")],
    by: Annotated[str | None, typer.Option(help="Who resolves (default: cli:<user>).")] = None,
    as_json: AsJson = False,
) -> None:
    """Resolve an incident by hand."""
    incident, _ = _pitstop(ctx).incidents.resolve(key, reason=reason, actor=_actor(by))
    if incident is None:
        err.print(f"no unresolved incident with key {key!r}", highlight=False, markup=False)
        raise typer.Exit(1)
    if as_json:
        emit_json(incident.as_dict())
        return
    say(f"{incident.key}: resolved")


# -- silences ----------------------------------------------------------------------------------


def _duration(text: str) -> timedelta:
    span = parse_span(text, "--for")
    if not timedelta(0) < span <= timedelta(days=90):
        raise InvalidInput("a silence lasts more than 0 and at most 90 days")
    return span


@silence_app.command("add")
def silence_add(
    ctx: typer.Context,
    match: Annotated[list[str], typer.Argument(help="label=value matchers, e.g. asset=pump-1 check=disk key='disk.*'")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    reason: Annotated[str, typer.Option(help="Why (required).")],
    by: Annotated[str | None, typer.Option(help="Who (default: cli:<user>).")] = None,
    as_json: AsJson = False,
) -> None:
    """Hold back notifications of matching alerts; they are logged as suppressed."""
    from pitstop.incidents.windows import Silence, parse_matchers

    pitstop = _pitstop(ctx)
    now = pitstop.clock.now()
    silence = pitstop.alerts.mutes.add_silence(
        Silence(parse_matchers(match), _actor(by), reason, now, now + _duration(duration)), now=now
    )
    if as_json:
        emit_json(silence.as_dict())
        return
    say(f"silence {silence.id} until {silence.ends_at.isoformat(timespec='minutes')}")


@silence_app.command("list")
def silence_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Also expired ones.")] = False,
    as_json: AsJson = False,
) -> None:
    """Silences in force (or all)."""
    pitstop = _pitstop(ctx)
    items = pitstop.alerts.mutes.silences(active_at=None if all_ else pitstop.clock.now())
    if as_json:
        emit_json([s.as_dict() for s in items])
        return
    table(
        ("id", "matchers", "creator", "reason", "until"),
        ((s.id, s.matchers, s.creator, s.reason, s.ends_at.isoformat(timespec="minutes")) for s in items),
        empty="no silences" if all_ else "no silences in force",
    )


@silence_app.command("expire")
def silence_expire(
    ctx: typer.Context, silence_id: int, by: Annotated[str | None, typer.Option()] = None, as_json: AsJson = False
) -> None:
    """End a silence now."""
    pitstop = _pitstop(ctx)
    pitstop.alerts.mutes.expire_silence(silence_id, now=pitstop.clock.now(), actor=_actor(by))
    if as_json:
        emit_json({"id": silence_id, "expired": True})
        return
    say(f"silence {silence_id} expired")


# -- windows -----------------------------------------------------------------------------------


@windows_app.command("add")
def windows_add(
    ctx: typer.Context,
    name: str,
    match: Annotated[
        list[str], typer.Argument(help="label=value matchers of the affected alerts, e.g. site=north-plant")
    ],
    days: Annotated[str, typer.Option(help="daily, or weekdays: sun or mon,wed.")] = "daily",
    start: Annotated[str, typer.Option("--from", help="Local start time HH:MM.")] = "02:00",
    end: Annotated[str, typer.Option("--to", help="Local end time HH:MM (may be past midnight).")] = "04:00",
    tz: Annotated[str, typer.Option(help="Time zone, e.g. Europe/Berlin.")] = "UTC",
    reason: str = "",
    by: Annotated[str | None, typer.Option()] = None,
    as_json: AsJson = False,
) -> None:
    """Add a recurring window, e.g. `windows add sunday site=north-plant --days sun --from 02:00 --to 04:00`."""
    from pitstop.incidents.windows import parse_matchers, recurring

    pitstop = _pitstop(ctx)
    window = recurring(
        name, parse_matchers(match), days=days, start=start, end=end, timezone=tz, creator=_actor(by), reason=reason
    )
    saved = pitstop.alerts.mutes.add_window(window, now=pitstop.clock.now())
    if as_json:
        emit_json(saved.as_dict())
        return
    say(f"window {saved.name}: {saved.describe()}")


@windows_app.command("list")
def windows_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Maintenance windows and their next slot."""
    pitstop = _pitstop(ctx)
    now = pitstop.clock.now()
    items = pitstop.alerts.mutes.windows()
    if as_json:
        emit_json([w.as_dict() for w in items])
        return
    rows = []
    for w in items:
        nxt = next(w.occurrences(now, now + timedelta(days=400)), None)
        rows.append(
            (
                w.name,
                w.describe(),
                w.matchers,
                nxt[0].isoformat(timespec="minutes") if nxt else "none within 400 days",
                "yes" if w.active_at(now) else "no",
            )
        )
    table(
        ("name", "schedule", "matchers", "next", "active"),
        rows,
        empty="no maintenance windows: add one with `pitstop windows add`",
    )


@windows_app.command("remove")
def windows_remove(
    ctx: typer.Context, name: str, by: Annotated[str | None, typer.Option()] = None, as_json: AsJson = False
) -> None:
    """Remove a maintenance window."""
    pitstop = _pitstop(ctx)
    pitstop.alerts.mutes.remove_window(name, now=pitstop.clock.now(), actor=_actor(by))
    if as_json:
        emit_json({"name": name, "removed": True})
        return
    say(f"window {name} removed")
