"""Procedure `action` steps run by the self-healing engine's actions: plan -> guards -> apply -> verify.

A step names a registered remediation action (`vacuum_database`, `free_disk`, `restart_service`,
...), its params and its target (default: the run's asset). There is no incident: the step
itself, in a procedure version the run records, is what asks for the repair. The guards that
apply without one:

- the circuit breaker: an action the engine gave up on for this target (`pitstop heal reset`
  closes it) is not run by a procedure either;
- a plan that needs a maintenance window (VACUUM) runs only inside one covering the run's asset;
- a destructive plan runs only from a step marked `disruptive = true` (so inside a window too);
- `remediation.dry_run`: the plan is recorded, nothing is applied.

The attempt budget and the cooldown belong to the engine's rules for incidents; a procedure step
runs as often as its procedure (and its `every`). After `apply`, the action's own verification
is polled like the engine does (`remediation.verify_timeout_s`); a failed apply or verification
is rolled back where the action can. The step's result says all of it: the plan's steps, what
apply did, the verification and any rollback.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pitstop.core.types import Severity
from pitstop.incidents import Incident, IncidentState

if TYPE_CHECKING:
    from pitstop.remediation import Action, ActionContext, Outcome, Plan, RemediationEngine

MAX_OUTPUT = 4000


class StepActions:
    """The `ProcedureRunner.action_runner` of an installation: its engine's actions and guards."""

    def __init__(self, engine: RemediationEngine) -> None:
        self.engine = engine

    def __call__(
        self,
        action: str,
        params: Mapping[str, Any],
        *,
        asset: str,
        target: str,
        window: str | None,
        disruptive: bool,
        reason: str,
    ) -> tuple[bool | None, str]:
        """Run `action` on `target` now: (True healed / False failed / None not applied, what happened).
        Raises ValueError for an unknown action or parameters it refuses."""
        from pitstop.remediation import actions

        try:
            act = actions.create(action, **dict(params))
        except LookupError:
            raise ValueError(f"no remediation action named {action!r}; known: {', '.join(actions.names())}") from None
        except TypeError as exc:
            raise ValueError(f"action {action}: {exc}") from None
        engine = self.engine
        now = engine.clock.now()
        _, _, breaker = engine.store.history(action, target, now)
        if breaker:
            return None, (
                f"not run: the circuit breaker of {action} on {target} is open (self-healing gave up on it); "
                f"a person closes it with `pitstop heal reset {target}`"
            )
        incident = _incident(target, reason, now)
        ctx = engine.context(incident)
        plan = act.plan(incident, ctx)
        planned = "plan: " + "; ".join(plan.steps)
        if plan.needs_window and window is None:
            where = asset or "the system"
            return None, f"waits for a maintenance window covering {where}: {action} runs only inside one\n{planned}"
        if plan.destructive and not disruptive:
            return None, (
                f"not run: the plan of {action} is destructive, and this step is not marked disruptive = true "
                f"(which runs it inside a maintenance window)\n{planned}"
            )
        if engine.settings.dry_run:
            return None, f"dry run (remediation.dry_run): planned only, nothing applied\n{planned}"
        return self._apply(act, plan, ctx, planned)

    def _apply(self, act: Action, plan: Plan, ctx: ActionContext, planned: str) -> tuple[bool, str]:
        from pitstop.remediation import Outcome

        engine = self.engine
        started = engine.clock.now()
        try:
            outcome = act.apply(plan, ctx)
        except Exception as exc:  # a bug in an action is a failed attempt with the error, as in the engine
            outcome = Outcome(plan, False, f"{type(exc).__name__}: {exc}"[:1000], started, engine.clock.now())
        lines = [planned, f"applied: {'ok' if outcome.ok else 'FAILED'}: {outcome.detail}"]
        if outcome.output:
            lines.append(outcome.output)
        verified = False
        if outcome.ok:
            if plan.grace_s > 0:
                engine.sleep(plan.grace_s)
            verified, evidence = self._verify(act, plan, ctx)
            lines.append(f"verified: {evidence}" if verified else f"not verified: {evidence}")
        if not verified:
            lines.append(_rolled_back(act, plan, outcome, ctx))
        text = "\n".join(line for line in lines if line)
        return verified, text if len(text) <= MAX_OUTPUT else text[: MAX_OUTPUT - 10] + "\n... (cut)"

    def _verify(self, act: Action, plan: Plan, ctx: ActionContext) -> tuple[bool, str]:
        """The action's own verification until it holds or the engine's timeout passes; an action
        without one is judged by its apply (no check opened an incident that could verify it)."""
        settings = self.engine.settings
        deadline = time.perf_counter() + settings.verify_timeout_s
        while True:
            seen = act.verify(plan, ctx)
            if seen is None:
                return True, f"{act.name} has no verification of its own: its apply succeeded"
            ok, evidence = seen
            if ok:
                return True, evidence
            if time.perf_counter() >= deadline:
                return False, f"not healthy after {settings.verify_timeout_s:g} s: {evidence}"
            self.engine.sleep(settings.verify_interval_s)


def _rolled_back(act: Action, plan: Plan, outcome: Outcome, ctx: ActionContext) -> str:
    try:
        back = act.rollback(plan, outcome, ctx)
    except Exception as exc:
        return f"rollback FAILED: {type(exc).__name__}: {exc}"[:1000]
    if back is None:
        return ""
    return f"rolled back: {'ok' if back.ok else 'FAILED'}: {back.detail}"


def _incident(target: str, reason: str, now: Any) -> Incident:
    """What an action plans for: the step as an incident of its target (never stored)."""
    return Incident(
        id=0,
        key=f"procedure.step:{target}",
        state=IncidentState.OPEN,
        severity=Severity.WARNING,
        title=reason[:500],
        detail=None,
        source="procedure",
        assignee=None,
        opened_at=now,
        updated_at=now,
        resolved_at=None,
    )
