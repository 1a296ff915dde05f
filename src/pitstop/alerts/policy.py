"""The notification policy: when people are told about an incident, for every incident kind.

Producers judge whether there is a problem (a check's for / N-of-M / hysteresis / flapping, the
stream scorer's cut-off and persistence, a low remaining-life estimate, a failed drill) and open,
raise or resolve an incident. This policy decides what people hear about it:

- `firing` when an open incident was not told yet, and again when its severity rises;
- `repeat` while it stays open and unacknowledged: first after `repeat_s`, then each interval as
  long as the incident has been told (a back-off), never longer apart than `repeat_max_s`;
  acknowledging stops the reminders, not the news that it got worse;
- `resolved` once it is resolved, if people were told it fired;
- a `firing` no sooner than `min_interval_s` after the last message about the key, so an incident
  that resolves and reopens in a burst is told at most once a min interval (the reminder job
  sends it if it is still open then);
- muting: silences, maintenance windows and inhibition (an open site-level incident mutes the
  incidents of that site's assets) hold a notification back; it is logged once as suppressed and
  sent when the mute ends if it is still owed.

The policy is pure: it reads no clock and writes nothing. What people were told is kept as `Told`
and can be rebuilt from the delivery records (`Told.replay`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pitstop.core.types import Severity
from pitstop.incidents.policy import AlertRule
from pitstop.incidents.windows import Mutes, matches


class Event(StrEnum):
    FIRING = "firing"
    REPEAT = "repeat"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """While an incident matching `source` is open, incidents matching `target` with the same
    `equal` labels are muted (e.g. site down mutes that site's asset alerts)."""

    source: Mapping[str, str]
    target: Mapping[str, str]
    equal: tuple[str, ...] = ()


SITE_DOWN_MUTES_ASSETS = InhibitRule(source={"scope": "site"}, target={"scope": "asset"}, equal=("site",))


Sources = dict[tuple[str | None, ...], list[str]]  # open source incidents by the values of `equal`


@dataclass(frozen=True, slots=True)
class Subject:
    """An incident as the policy sees it."""

    key: str
    open: bool  # not resolved
    severity: Severity
    labels: Mapping[str, str]
    summary: str
    quiet: bool = False  # acknowledged: someone owns it, no reminders (a rise is still told)
    transition_id: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A notification the policy wants sent (or, with `suppressed_by`, held back and logged)."""

    key: str
    event: Event
    severity: Severity
    at: datetime
    labels: Mapping[str, str]
    summary: str
    suppressed_by: str | None = None
    transition_id: int | None = None  # the incident transition it comes from


@dataclass
class Told:
    """What people were last told about one incident key."""

    event: str = ""  # "firing" (a repeat keeps it) or "resolved"
    at: datetime | None = None
    first: datetime | None = None  # when the current problem was first told
    severity: Severity = Severity.INFO
    held: str = ""  # the event last held back by a mute, so it is logged once

    def apply(self, event: str, at: datetime, severity: Severity, suppressed: bool) -> None:
        if suppressed:
            self.held = event
            return
        if event == Event.FIRING and self.event != Event.FIRING:
            self.first = at
        self.event = Event.RESOLVED.value if event == Event.RESOLVED else Event.FIRING.value
        self.at, self.severity, self.held = at, severity, ""

    @classmethod
    def replay(cls, records: Iterable[tuple[str, str, datetime, str, bool]]) -> dict[str, Told]:
        """From delivery records in order: (key, event, at, severity, suppressed)."""
        told: dict[str, Told] = {}
        for key, event, at, severity, suppressed in records:
            if event in Event.__members__.values():
                told.setdefault(key, cls()).apply(event, at, Severity(severity), suppressed)
        return told


def repeat_after_s(rule: AlertRule, told: Told) -> float:
    """The reminder interval: repeat_s, then as long as the problem has been told, up to repeat_max_s."""
    told_for = (told.at - told.first).total_seconds() if told.at and told.first else 0.0
    return min(max(rule.repeat_s, told_for), max(rule.repeat_max_s, rule.repeat_s))


class NotificationPolicy:
    def __init__(
        self, rule_for: Callable[[str], AlertRule], *, inhibit: Sequence[InhibitRule] = (SITE_DOWN_MUTES_ASSETS,)
    ) -> None:
        self.rule_for = rule_for
        self.inhibit = tuple(inhibit)
        self.told: dict[str, Told] = {}

    def decide(
        self,
        subjects: Sequence[Subject],
        at: datetime,
        mutes: Mutes | None = None,
        open_labels: Iterable[tuple[str, Mapping[str, str]]] = (),
    ) -> list[Decision]:
        """What to send about these incidents now; `open_labels` are the open incidents (key,
        labels) that may inhibit others."""
        sources = self._inhibitors(open_labels)
        decisions = []
        for s in subjects:
            event = self._event(s, at)
            if event is None:
                continue
            told = self.told.setdefault(s.key, Told())
            muted = self._muted(s, at, mutes, sources)
            if muted is not None and told.held == event.value:
                continue  # held back already and logged once
            told.apply(event.value, at, s.severity, muted is not None)
            decisions.append(Decision(s.key, event, s.severity, at, s.labels, s.summary, muted, s.transition_id))
        return decisions

    def _event(self, s: Subject, at: datetime) -> Event | None:
        rule = self.rule_for(s.key)
        told = self.told.get(s.key) or Told()
        since = math.inf if told.at is None else (at - told.at).total_seconds()
        if not s.open:
            return Event.RESOLVED if told.event == Event.FIRING else None
        if told.event != Event.FIRING:
            return Event.FIRING if since >= rule.min_interval_s and not s.quiet else None
        if s.severity.rank > told.severity.rank:
            return Event.FIRING  # also when acknowledged: it got worse
        return Event.REPEAT if since >= repeat_after_s(rule, told) and not s.quiet else None

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.told.pop(key, None)

    def _inhibitors(self, open_labels: Iterable[tuple[str, Mapping[str, str]]]) -> list[Sources]:
        """Per inhibit rule: the open source incidents by the values of the rule's `equal` labels."""
        index: list[Sources] = [{} for _ in self.inhibit]
        if not self.inhibit:
            return index
        for key, labels in open_labels:
            for rule, by_value in zip(self.inhibit, index, strict=True):
                if matches(rule.source, {**labels, "key": key}):
                    by_value.setdefault(tuple(labels.get(n) for n in rule.equal), []).append(key)
        return index

    def _muted(self, s: Subject, at: datetime, mutes: Mutes | None, sources: list[Sources]) -> str | None:
        labels = {**s.labels, "key": s.key}
        for rule, by_value in zip(self.inhibit, sources, strict=True):
            if by_value and matches(rule.target, labels):
                keys = by_value.get(tuple(s.labels.get(n) for n in rule.equal), [])
                source = next((k for k in keys if k != s.key), None)
                if source is not None:
                    return f"inhibited:{source}"
        return mutes.reason(labels, at) if mutes is not None else None
