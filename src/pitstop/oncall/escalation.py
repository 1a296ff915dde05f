"""Escalation: page the on-call for an incident, then the next step, until someone acknowledges.

Driven by the incident feed (subscriber `oncall`) and a scheduled job:

- an incident opened at, or risen to, a severity a policy covers (the first policy whose `match`
  labels and `min_severity` fit) starts an escalation, kept in `oncall_escalations`; its first
  step is due `after_minutes` of that step after the transition;
- the job sends each due step while the incident is still open, and sets the next one due
  `after_minutes` later; after the last step the policy's steps run again `repeat` times, every
  `repeat_after_minutes`, for incidents of `repeat_min_severity` or worse;
- acknowledging, suppressing or resolving the incident stops its escalation (the job also reads
  the incident's state before each step, so an acknowledgement the feed has not handed over yet
  stops it too);
- an emergency pages at once: its first step is due immediately, and an escalation under way
  when its incident rises to emergency sends its next step now. An emergency no policy matches
  goes to `emergency_policy` (default: the first policy).

Each step is sent through the alert router (`AlertRouter.send`: retries, a delivery record per
channel), with a signed acknowledge link per recipient in the message. The state is in the
database: a restart neither pages again nor forgets a step that is due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from pitstop.alerts.base import Alert, AlertItem
from pitstop.alerts.router import AlertRouter
from pitstop.config.oncall import OncallSettings, PolicySettings, StepSettings
from pitstop.core.clock import Clock
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput, NotFound
from pitstop.incidents import Change, Incident, IncidentRegistry, IncidentState
from pitstop.incidents.feed import Transition
from pitstop.incidents.windows import matches
from pitstop.oncall.contacts import channels_of
from pitstop.oncall.links import AckLinks, AckToken, LinkRefused
from pitstop.oncall.schedule import Schedule
from pitstop.storage.engine import Database
from pitstop.storage.schema import oncall_escalations

log = logging.getLogger("pitstop.oncall")
SUBSCRIBER = "oncall"
ACTIVE = "active"
STOPS = {"acknowledged", "resolved", "suppressed"}

Labels = Callable[[str, str], Mapping[str, str]]  # (key, source) -> the incident's alert labels


@dataclass(frozen=True, slots=True)
class Escalation:
    id: int
    incident_id: int
    incident_key: str
    policy: str
    fired: int  # steps sent so far, repeats counted
    next_at: datetime | None
    state: str  # active, acknowledged, resolved, suppressed, exhausted
    started_at: datetime
    updated_at: datetime
    stopped_by: str | None
    last: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "incident_key": self.incident_key,
            "policy": self.policy,
            "steps_sent": self.fired,
            "next_at": self.next_at.isoformat() if self.next_at else None,
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "stopped_by": self.stopped_by,
            "last": self.last,
        }


@dataclass(frozen=True, slots=True)
class OnCall:
    schedule: str
    primary: str
    secondary: str | None
    override: bool
    until: datetime  # the next change of primary

    def as_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "primary": self.primary,
            "secondary": self.secondary,
            "override": self.override,
            "until": self.until.isoformat(),
        }


class Escalations:
    def __init__(
        self,
        settings: OncallSettings,
        *,
        db: Database,
        clock: Clock,
        incidents: IncidentRegistry,
        router: AlertRouter,
        labels: Labels,
        links: AckLinks,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.incidents = incidents
        self.router = router
        self.labels = labels
        self.links = links
        self.schedules = {name: Schedule(name, cfg) for name, cfg in settings.schedules.items()}
        self._sending = threading.Lock()  # the feed's thread and the scheduler's both send due steps

    # -- who is on call -------------------------------------------------------------------------

    def schedule(self, name: str) -> Schedule:
        if name not in self.schedules:
            raise NotFound(f"no on-call schedule named {name[:100]!r}")
        return self.schedules[name]

    def now(self, at: datetime | None = None) -> list[OnCall]:
        at = at or self.clock.now()
        if not 1970 <= at.year <= 9000:
            raise InvalidInput("schedules are shown between the years 1970 and 9000")
        out = []
        for name, schedule in self.schedules.items():
            (current, *_) = schedule.shifts(at, at + timedelta(days=400))
            out.append(OnCall(name, current.contact, schedule.secondary_at(at), current.override, current.end))
        return out

    # -- the feed -------------------------------------------------------------------------------

    def __call__(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            if t.action in STOPS:
                self._stop(t.incident_id, t.action, t.actor, t.at)
                continue
            severity = _severity(t)
            if severity is None or not self.settings.policies:
                continue
            current = self.get(t.incident_id)
            if current is None:
                self._start(t, severity)
            elif current.state == ACTIVE and severity is Severity.EMERGENCY and _hurries(t, current):
                with self.db.begin() as conn:
                    conn.execute(
                        update(oncall_escalations)
                        .where(oncall_escalations.c.id == current.id)
                        .values(next_at=t.at, updated_at=self.clock.now())
                    )
        self.run_due(self.clock.now())

    def policy_for(self, labels: dict[str, str], severity: Severity) -> tuple[str, PolicySettings] | None:
        for name, policy in self.settings.policies.items():
            if severity.rank >= Severity(policy.min_severity).rank and matches(policy.match, labels):
                return name, policy
        if severity is Severity.EMERGENCY and self.settings.policies:
            name = self.settings.emergency_policy or next(iter(self.settings.policies))
            return name, self.settings.policies[name]
        return None

    def _start(self, t: Transition, severity: Severity) -> None:
        chosen = self.policy_for({**self.labels(t.key, t.source), "key": t.key}, severity)
        if chosen is None:
            return
        name, policy = chosen
        delay = 0.0 if severity is Severity.EMERGENCY else policy.steps[0].after_minutes
        now = self.clock.now()
        try:
            with self.db.begin() as conn:
                conn.execute(
                    insert(oncall_escalations).values(
                        incident_id=t.incident_id,
                        incident_key=t.key[:500],
                        policy=name,
                        fired=0,
                        next_at=t.at + timedelta(minutes=delay),
                        state=ACTIVE,
                        started_at=now,
                        updated_at=now,
                        last="",
                    )
                )
        except IntegrityError:  # handed over again: it has its escalation already
            return
        log.info("escalation of %s under policy %s started", t.key, name)

    def _stop(self, incident_id: int, state: str, actor: str, at: datetime) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(oncall_escalations)
                .where(oncall_escalations.c.incident_id == incident_id, oncall_escalations.c.state == ACTIVE)
                .values(state=state, next_at=None, stopped_by=actor[:200], updated_at=at)
            )

    # -- the job --------------------------------------------------------------------------------

    def scheduled(self, now: datetime) -> None:
        self.run_due(now)

    def run_due(self, now: datetime) -> list[Escalation]:
        """Send every step that is due; returns the escalations that moved."""
        with self._sending:
            return self._run_due(now)

    def _run_due(self, now: datetime) -> list[Escalation]:
        query = (
            select(oncall_escalations)
            .where(oncall_escalations.c.state == ACTIVE, oncall_escalations.c.next_at <= now)
            .order_by(oncall_escalations.c.next_at, oncall_escalations.c.id)
        )
        with self.db.connect() as conn:
            due = [_escalation(r) for r in conn.execute(query)]
        moved = []
        for esc in due:
            incident = self.incidents.get(esc.incident_id)
            if incident.state is not IncidentState.OPEN:
                self._stop(esc.incident_id, incident.state.value, "pitstop", now)
                continue
            policy = self.settings.policies.get(esc.policy)
            if policy is None:
                self._finish(esc, now, f"policy {esc.policy!r} is no longer configured", state="exhausted")
                continue
            step_no = esc.fired % len(policy.steps)
            sent = self._page(incident, esc, policy, policy.steps[step_no], step_no, now)
            moved.append(self._advance(esc, policy, incident, now, sent))
        return moved

    def _advance(
        self, esc: Escalation, policy: PolicySettings, incident: Incident, now: datetime, last: str
    ) -> Escalation:
        fired = esc.fired + 1
        steps = len(policy.steps)
        next_at: datetime | None = None
        if fired % steps:
            next_at = now + timedelta(minutes=policy.steps[fired % steps].after_minutes)
        elif fired // steps <= policy.repeat and incident.severity.rank >= Severity(policy.repeat_min_severity).rank:
            next_at = now + timedelta(minutes=policy.repeat_after_minutes)
        return self._finish(esc, now, last, fired=fired, next_at=next_at, state=ACTIVE if next_at else "exhausted")

    def _finish(
        self,
        esc: Escalation,
        now: datetime,
        last: str,
        *,
        fired: int | None = None,
        next_at: datetime | None = None,
        state: str,
    ) -> Escalation:
        with self.db.begin() as conn:
            # only if nothing else moved it meanwhile (an acknowledgement stopped it, another run sent it)
            conn.execute(
                update(oncall_escalations)
                .where(
                    oncall_escalations.c.id == esc.id,
                    oncall_escalations.c.fired == esc.fired,
                    oncall_escalations.c.state == ACTIVE,
                )
                .values(
                    fired=esc.fired if fired is None else fired,
                    next_at=next_at,
                    state=state,
                    updated_at=now,
                    last=last[:2000],
                )
            )
            row = conn.execute(select(oncall_escalations).where(oncall_escalations.c.id == esc.id)).one()
        return _escalation(row)

    def _page(
        self,
        incident: Incident,
        esc: Escalation,
        policy: PolicySettings,
        step: StepSettings,
        step_no: int,
        now: datetime,
    ) -> str:
        """Send one step to its recipients; returns what was done, for the record."""
        where = f"step {step_no + 1}/{len(policy.steps)}" + (
            f", round {esc.fired // len(policy.steps) + 1}" if esc.fired >= len(policy.steps) else ""
        )
        outcomes = []
        for recipient, channels in self._recipients(policy, step, now):
            if not channels:
                outcomes.append(f"{recipient}: no channel reaches them")
                continue
            link = self.links.url(incident.id, recipient, now)
            summary = f"{incident.title} ({where} of on-call policy {esc.policy}: {recipient}). Acknowledge: {link}"
            labels = {"target": incident.target, "policy": esc.policy, "step": str(step_no + 1), "to": recipient}
            item = AlertItem(incident.key, "escalated", incident.severity, summary, now, labels)
            alert = Alert({"target": incident.target}, (item,))
            for channel in channels:
                (record, *_) = self.router.send(channel, alert, now)
                outcomes.append(f"{channel}: {record.outcome}" + (f" ({record.error})" if record.error else ""))
        log.warning("escalation of %s, %s: %s", incident.key, where, "; ".join(outcomes))
        paged = f"{where}: " + "; ".join(outcomes or ["nobody to page"])
        self.incidents.escalated(incident.id, actor=f"oncall:{esc.policy}", detail={"paged": paged})
        return paged

    def _recipients(self, policy: PolicySettings, step: StepSettings, at: datetime) -> list[tuple[str, list[str]]]:
        kind, _, name = step.notify.partition(":")
        if kind == "channel":
            return [(name, [name])]
        if kind == "contact":
            contact: str | None = name
        else:
            assert policy.schedule is not None  # checked in the settings
            schedule = self.schedules[policy.schedule]
            contact = schedule.primary_at(at) if step.notify == "primary" else schedule.secondary_at(at)
        if contact is None:
            return []
        return [(contact, channels_of(contact, self.router.notifiers))]

    # -- acknowledge links ----------------------------------------------------------------------

    def check_link(self, token: str) -> tuple[AckToken, Incident]:
        """The incident a link acknowledges; LinkRefused for a malformed, forged or expired link."""
        ack = self.links.verify(token, self.clock.now())
        try:
            incident = self.incidents.get(ack.incident_id)
        except NotFound:
            raise LinkRefused(404, "the incident of this link no longer exists") from None
        return ack, incident

    def acknowledge_link(self, token: str) -> tuple[Incident, Change]:
        """Acknowledge through a signed link (as `link:<recipient>`); an incident already acknowledged
        is not changed; a resolved or suppressed one is refused (409)."""
        ack, incident = self.check_link(token)
        if incident.state is IncidentState.ACKNOWLEDGED:
            return incident, Change.NONE
        if incident.state is not IncidentState.OPEN:
            raise LinkRefused(409, f"this incident is {incident.state.value}; there is nothing to acknowledge")
        try:
            return self.incidents.acknowledge(
                incident.key, actor=f"link:{ack.recipient}", note="acknowledged by link", incident_id=incident.id
            )
        except (NotFound, InvalidInput) as exc:  # resolved or changed since it was read
            raise LinkRefused(409, str(exc)) from None

    # -- reads ----------------------------------------------------------------------------------

    def get(self, incident_id: int) -> Escalation | None:
        with self.db.connect() as conn:
            row = conn.execute(
                select(oncall_escalations).where(oncall_escalations.c.incident_id == incident_id)
            ).first()
        return _escalation(row) if row else None

    def list(self, *, active: bool = True, limit: int = 100) -> list[Escalation]:
        query = select(oncall_escalations).order_by(oncall_escalations.c.id.desc()).limit(limit)
        if active:
            query = query.where(oncall_escalations.c.state == ACTIVE)
        with self.db.connect() as conn:
            return [_escalation(r) for r in conn.execute(query)]


def _severity(t: Transition) -> Severity | None:
    """The severity an opening or a rise set; None for every other transition."""
    if t.action in ("opened", "updated") and "severity" in t.detail:
        try:
            return Severity(t.detail["severity"])
        except ValueError:
            return None
    return None


def _hurries(t: Transition, esc: Escalation) -> bool:
    """Whether a rise to emergency still has to bring the escalation's next step forward: not the
    opening that started it, and not a rise handed over again after a step went out (after a crash,
    the feed hands transitions over again; they must not page anyone a second time)."""
    return t.action == "updated" and t.at > esc.updated_at


def _escalation(row: Row[Any]) -> Escalation:
    return Escalation(
        id=row.id,
        incident_id=row.incident_id,
        incident_key=row.incident_key,
        policy=row.policy,
        fired=row.fired,
        next_at=row.next_at,
        state=row.state,
        started_at=row.started_at,
        updated_at=row.updated_at,
        stopped_by=row.stopped_by,
        last=row.last,
    )
