"""Which sets to keep: keep-last plus daily, weekly, monthly, quarterly and yearly tiers.

The rule is restic's `forget` rule, with a quarterly tier added: walking from the newest set to
the oldest, a tier with count left keeps a set whenever the set falls in another period (day, ISO
week, month, quarter, year; in UTC) than the last set that tier kept, and then counts one down.
So each tier keeps the newest set of each of its last N periods that have sets. `keep_days` is
restic's `--keep-within`: every set made within that many days of the newest set is kept too
(counted from the newest set, not from now, so backups that stopped are never pruned away).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
    keep_days: float = 0.0

    @property
    def empty(self) -> bool:
        tiers = (self.keep_last, self.daily, self.weekly, self.monthly, self.quarterly, self.yearly)
        return not any(tiers) and not self.keep_days


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
    since = ordered[0][1] - timedelta(days=policy.keep_days) if ordered and policy.keep_days else None
    for n, (set_id, at) in enumerate(ordered):
        utc = at.astimezone(UTC)
        reasons = ["last"] if n < policy.keep_last else []
        if since is not None and at > since:  # strictly, as restic
            reasons.append("within")
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


def decide_components(
    items: Sequence[tuple[str, datetime, Collection[str]]], default: Policy, own: Mapping[str, Policy]
) -> list[Decision]:
    """Keep or delete sets that each hold one or more components (sources), newest first.

    Each component's policy (its own in `own`, else `default`) is applied to the sets that hold it,
    as if they were its only sets, and a set is kept while any of its components' policies keeps
    it: a set that holds the daily database and the quarterly models stays as long as either
    needs it. A reason is the tier, prefixed by the component when the component has its own
    policy ("models: quarterly"); components on the default policy give plain tiers.
    """
    at = {set_id: when for set_id, when, _ in items}
    reasons: dict[str, list[str]] = {set_id: [] for set_id in at}
    held_by: dict[str, list[tuple[str, datetime]]] = {}
    for set_id, when, components in items:
        for name in components or ("",):  # a set naming no component still falls under the default
            held_by.setdefault(name, []).append((set_id, when))
    for name, held in sorted(held_by.items()):
        for d in decide(held, own.get(name, default)):
            for reason in d.reasons:
                text = f"{name}: {reason}" if name in own else reason
                if text not in reasons[d.id]:
                    reasons[d.id].append(text)
    decisions = [Decision(set_id, at[set_id], tuple(why)) for set_id, why in reasons.items()]
    return sorted(decisions, key=lambda d: (d.at, d.id), reverse=True)
