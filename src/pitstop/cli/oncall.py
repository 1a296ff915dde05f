"""`pitstop oncall now|schedule|contacts|escalations`: who is on call, shifts (also as iCal), contacts,
escalations. Acknowledging is `pitstop incidents ack KEY`."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from pitstop.config.oncall import parse_when
from pitstop.errors import InvalidInput

if TYPE_CHECKING:
    from pitstop.app import Pitstop

oncall_app = typer.Typer(help="On-call: who is on call, schedules, contacts, escalations.", no_args_is_help=True)
out = Console()

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
When = Annotated[str | None, typer.Option("--at", help="An ISO time with its offset (default: now).")]


def _pitstop(ctx: typer.Context) -> Pitstop:
    pitstop: Pitstop = ctx.obj.pitstop()
    return pitstop


def _when(text: str | None, pitstop: Pitstop) -> datetime:
    if text is None:
        return pitstop.clock.now()
    try:
        value = parse_when(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if not 1970 <= value.year <= 9000:
        raise InvalidInput("times run from 1970 to 9000")
    return value


def _name(pitstop: Pitstop, contact: str | None) -> str:
    if contact is None:
        return "-"
    found = pitstop.settings.oncall.contacts.get(contact)
    return f"{found.name} ({contact})" if found else contact


@oncall_app.command("now")
def oncall_now(ctx: typer.Context, at: When = None, as_json: AsJson = False) -> None:
    """Who is on call in each schedule (primary, secondary, until when), and escalations under way."""
    pitstop = _pitstop(ctx)
    on_call = pitstop.oncall.now(_when(at, pitstop))
    running = pitstop.oncall.list(active=True)
    if as_json:
        data = {"on_call": [o.as_dict() for o in on_call], "escalations": [e.as_dict() for e in running]}
        out.print_json(json.dumps(data))
        return
    if not on_call:
        out.print("no on-call schedules: see [oncall.schedules] in pitstop.toml")
    table = Table("schedule", "primary", "secondary", "until", box=None)
    for o in on_call:
        primary = _name(pitstop, o.primary) + (" (override)" if o.override else "")
        table.add_row(o.schedule, primary, _name(pitstop, o.secondary), o.until.isoformat(timespec="minutes"))
    if on_call:
        out.print(table)
    for e in running:
        out.print(f"escalating {e.incident_key} (policy {e.policy}, {e.fired} step(s) sent, next {e.next_at})")


@oncall_app.command("schedule")
def oncall_schedule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The schedule, as named under [oncall.schedules].")],
    start: Annotated[str | None, typer.Option("--from", help="ISO time with offset (default: now).")] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days to show.")] = 14,
    ical: Annotated[bool, typer.Option("--ical", help="Print an iCalendar (.ics) file instead.")] = False,
    as_json: AsJson = False,
) -> None:
    """A schedule's shifts with overrides applied, in its time zone (or as iCal / JSON)."""
    pitstop = _pitstop(ctx)
    schedule = pitstop.oncall.schedule(name)
    begin = _when(start, pitstop)
    end = begin + timedelta(days=days)
    if ical:
        names = {k: c.name for k, c in pitstop.settings.oncall.contacts.items()}
        sys.stdout.write(schedule.ical(begin, end, names, now=pitstop.clock.now()))
        return
    shifts = schedule.shifts(begin, end)
    if as_json:
        data = {"name": name, "timezone": schedule.cfg.timezone, "shifts": [s.as_dict() for s in shifts]}
        out.print_json(json.dumps(data))
        return
    table = Table("from", "to", f"on call ({schedule.cfg.timezone})", box=None)
    for s in shifts:
        local = (s.start.astimezone(schedule.zone), s.end.astimezone(schedule.zone))
        who = _name(pitstop, s.contact) + (" (override)" if s.override else "")
        table.add_row(f"{local[0]:%a %Y-%m-%d %H:%M}", f"{local[1]:%a %Y-%m-%d %H:%M}", who)
    out.print(table)


@oncall_app.command("contacts")
def oncall_contacts(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Contacts and how they are reached (webhook URLs are secrets and not shown)."""
    pitstop = _pitstop(ctx)
    contacts = pitstop.settings.oncall.contacts
    if as_json:
        data = [
            {"contact": k, "name": c.name, "email": c.email, "phone": c.phone, "webhook": c.webhook is not None}
            for k, c in contacts.items()
        ]
        out.print_json(json.dumps(data))
        return
    table = Table("contact", "name", "email", "phone", "webhook", box=None)
    for key, c in contacts.items():
        table.add_row(key, c.name, c.email or "", c.phone or "", c.webhook_format if c.webhook else "")
    out.print(table)


@oncall_app.command("escalations")
def oncall_escalations(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Also stopped and finished ones.")] = False,
    as_json: AsJson = False,
) -> None:
    """Escalations under way (or all), newest first."""
    rows = _pitstop(ctx).oncall.list(active=not every)
    if as_json:
        out.print_json(json.dumps([e.as_dict() for e in rows]))
        return
    table = Table("incident", "policy", "state", "sent", "next", "last", box=None)
    for e in rows:
        nxt = e.next_at.isoformat(timespec="minutes") if e.next_at else ""
        table.add_row(
            e.incident_key,
            e.policy,
            e.state + (f" by {e.stopped_by}" if e.stopped_by else ""),
            str(e.fired),
            nxt,
            e.last,
        )
    out.print(table)
