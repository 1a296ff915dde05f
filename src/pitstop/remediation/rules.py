"""Rules (which action heals which incidents) and the guards around every attempt."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pitstop.config.remediation import RuleSettings
from pitstop.core.types import Severity
from pitstop.errors import ConfigError
from pitstop.incidents import Incident, IncidentState
from pitstop.remediation.base import Action, Plan, actions

ALLOWED_STATES = frozenset({IncidentState.OPEN, IncidentState.ACKNOWLEDGED})


@dataclass(frozen=True)
class RemediationRule:
    match: str  # incident key pattern (shell wildcards), e.g. "http.failing:*"
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)
    max_attempts: int = 3
    window: timedelta = timedelta(hours=1)
    cooldown: timedelta = timedelta(minutes=1)
    approval: bool | None = None  # None: destructive plans need approval
    wait_for_window: bool = False
    escalate_to: str | None = None
    verify_timeout_s: float | None = None

    @classmethod
    def of(cls, s: RuleSettings) -> RemediationRule:
        return cls(
            match=s.match,
            action=s.action,
            params=dict(s.params),
            max_attempts=s.max_attempts,
            window=timedelta(seconds=s.window_s),
            cooldown=timedelta(seconds=s.cooldown_s),
            approval=s.approval,
            wait_for_window=s.wait_for_window,
            escalate_to=s.escalate_to,
            verify_timeout_s=s.verify_timeout_s,
        )

    def matches(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.match)

    def needs_approval(self, plan: Plan) -> bool:
        return plan.destructive if self.approval is None else self.approval


class RuleBook:
    """The rules in order, each with its configured action instance; the first match wins."""

    def __init__(self, rules: Sequence[RemediationRule]) -> None:
        import pitstop.remediation.actions  # noqa: F401 - registers the built-in actions

        self.rules = list(rules)
        self.actions: list[Action] = []
        for i, rule in enumerate(self.rules, 1):
            try:
                self.actions.append(actions.create(rule.action, **rule.params))
            except (TypeError, ValueError, LookupError) as exc:
                raise ConfigError(f"remediation rule {i} ({rule.match}): {exc}") from None

    def find(self, key: str) -> tuple[RemediationRule, Action] | None:
        for rule, action in zip(self.rules, self.actions, strict=True):
            if rule.matches(key):
                return rule, action
        return None


@dataclass(frozen=True, slots=True)
class History:
    """What the guards need to know about earlier attempts of one action on one target."""

    attempts: int  # applied within the rule's window (and since the breaker was last reset)
    last_attempt_at: datetime | None
    breaker_open: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    go: bool
    reason: str = ""
    budget_spent: bool = False


def guard(incident: Incident, rule: RemediationRule, history: History, *, now: datetime, window: str | None) -> Verdict:
    """The guards before planning: state, circuit breaker, attempt budget, cooldown, maintenance window."""
    if incident.state not in ALLOWED_STATES:
        return Verdict(False, f"incident is {incident.state.value}")
    if history.breaker_open:
        return Verdict(False, "circuit breaker open: a person must reset it (pitstop heal reset)")
    if history.attempts >= rule.max_attempts:
        return Verdict(False, f"attempt budget spent ({history.attempts} of {rule.max_attempts})", budget_spent=True)
    if history.last_attempt_at is not None and now < history.last_attempt_at + rule.cooldown:
        left = (history.last_attempt_at + rule.cooldown - now).total_seconds()
        return Verdict(False, f"cooling down for {left:.0f} s more")
    if rule.wait_for_window and window is None and not is_critical(incident):
        return Verdict(False, "waiting for a maintenance window")
    return Verdict(True)


def guard_plan(incident: Incident, rule: RemediationRule, plan: Plan, *, window: str | None) -> Verdict:
    """The guards on the plan: its own window need (vacuum) and approval of destructive steps."""
    if plan.needs_window and window is None and not is_critical(incident):
        return Verdict(False, "this action runs only inside a maintenance window unless the incident is critical")
    if rule.needs_approval(plan):
        return Verdict(False, "needs approval: pitstop heal approve ID")
    return Verdict(True)


def is_critical(incident: Incident) -> bool:
    return incident.severity.rank >= Severity.CRITICAL.rank
