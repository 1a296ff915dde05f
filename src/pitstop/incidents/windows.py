"""Maintenance windows and silences: when and for which alerts notifications are held back.

A window is one-off (`once`) or recurring (`daily`, `weekly` on some weekdays) at a local time
of day in a time zone, e.g. every Sunday 02:00-04:00 Europe/Berlin. The same model serves the
maintenance planner: `occurrences(start, end)` lists the concrete slots.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Row, delete, insert, select, update

from pitstop.errors import InvalidInput, NotFound
from pitstop.storage.engine import Database
from pitstop.storage.repos.audit import AuditRepo
from pitstop.storage.schema import maintenance_windows, silences

Recurrence = Literal["once", "daily", "weekly"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def matches(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Every matcher label is present and equal (shell-style wildcards allowed: `disk.*`)."""
    return all(name in labels and fnmatch.fnmatchcase(labels[name], pattern) for name, pattern in matchers.items())


def parse_matchers(items: list[str] | Mapping[str, str]) -> dict[str, str]:
    """`["asset=pump-1", "check=disk"]` or a mapping -> a checked mapping; at least one matcher."""
    pairs = list(items.items()) if isinstance(items, Mapping) else [_split(item) for item in items]
    if not pairs:
        raise InvalidInput("give at least one matcher, e.g. asset=pump-1 or key=disk.low:*")
    out: dict[str, str] = {}
    for name, value in pairs:
        if not name or not name.replace("_", "").isalnum() or len(name) > 50:
            raise InvalidInput(f"matcher label {name[:60]!r} must be a short name of letters, digits and _")
        if not value or len(value) > 500 or any(ord(c) < 32 for c in value):
            raise InvalidInput(f"matcher {name}= needs a value of 1 to 500 printable characters")
        out[name] = value
    return out


