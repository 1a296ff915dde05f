"""The engine: incident -> rule -> guards -> plan -> (dry run stops) -> apply -> verify -> resolve,
or roll back, and escalate once when the budget is spent. Every step is a row.

Verification re-runs the check that opened the incident (and the action's own verification,
for links no check sees) until it is healthy or the timeout passes. Real waits (start-up grace,
verification polls) go through the injected `sleep`; timestamps come from the injected clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pitstop.config.remediation import RemediationSettings
from pitstop.core.clock import Clock
from pitstop.incidents import Incident, IncidentRegistry
from pitstop.incidents.windows import MuteStore, matches
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan
from pitstop.remediation.rules import (
    ALLOWED_STATES,
    History,
    RemediationRule,
    RuleBook,
    guard,
    guard_plan,
    is_critical,
)
from pitstop.remediation.store import (
    APPLYING,
    APPROVED,
    AWAITING,
    DRY_RUN,
    FAILED,
    HEALED,
    REJECTED,
    Breaker,
    Remediation,
    RemediationStore,
)
from pitstop.storage.engine import Database

log = logging.getLogger("pitstop.remediation")

Verifier = Callable[[Incident], "tuple[bool, str] | None"]  # re-run the check that opened it; None: none known
Escalate = Callable[[str, Incident, str, str], "tuple[bool, str]"]  # (to, incident, title, body) -> delivered?


@dataclass(frozen=True, slots=True)
class Preview:
    """What the engine would do now for one incident (`pitstop heal --plan`): nothing is written."""

    incident: Incident
    rule: str
    action: str
    decision: str  # apply, await approval, wait, blocked, error
    reason: str
    plan: Plan | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident": self.incident.key,
            "incident_id": self.incident.id,
            "severity": self.incident.severity.value,
            "rule": self.rule,
            "action": self.action,
            "decision": self.decision,
            "reason": self.reason,
            "plan": self.plan.as_dict() if self.plan else None,
        }


class RemediationEngine:
    def __init__(
        self,
        settings: RemediationSettings,
        *,
        clock: Clock,
        db: Database,
        incidents: IncidentRegistry,
        verifier: Verifier,
        escalate: Escalate,
        links: Callable[[], Mapping[str, object]] = dict,
        sleep: Callable[[float], None] = time.sleep,
        on_finished: Callable[[Remediation], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.db = db
        self.incidents = incidents
        self.verifier = verifier
        self.escalate = escalate
        self.links = links
        self.sleep = sleep
        self.on_finished = on_finished  # e.g. the maintenance log
        self.rules = RuleBook([RemediationRule.of(r) for r in settings.rules])
        self.store = RemediationStore(db)
        self.windows = MuteStore(db)

    # -- the loop -------------------------------------------------------------------------------

    def scheduled(self, now: datetime) -> None:
        """The scheduler job."""
        self.run_pass()

    def run_pass(self) -> list[int]:
        """Handle every active incident that a rule matches; the ids of the remediations touched."""
        touched = []
        for incident in self.incidents.list(state=sorted(ALLOWED_STATES), limit=1000):
            try:
                rid = self.handle(incident)
            except Exception:  # one broken repair must not stop the others
                log.exception("remediation of %s failed", incident.key)
                continue
            if rid is not None:
                touched.append(rid)
        return touched

    def handle(self, incident: Incident) -> int | None:
        """One step forward for one incident; the id of the remediation row written, if any."""
        found = self.rules.find(incident.key)
        if found is None:
            return None
        rule, action = found
        last = self._last(incident)
        if last is not None and last.state in (AWAITING, REJECTED, DRY_RUN):
            return None  # a person decides, or decided no; a dry run is recorded once
        now = self.clock.now()
        window = self.window_for(incident, action.name, now)
        verdict = guard(incident, rule, self._history(rule, action, incident), now=now, window=window)
        if not verdict.go:
            return None
        ctx = self.context(incident)
        if last is not None and last.state == APPROVED:
            plan, rid = last.plan, int(last.id)
            if plan.needs_window and window is None and not is_critical(incident):
                return None  # approved, and waiting for a window
        else:
            plan = action.plan(incident, ctx)
            verdict = guard_plan(incident, rule, plan, window=window)
            if not verdict.go and not verdict.reason.startswith("needs approval"):
                return None  # waiting for a window: nothing happened, nothing to record
            state = DRY_RUN if self.settings.dry_run else AWAITING if not verdict.go else APPLYING
            rid = self.store.create(incident, rule.match, plan, state, now)
            self.store.step(rid, "seen", at=now, ok=True, detail=incident.title, data=incident.as_dict())
            self.store.step(rid, "planned", at=now, ok=True, detail="; ".join(plan.steps), data=plan.as_dict())
            if state != APPLYING:
                reason = "dry run" if state == DRY_RUN else verdict.reason
                self.store.set_state(rid, state, now, result=reason)
                return rid
        self._apply(rid, incident, rule, action, plan, ctx)
        return rid

    def _apply(
        self, rid: int, incident: Incident, rule: RemediationRule, action: Action, plan: Plan, ctx: ActionContext
    ) -> None:
        now = self.clock.now()
        self.store.set_state(rid, APPLYING, now, applied_at=now)
        start = time.perf_counter()
        try:
            outcome = action.apply(plan, ctx)
        except Exception as exc:  # a bug in an action is a failed attempt with the error
            log.exception("action %s raised", action.name)
            outcome = Outcome(plan, False, f"{type(exc).__name__}: {exc}"[:1000], now, self.clock.now())
        self.store.step(
            rid,
            "applied",
            at=self.clock.now(),
            ok=outcome.ok,
            detail=outcome.detail,
            output=outcome.output,
            data=dict(outcome.data),
            duration_s=time.perf_counter() - start,
        )
        verified, evidence = False, outcome.detail
        if outcome.ok:
            start = time.perf_counter()
            if plan.grace_s > 0:
                self.sleep(plan.grace_s)
            verified, evidence = self._verify(incident, rule, action, plan, ctx)
            self.store.step(
                rid,
                "verified",
                at=self.clock.now(),
                ok=verified,
                detail=evidence,
                duration_s=time.perf_counter() - start,
            )
        if verified:
            self.incidents.resolve(
                incident.key, reason=f"healed by {action.name}: {evidence}"[:4000], actor=f"remediation:{action.name}"
            )
            now = self.clock.now()
            self.store.step(rid, "resolved", at=now, ok=True, detail=f"incident {incident.key} resolved")
            self.store.set_state(rid, HEALED, now, finished_at=now, result=evidence)
            self._finished(rid)
            return
        back = action.rollback(plan, outcome, ctx)
        if back is not None:
            self.store.step(rid, "rolled_back", at=self.clock.now(), ok=back.ok, detail=back.detail, output=back.output)
        now = self.clock.now()
        self.store.set_state(rid, FAILED, now, finished_at=now, result=evidence)
        history = self._history(rule, action, incident)
        if history.attempts >= rule.max_attempts and not history.breaker_open:
            self._trip(rid, incident, rule, action, history)
        self._finished(rid)

    def _finished(self, rid: int) -> None:
        if self.on_finished is None:
            return
        try:
            self.on_finished(self.store.get(rid))
        except Exception:  # the record of the repair is already written; a log hook must not undo it
            log.exception("recording remediation %s elsewhere failed", rid)

    def _verify(
        self, incident: Incident, rule: RemediationRule, action: Action, plan: Plan, ctx: ActionContext
    ) -> tuple[bool, str]:
        """Re-run the check (and the action's own verification) until healthy or the timeout passes."""
        timeout = rule.verify_timeout_s or self.settings.verify_timeout_s
        deadline = time.perf_counter() + timeout
        while True:
            seen = [r for r in (self.verifier(incident), action.verify(plan, ctx)) if r is not None]
            if not seen:
                return False, "nothing can verify this repair: no check opened it and the action has no verification"
            evidence = "; ".join(text for _, text in seen)
            if all(ok for ok, _ in seen):
                return True, evidence
            if time.perf_counter() >= deadline:
                return False, f"not healthy after {timeout:g} s: {evidence}"
            self.sleep(self.settings.verify_interval_s)

    def _trip(self, rid: int, incident: Incident, rule: RemediationRule, action: Action, history: History) -> None:
        """The budget is spent: open the breaker and escalate once, with the evidence."""
        to = rule.escalate_to or self.settings.escalate_to
        attempts = [r for r in self.store.for_incident(incident.id) if r.applied_at is not None]
        lines = [
            f"{action.name} on {incident.target} tried {history.attempts} time(s), budget {rule.max_attempts} "
            f"per {rule.window.total_seconds():g} s; it will not try again until a person runs "
            f"`pitstop heal reset {incident.target}`.",
        ]
        for r in attempts[-rule.max_attempts :]:
            lines.append(f"- remediation {r.id} at {r.applied_at:%Y-%m-%d %H:%M:%S}Z: {r.state}: {r.result[:300]}")
        body = "\n".join(lines)
        title = f"self-healing gave up on {incident.key}"
        try:
            delivered, detail = self.escalate(to, incident, title, body)
        except Exception as exc:
            delivered, detail = False, f"{type(exc).__name__}: {exc}"[:500]
        now = self.clock.now()
        self.store.open_breaker(action.name, incident.target, reason=body, escalated_to=to, now=now)
        self.store.step(rid, "escalated", at=now, ok=delivered, detail=f"to {to}: {detail}", output=body)

    # -- helpers --------------------------------------------------------------------------------

    def _last(self, incident: Incident) -> Remediation | None:
        rows = self.store.for_incident(incident.id)
        return rows[-1] if rows else None

    def context(self, incident: Incident) -> ActionContext:
        return ActionContext(
            clock=self.clock,
            db=self.db,
            links=self.links(),
            commands=self.settings.commands,
            sleep=self.sleep,
            severity=incident.severity,
        )

    def _history(self, rule: RemediationRule, action: Action, incident: Incident) -> History:
        attempts, last, breaker = self.store.history(action.name, incident.target, self.clock.now() - rule.window)
        return History(attempts, last, breaker)

    def window_for(self, incident: Incident, action: str, at: datetime) -> str | None:
        """The maintenance window in force for this incident and action, by name; None when none is."""
        labels = {
            "key": incident.key,
            "issue": f"{incident.area}.{incident.condition}",
            "target": incident.target,
            "action": action,
            "check": incident.source.removeprefix("check:"),
        }
        for w in self.windows.windows():
            if matches(w.matchers, labels) and w.active_at(at):
                return w.name
        return None

    # -- what people do -------------------------------------------------------------------------

    def preview(self) -> list[Preview]:
        """What a pass would do now, for every active incident a rule matches. Writes nothing."""
        out = []
        for incident in self.incidents.list(state=sorted(ALLOWED_STATES), limit=1000):
            found = self.rules.find(incident.key)
            if found is None:
                continue
            rule, action = found
            out.append(self._preview(incident, rule, action))
        return out

    def _preview(self, incident: Incident, rule: RemediationRule, action: Action) -> Preview:
        def said(decision: str, reason: str, plan: Plan | None = None) -> Preview:
            return Preview(incident, rule.match, action.name, decision, reason, plan)

        last = self._last(incident)
        if last is not None and last.state == AWAITING:
            return said("await approval", f"remediation {last.id} awaits approval", last.plan)
        if last is not None and last.state == REJECTED:
            return said("blocked", f"remediation {last.id} was rejected", last.plan)
        now = self.clock.now()
        window = self.window_for(incident, action.name, now)
        verdict = guard(incident, rule, self._history(rule, action, incident), now=now, window=window)
        if not verdict.go:
            return said("blocked" if "breaker" in verdict.reason or verdict.budget_spent else "wait", verdict.reason)
        try:
            plan = action.plan(incident, self.context(incident))
        except Exception as exc:
            return said("error", f"planning failed: {type(exc).__name__}: {exc}"[:500])
        if last is not None and last.state == APPROVED:
            return said("apply", f"remediation {last.id} was approved", last.plan)
        verdict = guard_plan(incident, rule, plan, window=window)
        if not verdict.go:
            decision = "await approval" if verdict.reason.startswith("needs approval") else "wait"
            return said(decision, verdict.reason, plan)
        return said("apply", "dry run: would plan only" if self.settings.dry_run else "guards pass", plan)

    def approve(self, remediation_id: int, *, actor: str, reason: str = "approved") -> Remediation:
        return self.store.decide(remediation_id, approve=True, actor=actor, reason=reason, now=self.clock.now())

    def reject(self, remediation_id: int, *, actor: str, reason: str = "rejected") -> Remediation:
        return self.store.decide(remediation_id, approve=False, actor=actor, reason=reason, now=self.clock.now())

    def reset(self, target: str, *, actor: str, action: str | None = None) -> list[Breaker]:
        return self.store.reset(target, actor=actor, now=self.clock.now(), action=action)

    def kpis(self, since: datetime | None = None) -> dict[str, Any]:
        """Self-healing success rate and MTTR per action and per target (for the diagnostics report)."""
        return self.store.kpis(since)
