"""rollback_model: roll a model's champion back one step, for incidents on a model.

The rule pitstop adds for every configured model with an accuracy floor is
``model.accuracy:<name> -> rollback_model`` (the champion's live accuracy fell below its floor).
The previous champion must load (sha256) and pass its parity check before the alias moves; the
move is recorded like any other, with the remediation as its actor. Undo is another rollback or a
promotion by hand, so `rollback` here returns None. The model code is imported when the action
runs, not when remediation starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pitstop.errors import PitstopError
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan

if TYPE_CHECKING:
    from pitstop.incidents import Incident
    from pitstop.ml.registry.store import ModelRegistry

ACTOR = "remediation:rollback_model"


def _registry(ctx: ActionContext) -> ModelRegistry:
    from pitstop.incidents import IncidentRegistry
    from pitstop.ml.registry.store import ModelRegistry

    # Rolling back reads artifact paths from the database; data_dir is only used to register.
    return ModelRegistry(ctx.db, ctx.clock, data_dir=Path(), incidents=IncidentRegistry(ctx.db, ctx.clock))


class RollbackModel(Action):
    """No parameters; the incident's target names the model."""

    name = "rollback_model"
    destructive: ClassVar[bool] = False

    def configure(self, **params: Any) -> None:
        if params:
            raise ValueError(f"rollback_model takes no parameters, got {', '.join(sorted(params))}")

    def plan(self, incident: Incident, ctx: ActionContext, /) -> Plan:
        registry = _registry(ctx)
        current = registry.alias(incident.target, "champion")
        previous = next((v for v in registry.champion_history(incident.target) if v != current), None)
        step = (
            f"{incident.target}: champion v{current} -> v{previous} after load + parity check"
            if previous is not None
            else f"{incident.target}: no previous champion (nothing to do)"
        )
        return Plan(self.name, incident.target, (step,), self.destructive, {"from": current, "to": previous})

    def apply(self, plan: Plan, ctx: ActionContext, /) -> Outcome:
        started = ctx.clock.now()
        registry = _registry(ctx)
        target = plan.params.get("to")
        if target is None:
            return self.outcome(plan, ctx, started, False, f"{plan.target}: no previous champion to roll back to")
        if registry.alias(plan.target, "champion") == target:
            return self.outcome(plan, ctx, started, True, f"{plan.target}: already at v{target}")
        try:
            move = registry.rollback(plan.target, actor=ACTOR, reason="self-healing")
        except PitstopError as exc:
            return self.outcome(plan, ctx, started, False, f"{plan.target}: {exc}"[:500])
        return self.outcome(
            plan,
            ctx,
            started,
            True,
            f"{plan.target}: champion v{move.from_version} -> v{move.to_version}",
            data=move.as_dict(),
        )

    def verify(self, plan: Plan, ctx: ActionContext, /) -> tuple[bool, str] | None:
        now = _registry(ctx).alias(plan.target, "champion")
        return now == plan.params.get("to"), f"{plan.target}: champion is v{now}"
