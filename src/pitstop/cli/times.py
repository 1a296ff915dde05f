"""Times on the command line, one parser for every option that takes one.

A time is one of:

- relative to now: `-2d` (two days ago), `+6h` (six hours from now), or a bare span such as `30m`,
  which counts back from now for a time in the past (`--since 30m`) and ahead for a due date
  (`--due 3d`): each option says which;
- ISO 8601 with a UTC offset: `2026-03-01T08:00+01:00`, `2026-03-01T07:00Z`;
- an ISO date: `2026-03-01`, midnight UTC.

A clock time without an offset is refused: local or UTC would be a guess.
A span is a number and a unit: `90s`, `15m`, `2h`, `1.5d`, `2w`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from pitstop.errors import InvalidInput

_SPAN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LONGEST = timedelta(days=100 * 366)  # past this a span is a typing mistake (and near datetime's limits)
EXAMPLES = "-2d, +6h, 30m, 2026-03-01 or 2026-03-01T08:00+01:00"


def parse_span(text: str, option: str = "span") -> timedelta:
    """'90s', '15m', '2h', '1.5d', '2w' -> timedelta; InvalidInput naming the option otherwise."""
    match = _SPAN.match(text)
    if match is None:
        raise InvalidInput(f"{option} {text[:40]!r} is not a span like 90s, 15m, 2h, 1d or 2w")
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds > _LONGEST.total_seconds():  # checked before timedelta() could overflow
        raise InvalidInput(f"{option} {text[:40]!r} is longer than 100 years")
    return timedelta(seconds=seconds)


def parse_time(text: str, *, now: datetime, option: str, bare: Literal["ago", "ahead"] = "ago") -> datetime:
    """An aware datetime from `text` (see the module's doc); InvalidInput naming `option` otherwise."""
    given = text.strip()
    if given[:1] in ("+", "-") or _SPAN.match(given):
        sign = {"+": 1, "-": -1}.get(given[:1], -1 if bare == "ago" else 1)
        span = parse_span(given[1:] if given[:1] in ("+", "-") else given, option)
        try:
            return now + sign * span
        except OverflowError:
            raise InvalidInput(f"{option} {text[:40]!r} is out of range") from None
    try:
        value = datetime.fromisoformat(given)
    except ValueError:
        raise InvalidInput(f"{option} {text[:40]!r} is not ISO 8601 or relative ({EXAMPLES})") from None
    if value.tzinfo is None:
        if "T" not in given.upper() and " " not in given:  # a day alone: that day in UTC
            return value.replace(tzinfo=UTC)
        raise InvalidInput(f"{option} {text[:40]!r} needs a UTC offset, e.g. 2026-03-01T08:00+01:00 or ...Z")
    return value


def optional_time(
    text: str | None, *, now: datetime, option: str, bare: Literal["ago", "ahead"] = "ago"
) -> datetime | None:
    """parse_time, with None for an option not given."""
    return None if text is None else parse_time(text, now=now, option=option, bare=bare)


TIME_HELP = f"ISO 8601 with offset, a date (UTC), or relative to now: {EXAMPLES}"
