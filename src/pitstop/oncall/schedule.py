"""Who is on call when: a rotation of contacts with hand-offs at a local time, and overrides.

Shift k of the rotation begins at the hand-off time, in the schedule's time zone, on the day
`start + k * interval_days`, and its contact is `rotation[k % len(rotation)]`. Hand-offs stay at
the same wall-clock time across a daylight-saving change (that week's shift is an hour shorter or
longer). An override puts another contact on call between its start and end; when overrides
overlap, the one listed last wins. The secondary is the next contact of the rotation after the
regular one who is not the primary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from pitstop.config.oncall import ScheduleSettings
from pitstop.errors import InvalidInput

MAX_SPAN = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class Shift:
    start: datetime  # UTC
    end: datetime
    contact: str
    override: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "contact": self.contact,
            "override": self.override,
        }


class Schedule:
    def __init__(self, name: str, cfg: ScheduleSettings) -> None:
        self.name = name
        self.cfg = cfg
        self.zone = ZoneInfo(cfg.timezone)
        self.handoff = time.fromisoformat(cfg.handoff)

    def handoff_at(self, k: int) -> datetime:
        """The start of regular shift k, in UTC."""
        day = self.cfg.start + timedelta(days=k * self.cfg.interval_days)
        return datetime.combine(day, self.handoff, self.zone).astimezone(UTC)

    def index_at(self, at: datetime) -> int:
        """The regular shift in force at `at` (negative before the first hand-off)."""
        days = (at.astimezone(self.zone).date() - self.cfg.start).days
        k = days // self.cfg.interval_days
        while self.handoff_at(k) > at:
            k -= 1
        while self.handoff_at(k + 1) <= at:
            k += 1
        return k

    def regular_at(self, at: datetime) -> str:
        return self.cfg.rotation[self.index_at(at) % len(self.cfg.rotation)]

    def override_at(self, at: datetime) -> str | None:
        found = None
        for o in self.cfg.overrides:
            if o.start <= at < o.end:
                found = o.contact
        return found

    def primary_at(self, at: datetime) -> str:
        return self.override_at(at) or self.regular_at(at)

    def secondary_at(self, at: datetime) -> str | None:
        rotation = self.cfg.rotation
        k = self.index_at(at)
        primary = self.primary_at(at)
        for step in range(1, len(rotation) + 1):
            candidate = rotation[(k + step) % len(rotation)]
            if candidate != primary:
                return candidate
        return None

    def shifts(self, start: datetime, end: datetime) -> list[Shift]:
        """Who is on call over [start, end), overrides applied, as consecutive shifts."""
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidInput("schedule times need a time zone")
        if start.year < 1970 or end.year > 9000:
            raise InvalidInput("schedules are shown between the years 1970 and 9000")
        if not timedelta(0) < end - start <= MAX_SPAN:
            raise InvalidInput(f"a schedule is shown for more than 0 and at most {MAX_SPAN.days} days")
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        cuts = {start, end}
        k = self.index_at(start) + 1
        while (at := self.handoff_at(k)) < end:
            cuts.add(at)
            k += 1
        for o in self.cfg.overrides:
            cuts.update(t.astimezone(UTC) for t in (o.start, o.end) if start < t < end)
        points = sorted(cuts)
        out: list[Shift] = []
        for begin, finish in pairwise(points):
            override = self.override_at(begin)
            shift = Shift(begin, finish, override or self.regular_at(begin), override is not None)
            if out and (out[-1].contact, out[-1].override) == (shift.contact, shift.override):
                shift = Shift(out.pop().start, finish, shift.contact, shift.override)
            out.append(shift)
        return out

    def ical(self, start: datetime, end: datetime, names: dict[str, str], *, now: datetime) -> str:
        """The shifts as an iCalendar (RFC 5545) feed, one event per shift."""
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//pitstop//on-call//EN", "CALSCALE:GREGORIAN"]
        lines.append(f"X-WR-CALNAME:{_escape(f'pitstop on call: {self.name}')}")
        for shift in self.shifts(start, end):
            who = names.get(shift.contact, shift.contact)
            summary = f"On call ({self.name}): {who}" + (" (override)" if shift.override else "")
            lines += [
                "BEGIN:VEVENT",
                f"UID:{self.name}-{_stamp(shift.start)}-{shift.contact}@pitstop",
                f"DTSTAMP:{_stamp(now)}",
                f"DTSTART:{_stamp(shift.start)}",
                f"DTEND:{_stamp(shift.end)}",
                f"SUMMARY:{_escape(summary)}",
                "TRANSP:TRANSPARENT",
                "END:VEVENT",
            ]
        lines.append("END:VCALENDAR")
        return "".join(_fold(line) + "\r\n" for line in lines)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _escape(text: str) -> str:
    text = "".join(c for c in text if c in "\n" or ord(c) >= 32)
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Lines of at most 75 octets; continuation lines start with a space (RFC 5545 3.1)."""
    out: list[str] = []
    current = b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode())
            current = b""
        current += encoded
    out.append(current.decode())
    return "\r\n ".join(out)
