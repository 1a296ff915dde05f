"""The alert rule's judgement: when a check's observations make a problem, and when it is over.

Per alert key it decides, from a stream of observations (is the signal past the level that
raises it, is it past the separate level that clears it):

- phase: inactive -> pending -> firing -> inactive. Pending becomes firing when the condition
  has held for `for_s` and at least `n` of the last `m` evaluations were bad. Firing clears only
  after `clear_for_s` of evaluations past the clear level (hysteresis).
- flapping: `flap_crossings` rises into the bad zone within `flap_window_s`. A problem that fired
  and flaps is one problem until the signal has settled, so its incident opens once and resolves
  once; flapping that never fired is not a problem.

`HealthMonitor` opens an incident when a problem starts and resolves it when it ends; who is told,
and when (`min_interval_s`, `repeat_s`, `repeat_max_s`, mutes), is the alert service's
(`pitstop.alerts.policy`), the same for every incident kind. The policy is pure: it reads no
clock and writes nothing. `HealthMonitor` persists its state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pitstop.core.types import Severity


class Phase(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One issue's rule: the judgement of a check's signal (for_s to flap_crossings, here) and the
    telling of its incidents (min_interval_s, repeat_s, repeat_max_s: `pitstop.alerts.policy`)."""

    for_s: float = 0.0
    n: int = 1
    m: int = 1
    clear_for_s: float = 0.0
    min_interval_s: float = 300.0
    repeat_s: float = 4 * 3600.0
    repeat_max_s: float = 24 * 3600.0
    flap_window_s: float = 1800.0
    flap_crossings: int = 6

    def __post_init__(self) -> None:
        if not 1 <= self.n <= self.m <= 1000:
            raise ValueError("alert rule: need 1 <= n <= m <= 1000")
        if min(self.for_s, self.clear_for_s, self.min_interval_s) < 0 or min(self.repeat_s, self.repeat_max_s) <= 0:
            raise ValueError("alert rule: durations must not be negative, repeat_s and repeat_max_s must be positive")
        if self.flap_crossings < 2:
            raise ValueError("alert rule: flap_crossings must be at least 2")


@dataclass(frozen=True, slots=True)
class Observation:
    key: str
    at: datetime
    bad: bool  # at or past the level that raises
    clear: bool  # past the level that clears (never together with bad)
    severity: Severity = Severity.WARNING
    summary: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """What one observation did to one alert."""

    key: str
    previous: Phase
    phase: Phase
    severity: Severity
    summary: str
    was_problem: bool
    problem: bool  # firing, or fired and flapping since (not settled yet)

    @property
    def started(self) -> bool:
        return self.problem and not self.was_problem

    @property
    def ended(self) -> bool:
        return self.was_problem and not self.problem


@dataclass
class AlertState:
    key: str
    phase: Phase = Phase.INACTIVE
    severity: Severity = Severity.WARNING
    summary: str = ""
    pending_since: float | None = None
    clear_since: float | None = None
    recent: list[bool] = field(default_factory=list)
    last_bad: bool = False
    crossings: list[float] = field(default_factory=list)
    flapping: bool = False
    problem: bool = False  # firing, or fired and flapping since (not settled yet)

    def to_json(self) -> str:
        data = asdict(self)
        data["phase"], data["severity"] = self.phase.value, self.severity.value
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlertState:
        data: dict[str, Any] = json.loads(text)
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}  # states saved by older versions
        data["phase"], data["severity"] = Phase(data["phase"]), Severity(data["severity"])
        return cls(**data)


class AlertPolicy:
    def __init__(self, rule: AlertRule | None = None, *, rules: Mapping[str, AlertRule] | None = None) -> None:
        self.rule = rule or AlertRule()
        self.rules = dict(rules or {})  # by issue ("disk.low") or by key
        self.states: dict[str, AlertState] = {}

    def rule_for(self, key: str) -> AlertRule:
        if key in self.rules:
            return self.rules[key]
        return self.rules.get(key.partition(":")[0], self.rule)

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate_round(self, observations: Iterable[Observation]) -> list[Step]:
        return [self.evaluate(obs) for obs in observations]

    def evaluate(self, obs: Observation) -> Step:
        rule = self.rule_for(obs.key)
        state = self.states.get(obs.key)
        if state is None:
            state = self.states[obs.key] = AlertState(obs.key)
        t = obs.at.timestamp()
        bad, clear = obs.bad, obs.clear and not obs.bad
        previous, was_problem = state.phase, state.problem
        state.recent = [*state.recent, bad][-rule.m :]
        if bad and not state.last_bad:
            state.crossings.append(t)
        state.last_bad = bad
        state.crossings = [c for c in state.crossings if c > t - rule.flap_window_s]
        if len(state.crossings) >= rule.flap_crossings:
            state.flapping = True
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
        state.problem = state.phase is Phase.FIRING or (state.flapping and was_problem)
        if bad or not was_problem:
            state.severity = obs.severity if bad else state.severity
            state.summary = obs.summary or state.summary
        elif obs.summary:
            state.summary = obs.summary
        return Step(obs.key, previous, state.phase, state.severity, state.summary, was_problem, state.problem)

    # -- persistence ----------------------------------------------------------------------------

    def load(self, states: Mapping[str, str], *, only: Iterable[str] | None = None) -> None:
        """The states as stored; `only`: replace just these keys' (a key not stored starts afresh)."""
        loaded = {key: AlertState.from_json(text) for key, text in states.items()}
        if only is None:
            self.states = loaded
            return
        for key in only:
            self.states.pop(key, None)
        self.states.update(loaded)

    def dump(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        chosen = self.states if keys is None else {k: self.states[k] for k in keys if k in self.states}
        return {key: state.to_json() for key, state in chosen.items()}
