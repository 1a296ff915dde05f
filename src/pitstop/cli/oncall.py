"""`pitstop oncall now|schedule|contacts|escalations`: who is on call, shifts (also as iCal), contacts,
escalations. Acknowledging is `pitstop incidents ack KEY`."""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from pitstop.cli.output import AsJson, emit_json, say, table
from pitstop.cli.times import EXAMPLES, parse_time
from pitstop.errors import InvalidInput

if TYPE_CHECKING:
    from pitstop.app import Pitstop

oncall_app = typer.Typer(help="On-call: who is on call, schedules, contacts, escalations.", no_args_is_help=True)

WHEN_HELP = f"ISO 8601 with offset, a date (UTC), or relative to now: {EXAMPLES}; a bare span counts ahead"
When = Annotated[str | None, typer.Option("--at", help=f"When: {WHEN_HELP} (default: now).")]


def _pitstop(ctx: typer.Context) -> "Pitstop":
    pitstop: Pitstop = ctx.obj.pitstop()
    return pitstop


def _when(text: str | None, pitstop: "Pitstop", option: str) -> datetime:
    if text is None:
        return pitstop.clock.now()
    value = parse_time(text, now=pitstop.clock.now(), option=option, bare="ahead")
    if not 1970 <= value.year <= 9000:
        raise InvalidInput("times run from 1970 to 9000")
    return value


def _name(pitstop: "Pitstop", contact: str | None) -> str:
    if contact is None:
        return "-"
    found = pitstop.settings.oncall.contacts.get(contact)
    return f"{found.name} ({contact})" if found else contact


@oncall_app.command("now")
def oncall_now(ctx: typer.Context, at: When = None, as_json: AsJson = False) -> None:
    """Who is on call in each schedule (primary, secondary, until when), and escalations under way."""
    pitstop = _pitstop(ctx)
    on_call = pitstop.oncall.now(_when(at, pitstop, "--at"))
    running = pitstop.oncall.list(active=True)
    if as_json:
        emit_json({"on_call": [o.as_dict() for o in on_call], "escalations": [e.as_dict() for e in running]})
        return
    table(
        ("schedule", "primary", "secondary", "until"),
        (
            (
                o.schedule,
                _name(pitstop, o.primary) + (" (override)" if o.override else ""),
                _name(pitstop, o.secondary),
                o.until.isoformat(timespec="minutes"),
            )
            for o in on_call
        ),
        empty="no on-call schedules: see [oncall.schedules] in pitstop.toml",
    )
    for e in running:
        nxt = e.next_at.isoformat(timespec="minutes") if e.next_at else "none"
        say(f"escalating {e.incident_key} (policy {e.policy}, {e.fired} step(s) sent, next {nxt})")


@oncall_app.command("schedule")
def oncall_schedule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The schedule, as named under [oncall.schedules].")],
    start: Annotated[str | None, typer.Option("--from", help=f"From: {WHEN_HELP} (default: now).")] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days to show.")] = 14,
    ical: Annotated[bool, typer.Option("--ical", help="Print an iCalendar (.ics) file instead.")] = False,
    as_json: AsJson = False,
) -> None:
    """A schedule's shifts with overrides applied, in its time zone (or as iCal / JSON)."""
    pitstop = _pitstop(ctx)
    schedule = pitstop.oncall.schedule(name)
    begin = _when(start, pitstop, "--from")
    end = begin + timedelta(days=days)
    if ical:
        names = {k: c.name for k, c in pitstop.settings.oncall.contacts.items()}
        sys.stdout.write(schedule.ical(begin, end, names, now=pitstop.clock.now()))
        return
    shifts = schedule.shifts(begin, end)
    if as_json:
        emit_json({"name": name, "timezone": schedule.cfg.timezone, "shifts": [s.as_dict() for s in shifts]})
        return
    table(
        ("from", "to", f"on call ({schedule.cfg.timezone})"),
        (
            (
                f"{s.start.astimezone(schedule.zone):%a %Y-%m-%d %H:%M}",
                f"{s.end.astimezone(schedule.zone):%a %Y-%m-%d %H:%M}",
                _name(pitstop, s.contact) + (" (override)" if s.override else ""),
            )
            for s in shifts
        ),
        empty=f"no shifts of {name} in those {days} days",
    )


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
        emit_json(data)
        return
    table(
        ("contact", "name", "email", "phone", "webhook"),
        ((key, c.name, c.email, c.phone, c.webhook_format if c.webhook else "none") for key, c in contacts.items()),
        empty="no contacts: see [oncall.contacts] in pitstop.toml",
    )


@oncall_app.command("escalations")
def oncall_escalations(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Also stopped and finished ones.")] = False,
    as_json: AsJson = False,
) -> None:
    """Escalations under way (or all), newest first."""
    rows = _pitstop(ctx).oncall.list(active=not every)
    if as_json:
        emit_json([e.as_dict() for e in rows])
        return
    table(
        ("incident", "policy", "state", "sent", "next", "last"),
        (
            (
                e.incident_key,
                e.policy,
                e.state + (f" by {e.stopped_by}" if e.stopped_by else ""),
                e.fired,
                e.next_at.isoformat(timespec="minutes") if e.next_at else None,
                e.last,
            )
            for e in rows
        ),
        empty="no escalations" if every else "no escalations under way",
    )
