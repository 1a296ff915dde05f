"""The router: which channels get which alerts, grouped by labels, with retries and a record of
every delivery (and of every notification held back by a silence, window or inhibition)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select

from pitstop.alerts.base import Alert, AlertItem, Delivery, Notifier
from pitstop.alerts.policy import Decision
from pitstop.core.types import Severity
from pitstop.incidents.windows import matches
from pitstop.storage.engine import Database
from pitstop.storage.schema import alert_notifications


@dataclass(frozen=True)
class Route:
    channels: tuple[str, ...]
    match: Mapping[str, str] = field(default_factory=dict)
    min_severity: Severity = Severity.WARNING
    group_by: tuple[str, ...] = ("site",)

    def wants(self, decision: Decision) -> bool:
        if decision.event == "resolved":  # a resolution goes wherever the problem went
            return matches(self.match, {**decision.labels, "key": decision.key})
        return decision.severity.rank >= self.min_severity.rank and matches(
            self.match, {**decision.labels, "key": decision.key}
        )


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    at: datetime
    alert_key: str
    event: str
    severity: str
    channel: str
    outcome: str  # sent, failed, suppressed
    reason: str
    attempts: int
    error: str | None
    transition_id: int | None = None


class AlertRouter:
    def __init__(
        self,
        db: Database,
        notifiers: Mapping[str, Notifier],
        routes: Sequence[Route],
        *,
        max_attempts: int = 3,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        unknown = {c for r in routes for c in r.channels} - set(notifiers)
        if unknown:
            raise ValueError(f"alert routes name unknown channel(s): {', '.join(sorted(unknown))}")
        self.db = db
        self.notifiers = dict(notifiers)
        self.routes = list(routes)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.sleep = sleep

    def dispatch(self, decisions: Sequence[Decision], now: datetime) -> list[NotificationRecord]:
        """Send what the policy decided this round; record every delivery and every held-back one."""
        records: list[NotificationRecord] = []
        # channel -> group labels -> items
        batches: dict[str, dict[tuple[tuple[str, str], ...], list[AlertItem]]] = {}
        transitions = {d.key: d.transition_id for d in decisions if d.transition_id is not None}
        for d in decisions:
            if d.suppressed_by is not None:
                held = (d.suppressed_by, 0, None, d.transition_id)
                records.append(_record(now, d.key, d.event, d.severity.value, "-", "suppressed", *held))
                continue
            item = AlertItem(d.key, d.event.value, d.severity, d.summary, d.at, dict(d.labels))
            for route in self.routes:
                if not route.wants(d):
                    continue
                group = tuple((name, d.labels.get(name, "")) for name in route.group_by)
                for channel in route.channels:
                    items = batches.setdefault(channel, {}).setdefault(group, [])
                    if all(i.key != item.key for i in items):
                        items.append(item)
        for channel, groups in batches.items():
            for group, items in groups.items():
                alert = Alert(dict(group), tuple(items))
                records += self.send(channel, alert, now, transitions=transitions, save=False)
        self._save(records)
        return records

    def send(
        self,
        channel: str,
        alert: Alert,
        now: datetime,
        *,
        transitions: Mapping[str, int] | None = None,
        save: bool = True,
    ) -> list[NotificationRecord]:
        """Deliver one alert to one channel with the router's retries, and record the delivery of
        each of its items (the one way out to a channel, escalations included)."""
        if channel not in self.notifiers:
            raise ValueError(f"no alert channel named {channel!r}")
        delivery, attempts = self._deliver(channel, alert)
        outcome = "sent" if delivery.ok else "failed"
        records = [
            _record(
                now,
                i.key,
                i.event,
                i.severity.value,
                channel,
                outcome,
                "",
                attempts,
                delivery.error,
                (transitions or {}).get(i.key),
            )
            for i in alert.items
        ]
        if save:
            self._save(records)
        return records

    def sent_for(self, transition_ids: Sequence[int]) -> set[int]:
        """Which of these incident transitions were already notified (or held back): a transition
        handed over again after a crash is not sent twice."""
        if not transition_ids:
            return set()
        query = select(alert_notifications.c.transition_id).where(
            alert_notifications.c.transition_id.in_(list(transition_ids))
        )
        with self.db.connect() as conn:
            return {int(r[0]) for r in conn.execute(query)}

    def _save(self, records: Sequence[NotificationRecord]) -> None:
        if records:
            with self.db.begin() as conn:
                conn.execute(insert(alert_notifications), [_row(r) for r in records])

    def _deliver(self, channel: str, alert: Alert) -> tuple[Delivery, int]:
        notifier = self.notifiers[channel]
        delivery = Delivery(channel, False, "not attempted")
        for attempt in range(1, self.max_attempts + 1):
            try:
                delivery = notifier.send(alert)
            except Exception as exc:  # a notifier bug must not stop the others
                delivery = Delivery(channel, False, f"{type(exc).__name__}")
            if delivery.ok:
                return delivery, attempt
            if attempt < self.max_attempts:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
        return delivery, self.max_attempts

    def recent(self, limit: int = 100, key: str | None = None) -> list[NotificationRecord]:
        """Newest first."""
        query = select(alert_notifications).order_by(alert_notifications.c.id.desc()).limit(limit)
        if key is not None:
            query = query.where(alert_notifications.c.alert_key == key)
        return self._records(query)

    def since(self, at: datetime) -> list[NotificationRecord]:
        """Every record from `at` on, oldest first."""
        return self._records(
            select(alert_notifications).where(alert_notifications.c.at >= at).order_by(alert_notifications.c.id)
        )

    def _records(self, query: Select[Any]) -> list[NotificationRecord]:
        with self.db.connect() as conn:
            return [
                NotificationRecord(
                    r.at,
                    r.alert_key,
                    r.event,
                    r.severity,
                    r.channel,
                    r.outcome,
                    r.reason,
                    r.attempts,
                    r.error,
                    r.transition_id,
                )
                for r in conn.execute(query)
            ]


def _record(
    at: datetime,
    key: str,
    event: str,
    severity: str,
    channel: str,
    outcome: str,
    reason: str,
    attempts: int,
    error: str | None = None,
    transition_id: int | None = None,
) -> NotificationRecord:
    return NotificationRecord(at, key, str(event), severity, channel, outcome, reason, attempts, error, transition_id)


def _row(r: NotificationRecord) -> dict[str, object]:
    return {
        "at": r.at,
        "alert_key": r.alert_key[:500],
        "event": r.event,
        "severity": r.severity,
        "channel": r.channel,
        "outcome": r.outcome,
        "reason": r.reason,
        "attempts": r.attempts,
        "error": r.error,
        "transition_id": r.transition_id,
    }
