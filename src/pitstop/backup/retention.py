"""Which sets to keep: keep-last plus daily, weekly, monthly, quarterly and yearly tiers.

The rule is restic's `forget` rule, with a quarterly tier added: walking from the newest set to
the oldest, a tier with count left keeps a set whenever the set falls in another period (day, ISO
week, month, quarter, year; in UTC) than the last set that tier kept, and then counts one down.
So each tier keeps the newest set of each of its last N periods that have sets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

TIERS: tuple[tuple[str, Callable[[datetime], tuple[int, ...]]], ...] = (
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: tuple(t.isocalendar())[:2]),
    ("monthly", lambda t: (t.year, t.month)),
    ("quarterly", lambda t: (t.year, (t.month - 1) // 3)),
    ("yearly", lambda t: (t.year,)),
)


@dataclass(frozen=True, slots=True)
class Policy:
    keep_last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    quarterly: int = 0
    yearly: int = 0

    @property
    def empty(self) -> bool:
        return not any((self.keep_last, self.daily, self.weekly, self.monthly, self.quarterly, self.yearly))


@dataclass(frozen=True, slots=True)
class Decision:
    id: str
    at: datetime
    reasons: tuple[str, ...]  # the tiers that keep it; empty: delete

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


def decide(items: Sequence[tuple[str, datetime]], policy: Policy) -> list[Decision]:
    """Keep or delete each (id, time), newest first. An empty policy keeps everything."""
    ordered = sorted(items, key=lambda item: (item[1], item[0]), reverse=True)
    if policy.empty:
        return [Decision(i, at, ("no policy",)) for i, at in ordered]
    left = {name: getattr(policy, name) for name, _ in TIERS}
    last: dict[str, tuple[int, ...] | None] = {name: None for name, _ in TIERS}
    decisions = []
    for n, (set_id, at) in enumerate(ordered):
        utc = at.astimezone(UTC)
        reasons = ["last"] if n < policy.keep_last else []
        for name, period in TIERS:
            if left[name] <= 0:
                continue
            key = period(utc)
            if key != last[name]:
                last[name] = key
                left[name] -= 1
                reasons.append(name)
        decisions.append(Decision(set_id, at, tuple(reasons)))
    return decisions
