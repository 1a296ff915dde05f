"""Action, Plan, Outcome and ActionContext: the vocabulary of repairs.

An action plans without side effects (`plan` may read, never write) and applies idempotently
(`apply` twice does no more harm than once). `rollback` undoes what it can; `verify` is for
actions whose success no check can see (a link of pitstop's own).
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pitstop.core.clock import Clock
from pitstop.core.registry import Registry
from pitstop.core.types import Severity
from pitstop.storage.engine import Database

if TYPE_CHECKING:
    from pitstop.config.remediation import CommandSettings
    from pitstop.incidents import Incident


@dataclass(frozen=True, slots=True)
class Plan:
    """What an action would do to one target: human steps plus the exact parameters apply uses."""

    action: str
    target: str
    steps: tuple[str, ...]
    destructive: bool
    params: Mapping[str, Any] = field(default_factory=dict)
    needs_window: bool = False  # only inside a maintenance window, unless the incident is critical
    grace_s: float = 0.0  # wait this long after apply before verifying (start-up time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "steps": list(self.steps),
            "destructive": self.destructive,
            "params": dict(self.params),
            "needs_window": self.needs_window,
            "grace_s": self.grace_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            action=str(data["action"]),
            target=str(data["target"]),
            steps=tuple(str(s) for s in data.get("steps", ())),
            destructive=bool(data.get("destructive", False)),
            params=dict(data.get("params", {})),
            needs_window=bool(data.get("needs_window", False)),
            grace_s=float(data.get("grace_s", 0.0)),
        )

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class Outcome:
    plan: Plan
    ok: bool
    detail: str
    started_at: datetime
    finished_at: datetime
    output: str = ""  # captured command output, bounded
    data: Mapping[str, Any] = field(default_factory=dict)  # evidence, e.g. {"removed": [...]}

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "detail": self.detail,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "output": self.output,
            "data": dict(self.data),
        }


@dataclass
class ActionContext:
    """What an action may use. Everything is injected: tests pass a FrozenClock and real services."""

    clock: Clock
    db: Database
    links: Mapping[str, object] = field(default_factory=dict)  # reconnectable links by name
    commands: Mapping[str, CommandSettings] = field(default_factory=dict)  # what run_command may run
    sleep: Callable[[float], None] = time.sleep
    severity: Severity = Severity.WARNING


class Action(abc.ABC):
    """One kind of repair, configured by a rule's `params` (checked in `configure`)."""

    name: ClassVar[str]
    destructive: ClassVar[bool] = False  # the default of a rule's `approval`

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        self.configure(**params)

    def configure(self, **params: Any) -> None:
        """Take the parameters; raise ValueError naming a bad one. Default: none allowed."""
        if params:
            raise ValueError(f"action {self.name!r} takes no parameters, got {', '.join(sorted(params))}")

    @abc.abstractmethod
    def plan(self, incident: Incident, ctx: ActionContext, /) -> Plan:
        """What would be done now. Reads only: no file, process or database is changed."""

    @abc.abstractmethod
    def apply(self, plan: Plan, ctx: ActionContext, /) -> Outcome:
        """Do the plan. Safe to repeat. Reports failure as an Outcome; raises only for bugs."""

    def rollback(self, plan: Plan, outcome: Outcome, ctx: ActionContext, /) -> Outcome | None:
        """Undo what apply did, where that is possible; None when there is nothing to undo."""
        return None

    def verify(self, plan: Plan, ctx: ActionContext, /) -> tuple[bool, str] | None:
        """The action's own verification, for what no check sees; None: the check decides."""
        return None

    # -- helpers --------------------------------------------------------------------------------

    def outcome(
        self,
        plan: Plan,
        ctx: ActionContext,
        started_at: datetime,
        ok: bool,
        detail: str,
        *,
        output: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> Outcome:
        return Outcome(plan, ok, detail, started_at, ctx.clock.now(), output[-MAX_OUTPUT:], dict(data or {}))


MAX_OUTPUT = 8000

actions: Registry[Action] = Registry("action", "pitstop.actions")