def _split(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep:
        raise InvalidInput(f"matcher {item[:60]!r} is not label=value")
    return name.strip(), value.strip()


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    matchers: Mapping[str, str]
    recurrence: Recurrence
    duration: timedelta
    start_time: time = time(0, 0)
    weekdays: frozenset[int] = frozenset()  # 0 = Monday, for weekly windows
    timezone: str = "UTC"
    starts_at: datetime | None = None  # once: the start; recurring: valid from
    ends_at: datetime | None = None  # once: the end; recurring: valid until
    creator: str = "pitstop"
    reason: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 200:
            raise InvalidInput("a window needs a name of 1 to 200 characters")
        if self.recurrence not in ("once", "daily", "weekly"):
            raise InvalidInput(f"window recurrence {self.recurrence!r} is not once, daily or weekly")
        if self.recurrence == "once":
            if self.starts_at is None or self.ends_at is None or self.ends_at <= self.starts_at:
                raise InvalidInput("a one-off window needs a start and an end after it")
        elif not timedelta(0) < self.duration <= timedelta(days=7):
            raise InvalidInput("a recurring window lasts more than 0 and at most 7 days")
        if self.recurrence == "weekly" and not self.weekdays:
            raise InvalidInput("a weekly window needs at least one weekday (mon..sun)")
        if any(d not in range(7) for d in self.weekdays):
            raise InvalidInput("weekdays are 0 (Monday) to 6 (Sunday)")
        self.zone  # noqa: B018 - validates the zone name

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone {self.timezone!r}") from None

    def occurrences(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The (begin, end) slots, in UTC, that overlap [start, end)."""
        if self.recurrence == "once":
            assert self.starts_at is not None and self.ends_at is not None
            if self.starts_at < end and self.ends_at > start:
                yield self.starts_at, self.ends_at
            return
        zone = self.zone
        day: date = (start - self.duration).astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date()
        while day <= last:
            if self.recurrence == "daily" or day.weekday() in self.weekdays:
                begin = datetime.combine(day, self.start_time, zone).astimezone(UTC)
                finish = begin + self.duration
                if begin < end and finish > start and self._valid(begin):
                    yield begin, finish
            day += timedelta(days=1)

    def _valid(self, begin: datetime) -> bool:
        return (self.starts_at is None or begin >= self.starts_at) and (self.ends_at is None or begin < self.ends_at)

    def active_at(self, at: datetime) -> bool:
        return next(self.occurrences(at, at + timedelta(microseconds=1)), None) is not None

    def describe(self) -> str:
        if self.recurrence == "once":
            assert self.starts_at is not None and self.ends_at is not None
            return f"once {self.starts_at.isoformat()} to {self.ends_at.isoformat()}"
        end = (datetime.combine(date(2000, 1, 3), self.start_time) + self.duration).time()
        days = "every day" if self.recurrence == "daily" else ",".join(WEEKDAYS[d] for d in sorted(self.weekdays))
        return f"{days} {self.start_time:%H:%M}-{end:%H:%M} {self.timezone}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "matchers": dict(self.matchers),
            "recurrence": self.recurrence,
            "schedule": self.describe(),
            "weekdays": [WEEKDAYS[d] for d in sorted(self.weekdays)],
            "start_time": f"{self.start_time:%H:%M}",
            "duration_s": int(self.duration.total_seconds()),
            "timezone": self.timezone,
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "creator": self.creator,
            "reason": self.reason,
        }


def recurring(
    name: str,
    matchers: Mapping[str, str],
    *,
    days: str,
    start: str,
    end: str,
    timezone: str = "UTC",
    creator: str = "pitstop",
    reason: str = "",
) -> Window:
    """A window from human terms: days "sun" / "mon,wed" / "daily", times "02:00" and "04:00"."""
    begin, finish = _hhmm(start), _hhmm(end)
    span = datetime.combine(date(2000, 1, 3), finish) - datetime.combine(date(2000, 1, 3), begin)
    if span <= timedelta(0):
        span += timedelta(days=1)  # over midnight, e.g. 22:00-02:00
    if days.strip().lower() in ("daily", "every day", "*"):
        return Window(name, dict(matchers), "daily", span, begin, frozenset(), timezone, creator=creator, reason=reason)
    weekdays = set()
    for part in days.lower().replace(" ", "").split(","):
        if part[:3] not in WEEKDAYS:
            raise InvalidInput(f"weekday {part!r} is not one of {', '.join(WEEKDAYS)} (or 'daily')")
        weekdays.add(WEEKDAYS.index(part[:3]))
    return Window(
        name, dict(matchers), "weekly", span, begin, frozenset(weekdays), timezone, creator=creator, reason=reason
    )


def _hhmm(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"time {text[:20]!r} is not HH:MM") from None


@dataclass(frozen=True, slots=True)
class Silence:
    matchers: Mapping[str, str]
    creator: str
    reason: str
    starts_at: datetime
    ends_at: datetime
    id: int | None = None
    created_at: datetime | None = None

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": dict(self.matchers),
            "creator": self.creator,
            "reason": self.reason,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
        }


@dataclass
class Mutes:
    """The silences and windows in force, as the policy sees them."""

    silences: list[Silence] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)

    def reason(self, labels: Mapping[str, str], at: datetime) -> str | None:
        for w in self.windows:
            if matches(w.matchers, labels) and w.active_at(at):
                return f"window:{w.name}"
        for s in self.silences:
            if s.active_at(at) and matches(s.matchers, labels):
                return f"silence:{s.id}"
        return None


class MuteStore:
    """Silences and maintenance windows in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_silence(self, silence: Silence, *, now: datetime) -> Silence:
        _printable("reason", silence.reason)
        _printable("creator", silence.creator)
        if not silence.reason.strip():
            raise InvalidInput("a silence needs a reason")
        if not silence.creator.strip():
            raise InvalidInput("a silence needs a creator")
        if silence.ends_at <= silence.starts_at:
            raise InvalidInput("a silence must end after it starts")
        matchers = parse_matchers(silence.matchers)
        with self.db.begin() as conn:
            key = conn.execute(
                insert(silences).values(
                    matchers=json.dumps(matchers, sort_keys=True),
                    creator=silence.creator[:200],
                    reason=silence.reason[:2000],
                    starts_at=silence.starts_at,
                    ends_at=silence.ends_at,
                    created_at=now,
                )
            ).inserted_primary_key
            assert key is not None
            AuditRepo.record(
                conn,
                at=now,
                actor=silence.creator[:200],
                action="silence.add",
                target=str(key[0]),
                detail={"matchers": matchers, "reason": silence.reason, "ends_at": silence.ends_at},
            )
        return Silence(matchers, silence.creator, silence.reason, silence.starts_at, silence.ends_at, int(key[0]), now)

    def silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        query = select(silences).order_by(silences.c.id)
        if active_at is not None:
            query = query.where(silences.c.starts_at <= active_at, silences.c.ends_at > active_at)
        with self.db.connect() as conn:
            return [_silence(r) for r in conn.execute(query)]

    def expire_silence(self, silence_id: int, *, now: datetime, actor: str) -> Silence:
        if not 0 < silence_id < 2**31:
            raise NotFound(f"no silence with id {silence_id}")
        with self.db.begin() as conn:
            row = conn.execute(select(silences).where(silences.c.id == silence_id)).first()
            if row is None:
                raise NotFound(f"no silence with id {silence_id}")
            if row.ends_at > now:
                conn.execute(
                    update(silences).where(silences.c.id == silence_id).values(ends_at=max(now, row.starts_at))
                )
                AuditRepo.record(conn, at=now, actor=actor, action="silence.expire", target=str(silence_id))
            row = conn.execute(select(silences).where(silences.c.id == silence_id)).one()
        return _silence(row)

    def add_window(self, window: Window, *, now: datetime) -> Window:
        _printable("name", window.name)
        _printable("reason", window.reason)
        matchers = parse_matchers(window.matchers)
        with self.db.begin() as conn:
            if conn.execute(select(maintenance_windows.c.id).where(maintenance_windows.c.name == window.name)).first():
                raise InvalidInput(f"a window named {window.name!r} already exists")
            key = conn.execute(
                insert(maintenance_windows).values(
                    name=window.name,
                    matchers=json.dumps(matchers, sort_keys=True),
                    recurrence=window.recurrence,
                    weekdays=",".join(str(d) for d in sorted(window.weekdays)),
                    start_time=f"{window.start_time:%H:%M}",
                    duration_s=int(window.duration.total_seconds()),
                    timezone=window.timezone,
                    starts_at=window.starts_at,
                    ends_at=window.ends_at,
                    creator=window.creator[:200],
                    reason=window.reason[:2000],
                    created_at=now,
                )
            ).inserted_primary_key
            assert key is not None
            AuditRepo.record(
                conn,
                at=now,
                actor=window.creator[:200],
                action="window.add",
                target=window.name,
                detail={"matchers": matchers, "schedule": window.describe()},
            )
        return self.window(window.name)

    def window(self, name: str) -> Window:
        _printable("name", name)
        with self.db.connect() as conn:
            row = conn.execute(select(maintenance_windows).where(maintenance_windows.c.name == name)).first()
        if row is None:
            raise NotFound(f"no maintenance window named {name[:200]!r}")
        return _window(row)

    def windows(self) -> list[Window]:
        with self.db.connect() as conn:
            return [_window(r) for r in conn.execute(select(maintenance_windows).order_by(maintenance_windows.c.name))]

    def remove_window(self, name: str, *, now: datetime, actor: str) -> None:
        with self.db.begin() as conn:
            gone = conn.execute(delete(maintenance_windows).where(maintenance_windows.c.name == name)).rowcount
            if not gone:
                raise NotFound(f"no maintenance window named {name[:200]!r}")
            AuditRepo.record(conn, at=now, actor=actor, action="window.remove", target=name)

    def mutes(self, at: datetime) -> Mutes:
        return Mutes(self.silences(active_at=at), self.windows())


def _printable(what: str, value: str) -> None:
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character")


def _silence(row: Row[Any]) -> Silence:
    return Silence(
        json.loads(row.matchers), row.creator, row.reason, row.starts_at, row.ends_at, row.id, row.created_at
    )


def _window(row: Row[Any]) -> Window:
    return Window(
        name=row.name,
        matchers=json.loads(row.matchers),
        recurrence=row.recurrence,
        duration=timedelta(seconds=row.duration_s),
        start_time=time.fromisoformat(row.start_time),
        weekdays=frozenset(int(d) for d in row.weekdays.split(",") if d),
        timezone=row.timezone,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        creator=row.creator,
        reason=row.reason,
        id=row.id,
    )
