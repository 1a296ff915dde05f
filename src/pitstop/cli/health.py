"""`pitstop check`, `pitstop incidents list|show|ack|resolve`, `pitstop silence add|list|expire`,
`pitstop windows add|list|remove`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from pitstop.core.types import Status
from pitstop.errors import InvalidInput
from pitstop.incidents import IncidentState
from pitstop.incidents.windows import Silence, Window, parse_matchers, recurring

if TYPE_CHECKING:
    from pitstop.app import Pitstop

incidents_app = typer.Typer(help="Incidents: list, show, acknowledge, resolve.", no_args_is_help=True)
silence_app = typer.Typer(
    help="Silences: hold back notifications of matching alerts for a while.", no_args_is_help=True
)
windows_app = typer.Typer(
    help="Maintenance windows: recurring or one-off times when alerts are held back.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
COLOR = {Status.HEALTHY: "green", Status.WARNING: "yellow", Status.CRITICAL: "red", Status.UNKNOWN: "magenta"}


def _pitstop(ctx: typer.Context) -> Pitstop:
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
        out.print_json(json.dumps(report.as_dict()))
        raise typer.Exit(report.exit_code)
    table = Table("status", "check", "target", "summary", "ms")
    for r in results:
        table.add_row(
            f"[{COLOR[r.status]}]{r.status.value}[/]", r.check, r.target, r.summary, f"{r.duration_s * 1000:.0f}"
        )
    out.print(table)
    for part in [*report.assets.values(), *report.sites.values()]:
        if part.status is not Status.HEALTHY:
            out.print(f"[{COLOR[part.status]}]{part.name}: {part.status.value}[/] ({part.completeness:.0%} complete)")
    inst = report.installation
    out.print(
        f"installation: [{COLOR[inst.status]}]{inst.status.value}[/] — {inst.fresh}/{inst.expected} checks reported"
    )
    for advice in inst.recommendations:
        out.print(f"  → {advice}")
    raise typer.Exit(report.exit_code)


# -- incidents ---------------------------------------------------------------------------------


@incidents_app.command("list")
def incidents_list(
    ctx: typer.Context,
    state: Annotated[
        str, typer.Option(help="active (default), all, open, acknowledged, suppressed, resolved")
    ] = "active",
    area: Annotated[str | None, typer.Option(help="Only keys of this area, e.g. disk.")] = None,
    limit: int = 100,
    as_json: AsJson = False,
) -> None:
    """List incidents, newest first."""
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
        out.print_json(json.dumps([i.as_dict() for i in items]))
        return
    table = Table("id", "state", "severity", "key", "title", "assignee", "updated")
    for i in items:
        table.add_row(
            str(i.id),
            i.state.value,
            i.severity.value,
            i.key,
            i.title,
            i.assignee or "",
            i.updated_at.isoformat(timespec="seconds"),
        )
    out.print(table)


@incidents_app.command("show")
def incidents_show(
    ctx: typer.Context, incident: Annotated[str, typer.Argument(help="Key or id.")], as_json: AsJson = False
) -> None:
    """One incident with its timeline."""
    pitstop = _pitstop(ctx)
    item = pitstop.incidents.get(incident)
    timeline = pitstop.incidents.timeline(item.id)
    if as_json:
        data = item.as_dict() | {
            "timeline": [
                {
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "to": e.to_state.value,
                    "detail": e.detail,
                }
                for e in timeline
            ]
        }
        out.print_json(json.dumps(data))
        return
    out.print(f"[bold]{item.key}[/bold]  #{item.id}  {item.state.value}  {item.severity.value}")
    out.print(f"  {item.title}")
    if item.detail:
        out.print(f"  {item.detail}")
    if item.assignee:
        out.print(f"  assigned to {item.assignee}")
    for e in timeline:
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items())
        out.print(f"  {e.at.isoformat(timespec='seconds')}  {e.action:<12} by {e.actor}  {detail}")


@incidents_app.command("ack")
def incidents_ack(
    ctx: typer.Context,
    key: str,
    note: Annotated[str, typer.Option(help="What you are doing about it.")] = "",
    by: Annotated[str | None, typer.Option(help="Who acknowledges (default: cli:<user>).")] = None,
) -> None:
    """Acknowledge an open incident."""
    incident, change = _pitstop(ctx).incidents.acknowledge(key, actor=_actor(by), note=note)
    out.print(f"{incident.key}: {incident.state.value}" + (" (no change)" if change.value == "none" else ""))


@incidents_app.command("resolve")
def incidents_resolve(
    ctx: typer.Context,
    key: str,
    reason: Annotated[str, typer.Option(help="Why it is resolved.")],
    by: Annotated[str | None, typer.Option(help="Who resolves (default: cli:<user>).")] = None,
) -> None:
    """Resolve an incident by hand."""
    incident, _ = _pitstop(ctx).incidents.resolve(key, reason=reason, actor=_actor(by))
    if incident is None:
        err.print(f"no unresolved incident with key {key!r}")
        raise typer.Exit(1)
    out.print(f"{incident.key}: resolved")


# -- silences ----------------------------------------------------------------------------------


def _duration(text: str) -> timedelta:
    units = {"m": 60, "h": 3600, "d": 86400}
    try:
        value, unit = float(text[:-1]), text[-1]
        seconds = value * units[unit]
    except (ValueError, KeyError, IndexError):
        raise InvalidInput(f"duration {text!r} is not like 30m, 2h or 1d") from None
    if not 0 < seconds <= 90 * 86400:
        raise InvalidInput("a silence lasts more than 0 and at most 90 days")
    return timedelta(seconds=seconds)


@silence_app.command("add")
def silence_add(
    ctx: typer.Context,
    match: Annotated[list[str], typer.Argument(help="label=value matchers, e.g. asset=pump-1 check=disk key='disk.*'")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    reason: Annotated[str, typer.Option(help="Why (required).")],
    by: Annotated[str | None, typer.Option(help="Who (default: cli:<user>).")] = None,
) -> None:
    """Hold back notifications of matching alerts; they are logged as suppressed."""
    pitstop = _pitstop(ctx)
    now = pitstop.clock.now()
    silence = pitstop.alerts.mutes.add_silence(
        Silence(parse_matchers(match), _actor(by), reason, now, now + _duration(duration)), now=now
    )
    out.print(f"silence {silence.id} until {silence.ends_at.isoformat(timespec='minutes')}")


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
        out.print_json(json.dumps([s.as_dict() for s in items]))
        return
    table = Table("id", "matchers", "creator", "reason", "until")
    for s in items:
        table.add_row(
            str(s.id),
            " ".join(f"{k}={v}" for k, v in s.matchers.items()),
            s.creator,
            s.reason,
            s.ends_at.isoformat(timespec="minutes"),
        )
    out.print(table)


@silence_app.command("expire")
def silence_expire(ctx: typer.Context, silence_id: int, by: Annotated[str | None, typer.Option()] = None) -> None:
    """End a silence now."""
    pitstop = _pitstop(ctx)
    pitstop.alerts.mutes.expire_silence(silence_id, now=pitstop.clock.now(), actor=_actor(by))
    out.print(f"silence {silence_id} expired")


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
) -> None:
    """Add a recurring window, e.g. `windows add sunday site=north-plant --days sun --from 02:00 --to 04:00`."""
    pitstop = _pitstop(ctx)
    window: Window = recurring(
        name, parse_matchers(match), days=days, start=start, end=end, timezone=tz, creator=_actor(by), reason=reason
    )
    saved = pitstop.alerts.mutes.add_window(window, now=pitstop.clock.now())
    out.print(f"window {saved.name}: {saved.describe()}")


@windows_app.command("list")
def windows_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Maintenance windows and their next slot."""
    pitstop = _pitstop(ctx)
    now = pitstop.clock.now()
    items = pitstop.alerts.mutes.windows()
    if as_json:
        out.print_json(json.dumps([w.as_dict() for w in items]))
        return
    table = Table("name", "schedule", "matchers", "next", "active")
    for w in items:
        nxt = next(w.occurrences(now, now + timedelta(days=400)), None)
        table.add_row(
            w.name,
            w.describe(),
            " ".join(f"{k}={v}" for k, v in w.matchers.items()),
            nxt[0].isoformat(timespec="minutes") if nxt else "",
            "yes" if w.active_at(now) else "",
        )
    out.print(table)


@windows_app.command("remove")
def windows_remove(ctx: typer.Context, name: str, by: Annotated[str | None, typer.Option()] = None) -> None:
    """Remove a maintenance window."""
    pitstop = _pitstop(ctx)
    pitstop.alerts.mutes.remove_window(name, now=pitstop.clock.now(), actor=_actor(by))
    out.print(f"window {name} removed")
