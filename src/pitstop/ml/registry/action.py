"""rollback_model: the self-healing action that rolls a model's champion back one step.

For incidents on a model (``model.<condition>:<name>``, e.g. a live-accuracy floor breached): the
previous champion must load (sha256) and pass its parity check before the alias moves; the move
is recorded like any other, with the remediation as its actor.

Not registered on import (the remediation contract pins the built-in set): a deployment adds it
with ``pitstop.remediation.base.actions.add(RollbackModel)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pitstop.errors import PitstopError
from pitstop.incidents import Incident, IncidentRegistry
from pitstop.ml.registry.store import ModelRegistry
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan


def _registry(ctx: ActionContext) -> ModelRegistry:
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
        if registry.alias(plan.target, "champion") == plan.params.get("to"):
            return self.outcome(plan, ctx, started, True, f"{plan.target}: already at v{plan.params.get('to')}")
        try:
            move = registry.rollback(plan.target, actor="remediation:rollback_model", reason="self-healing")
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
