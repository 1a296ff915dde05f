"""The alert policy: one state machine for host metrics, sensor signals and model signals.

Per alert key it decides, from a stream of observations (is the signal past the level that
raises it, is it past the separate level that clears it):

- phase: inactive -> pending -> firing -> inactive. Pending becomes firing when the condition
  has held for `for_s` and at least `n` of the last `m` evaluations were bad. Firing clears only
  after `clear_for_s` of evaluations past the clear level (hysteresis).
- flapping: `flap_crossings` rises into the bad zone within `flap_window_s`. A flapping alert is
  one problem: it is reported once, does not resolve until the signal has settled, and is told
  that it settled no sooner than its next repeat.
- notifications: the state people were last told about is kept; a change is told at most once
  per `min_interval_s`, and an unchanged problem is repeated every `repeat_s`.
- muting: silences, maintenance windows and inhibition (a firing site-level alert mutes the
  alerts of that site's assets) hold a notification back; it is logged as suppressed and is
  sent once the mute ends if the state still differs from what people were told.

The policy is pure: it reads no clock and writes nothing. `HealthMonitor` persists its state.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pitstop.core.types import Severity
from pitstop.incidents.windows import Mutes, matches


class Phase(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class Event(StrEnum):
    FIRING = "firing"
    FLAPPING = "flapping"
    REPEAT = "repeat"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertRule:
    for_s: float = 0.0
    n: int = 1
    m: int = 1
    clear_for_s: float = 0.0
    min_interval_s: float = 300.0
    repeat_s: float = 4 * 3600.0
    flap_window_s: float = 1800.0
    flap_crossings: int = 6

    def __post_init__(self) -> None:
        if not 1 <= self.n <= self.m <= 1000:
            raise ValueError("alert rule: need 1 <= n <= m <= 1000")
        if min(self.for_s, self.clear_for_s, self.min_interval_s) < 0 or self.repeat_s <= 0:
            raise ValueError("alert rule: durations must not be negative, repeat_s must be positive")
        if self.flap_crossings < 2:
            raise ValueError("alert rule: flap_crossings must be at least 2")


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """While an alert matching `source` fires, alerts matching `target` with the same `equal`
    labels are muted (e.g. site down mutes that site's asset alerts)."""

    source: Mapping[str, str]
    target: Mapping[str, str]
    equal: tuple[str, ...] = ()


SITE_DOWN_MUTES_ASSETS = InhibitRule(source={"scope": "site"}, target={"scope": "asset"}, equal=("site",))


@dataclass(frozen=True, slots=True)
class Observation:
    key: str
    at: datetime
    bad: bool  # at or past the level that raises
    clear: bool  # past the level that clears (never together with bad)
    severity: Severity = Severity.WARNING
    labels: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """A notification the policy wants sent (or, with `suppressed_by`, held back and logged)."""

    key: str
    event: Event
    severity: Severity
    at: datetime
    labels: Mapping[str, str]
    summary: str
    flapping: bool = False
    suppressed_by: str | None = None
    transition_id: int | None = None  # the incident transition it comes from (incident feed)


@dataclass(frozen=True, slots=True)
class Step:
    """What one observation did to one alert."""

    key: str
    previous: Phase
    phase: Phase
    severity: Severity
    summary: str
    labels: Mapping[str, str]
    decision: Decision | None

    @property
    def fired(self) -> bool:
        return self.phase is Phase.FIRING and self.previous is not Phase.FIRING

    @property
    def resolved(self) -> bool:
        return self.previous is Phase.FIRING and self.phase is not Phase.FIRING


@dataclass
class AlertState:
    key: str
    phase: Phase = Phase.INACTIVE
    severity: Severity = Severity.WARNING
    summary: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    pending_since: float | None = None
    clear_since: float | None = None
    recent: list[bool] = field(default_factory=list)
    last_bad: bool = False
    crossings: list[float] = field(default_factory=list)
    flapping: bool = False
    notified: str = ""  # "", "firing", "flapping" or "resolved": what people were last told
    notified_at: float | None = None
    notified_severity: Severity = Severity.INFO
    held: str = ""  # the event last held back by a mute, so it is logged once
    flapped: bool = False  # flapping at some point since people were last told

    def to_json(self) -> str:
        data = asdict(self)
        data["phase"], data["severity"] = self.phase.value, self.severity.value
        data["notified_severity"] = self.notified_severity.value
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlertState:
        data: dict[str, Any] = json.loads(text)
        data["phase"], data["severity"] = Phase(data["phase"]), Severity(data["severity"])
        data["notified_severity"] = Severity(data["notified_severity"])
        return cls(**data)


class AlertPolicy:
    def __init__(
        self,
        rule: AlertRule | None = None,
        *,
        rules: Mapping[str, AlertRule] | None = None,
        inhibit: Sequence[InhibitRule] = (SITE_DOWN_MUTES_ASSETS,),
    ) -> None:
        self.rule = rule or AlertRule()
        self.rules = dict(rules or {})  # by issue ("disk.low") or by key
        self.inhibit = tuple(inhibit)
        self.states: dict[str, AlertState] = {}

    def rule_for(self, key: str) -> AlertRule:
        if key in self.rules:
            return self.rules[key]
        return self.rules.get(key.partition(":")[0], self.rule)

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate_round(self, observations: Iterable[Observation], mutes: Mutes | None = None) -> list[Step]:
        """Advance every observed alert; inhibition sees the sources firing after this round."""
        steps = [self._advance(obs) for obs in observations]
        sources = self._inhibitors()
        return [self._decide(step, mutes, sources) for step in steps]

    def evaluate(self, obs: Observation, mutes: Mutes | None = None) -> Step:
        return self.evaluate_round([obs], mutes)[0]

    def _advance(self, obs: Observation) -> tuple[AlertState, Observation, Phase]:
        rule = self.rule_for(obs.key)
        state = self.states.get(obs.key)
        if state is None:
            state = self.states[obs.key] = AlertState(obs.key)
        t = obs.at.timestamp()
        bad, clear = obs.bad, obs.clear and not obs.bad
        previous = state.phase
        if state.labels != obs.labels:
            state.labels = dict(obs.labels)
        state.recent = [*state.recent, bad][-rule.m :]
        if bad and not state.last_bad:
            state.crossings.append(t)
        state.last_bad = bad
        state.crossings = [c for c in state.crossings if c > t - rule.flap_window_s]
        if len(state.crossings) >= rule.flap_crossings:
            state.flapping = state.flapped = True
        elif len(state.crossings) <= rule.flap_crossings // 2:
            state.flapping = False

        if state.phase is not Phase.FIRING:
            if bad and state.pending_since is None:
                state.pending_since = t
            if state.pending_since is not None and not any(state.recent):
                state.pending_since = None
            if state.pending_since is None:
                state.phase = Phase.INACTIVE
            elif t - state.pending_since >= rule.for_s and sum(state.recent) >= rule.n:
                state.phase, state.clear_since = Phase.FIRING, None
            else:
                state.phase = Phase.PENDING
        else:
            state.clear_since = (state.clear_since if state.clear_since is not None else t) if clear else None
            if state.clear_since is not None and t - state.clear_since >= rule.clear_for_s:
                state.phase, state.pending_since, state.clear_since = Phase.INACTIVE, None, None
        if state.phase is not previous:
            state.held = ""
        if bad or state.phase is not Phase.FIRING:
            state.severity = obs.severity if bad else state.severity
            state.summary = obs.summary or state.summary
        elif obs.summary:
            state.summary = obs.summary
        return state, obs, previous

    def _decide(
        self,
        advanced: tuple[AlertState, Observation, Phase],
        mutes: Mutes | None,
        sources: list[dict[tuple[str | None, ...], list[str]]],
    ) -> Step:
        state, obs, previous = advanced
        rule = self.rule_for(state.key)
        t = obs.at.timestamp()
        since = math.inf if state.notified_at is None else t - state.notified_at
        told_problem = state.notified in (Event.FIRING, Event.FLAPPING)
        problem = state.phase is Phase.FIRING or state.flapping
        event: Event | None = None
        if problem:
            if not told_problem:
                if since >= rule.min_interval_s:
                    event = Event.FLAPPING if state.flapping else Event.FIRING
            elif since >= rule.repeat_s:
                event = Event.REPEAT
            elif state.severity.rank > state.notified_severity.rank and since >= rule.min_interval_s:
                event = Event.FIRING
        elif told_problem and obs.clear and not obs.bad and since >= self._settle_s(rule, state):
            event = Event.RESOLVED
        decision = None
        if event is not None:
            muted = self._muted(state, obs.at, mutes, sources)
            decision = Decision(
                key=state.key,
                event=event,
                severity=state.severity,
                at=obs.at,
                labels=dict(state.labels),
                summary=state.summary,
                flapping=state.flapping,
                suppressed_by=muted,
            )
            if muted is None:
                if event is Event.RESOLVED:
                    state.notified = Event.RESOLVED.value
                else:
                    state.notified = (Event.FLAPPING if state.flapping else Event.FIRING).value
                state.notified_at, state.notified_severity, state.held = t, state.severity, ""
                state.flapped = state.flapping
            elif state.held == event.value:
                decision = None  # held back already and logged once
            else:
                state.held = event.value
        return Step(state.key, previous, state.phase, state.severity, state.summary, state.labels, decision)

    @staticmethod
    def _settle_s(rule: AlertRule, state: AlertState) -> float:
        """A flapping alert is told it settled no sooner than its next repeat."""
        return rule.repeat_s if state.flapped else rule.min_interval_s

    def _inhibitors(self) -> list[dict[tuple[str | None, ...], list[str]]]:
        """Per inhibit rule: the firing source alerts by the values of the rule's `equal` labels."""
        index: list[dict[tuple[str | None, ...], list[str]]] = [{} for _ in self.inhibit]
        if not self.inhibit:
            return index
        for state in self.states.values():
            if state.phase is not Phase.FIRING:
                continue
            labels = {**state.labels, "key": state.key}
            for rule, by_value in zip(self.inhibit, index, strict=True):
                if matches(rule.source, labels):
                    by_value.setdefault(tuple(state.labels.get(n) for n in rule.equal), []).append(state.key)
        return index

    def _muted(
        self,
        state: AlertState,
        at: datetime,
        mutes: Mutes | None,
        sources: list[dict[tuple[str | None, ...], list[str]]],
    ) -> str | None:
        labels = {**state.labels, "key": state.key}
        for rule, by_value in zip(self.inhibit, sources, strict=True):
            if by_value and matches(rule.target, labels):
                keys = by_value.get(tuple(state.labels.get(n) for n in rule.equal), [])
                source = next((k for k in keys if k != state.key), None)
                if source is not None:
                    return f"inhibited:{source}"
        return mutes.reason(labels, at) if mutes is not None else None

    # -- persistence ----------------------------------------------------------------------------

    def load(self, states: Mapping[str, str]) -> None:
        self.states = {key: AlertState.from_json(text) for key, text in states.items()}

    def dump(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        chosen = self.states if keys is None else {k: self.states[k] for k in keys if k in self.states}
        return {key: state.to_json() for key, state in chosen.items()}


def epoch(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)
