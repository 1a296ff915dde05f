"""A small cron expression: minute hour day-of-month month day-of-week, in UTC.

Fields take `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` or `a-b/n`, and names for
months (jan..dec) and weekdays (sun..sat, 0 or 7 = Sunday). As in cron, when both day fields
are restricted a day matches either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pitstop.errors import InvalidInput

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


@dataclass(frozen=True, slots=True)
class Cron:
    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split()
        if len(parts) != 5:
            raise InvalidInput(f"cron {expression[:60]!r} needs 5 fields: minute hour day month weekday")
        sets = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(0 if d == 7 else d for d in sets[4])
        return cls(
            expression,
            tuple(sorted(sets[0])),
            tuple(sorted(sets[1])),
            frozenset(sets[2]),
            frozenset(sets[3]),
            weekdays,
            parts[2] == "*",
            parts[4] == "*",
        )

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def next_after(self, after: datetime) -> datetime:
        """The first matching minute strictly after `after` (aware UTC in, aware UTC out)."""
        start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 8):
            if self._day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise InvalidInput(f"cron {self.expression!r} never matches")


def _field(text: str, what: str, low: int, high: int) -> set[int]:
    out: set[int] = set()
    for item in text.lower().split(","):
        base, _, step_text = item.partition("/")
        step = _int(step_text, what) if step_text else 1
        if step < 1:
            raise InvalidInput(f"cron {what}: step must be at least 1")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _value(a, what), _value(b, what)
        else:
            first = _value(base, what)
            last = high if step_text else first
        if not low <= first <= last <= high:
            raise InvalidInput(f"cron {what} {item!r} is outside {low}-{high}")
        out.update(range(first, last + 1, step))
    return out


def _value(text: str, what: str) -> int:
    if what == "month" and text[:3] in _MONTHS:
        return _MONTHS.index(text[:3]) + 1
    if what == "day of week" and text[:3] in _DAYS:
        return _DAYS.index(text[:3])
    return _int(text, what)


def _int(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 4:
        raise InvalidInput(f"cron {what} {text[:20]!r} is not a number")
    return int(text)
