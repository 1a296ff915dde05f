"""What the planner needs beyond the health branch's maintenance windows.

There is one window model: `pitstop.incidents.windows.Window` (recurring or one-off, time zone,
matchers for alert muting). This module keeps, per window name, the technician hours each
occurrence offers, the sites and assets it serves (empty: all), and the fallback when a due
task misses it: `next` (the next occurrence of the same window), `window:<name>` (the next
occurrence of another window) or `missed` (record it as missed), applied up to `max_fallbacks`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from pitstop.errors import InvalidInput, NotFound
from pitstop.incidents.windows import MuteStore, Window
from pitstop.maintenance.common import text
from pitstop.storage.engine import Database
from pitstop.storage.schema import window_capacity


@dataclass(frozen=True, slots=True)
class Capacity:
    window_name: str
    capacity_h: float
    sites: frozenset[str] = field(default_factory=frozenset)
    assets: frozenset[str] = field(default_factory=frozenset)
    fallback: str = "next"
    max_fallbacks: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.capacity_h <= 100_000:
            raise InvalidInput("window capacity must be between 0 and 100000 technician hours")
        if not (self.fallback in ("next", "missed") or self.fallback.startswith("window:")):
            raise InvalidInput(f"fallback {self.fallback[:60]!r} is not next, missed or window:<name>")
        if self.fallback.startswith("window:"):
            text("fallback window", self.fallback[len("window:") :], 200)
        if not 0 <= self.max_fallbacks <= 10:
            raise InvalidInput("max_fallbacks must be between 0 and 10")

    def serves(self, asset: str, site: str) -> bool:
        return (not self.sites or site in self.sites) and (not self.assets or asset in self.assets)

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window_name,
            "capacity_h": self.capacity_h,
            "sites": sorted(self.sites),
            "assets": sorted(self.assets),
            "fallback": self.fallback,
            "max_fallbacks": self.max_fallbacks,
        }


class WindowCapacities:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.windows = MuteStore(db)

    def set(
        self,
        window_name: str,
        capacity_h: float,
        *,
        sites: Sequence[str] = (),
        assets: Sequence[str] = (),
        fallback: str = "next",
        max_fallbacks: int = 1,
    ) -> Capacity:
        text("window", window_name, 200)
        self.windows.window(window_name)  # NotFound unless the window exists
        cap = Capacity(
            window_name,
            float(capacity_h),
            frozenset(text("site", s, 200) for s in sites),
            frozenset(text("asset", a, 200) for a in assets),
            fallback,
            max_fallbacks,
        )
        values = {
            "capacity_h": cap.capacity_h,
            "sites": json.dumps(sorted(cap.sites)),
            "assets": json.dumps(sorted(cap.assets)),
            "fallback": cap.fallback,
            "max_fallbacks": cap.max_fallbacks,
        }
        with self.db.begin() as conn:
            hit = conn.execute(
                update(window_capacity).where(window_capacity.c.window_name == window_name).values(**values)
            )
            if not hit.rowcount:
                conn.execute(insert(window_capacity).values(window_name=window_name, **values))
        return cap

    def remove(self, window_name: str) -> None:
        with self.db.begin() as conn:
            if not conn.execute(delete(window_capacity).where(window_capacity.c.window_name == window_name)).rowcount:
                raise NotFound(f"window {window_name[:200]!r} has no capacity set")

    def all(self) -> dict[str, Capacity]:
        with self.db.connect() as conn:
            rows = conn.execute(select(window_capacity)).all()
        return {
            r.window_name: Capacity(
                r.window_name,
                r.capacity_h,
                frozenset(json.loads(r.sites)),
                frozenset(json.loads(r.assets)),
                r.fallback,
                r.max_fallbacks,
            )
            for r in rows
        }

    def get(self, window_name: str) -> Capacity | None:
        return self.all().get(window_name)

    def next_slot(self, window_name: str, after: datetime, horizon_days: int = 400) -> tuple[datetime, datetime] | None:
        """The first occurrence of a window that starts at or after `after`."""
        text("window", window_name, 200)
        try:
            window: Window = self.windows.window(window_name)
        except NotFound:
            return None
        return first_slot(window, after, horizon_days)


def first_slot(window: Window, after: datetime, horizon_days: int = 400) -> tuple[datetime, datetime] | None:
    for begin, end in window.occurrences(after, after + timedelta(days=horizon_days)):
        if begin >= after:
            return begin, end
    return None
