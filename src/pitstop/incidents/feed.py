"""The incident feed: every incident transition, in order, to every subscriber, at least once.

The registry writes each transition (opened, updated, acknowledged, suppressed, assigned, resolved)
as a row of `incident_events` in the same transaction as the change itself, so the timeline is
also the outbox: nothing committed can be missed. A subscriber reads the rows after its cursor
(`feed_cursors`), handles them, and only then moves its cursor; a crash in between hands the same
transitions over again, so subscribers are idempotent by transition id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from pitstop.background import SupervisedThread, Supervisor
from pitstop.core.clock import Clock
from pitstop.core.types import Severity
from pitstop.incidents.models import IncidentEvent
from pitstop.incidents.registry import event_fields
from pitstop.storage.engine import Database
from pitstop.storage.schema import feed_cursors, incident_events, incidents

log = logging.getLogger("pitstop.incidents.feed")
BATCH = 500


@dataclass(frozen=True, slots=True)
class Transition(IncidentEvent):
    """One step of an incident's life (its `id` is the subscribers' idempotency key), with the
    incident as it is now."""

    key: str
    severity: Severity
    title: str
    source: str
    summary: str | None  # the incident's detail now


Handler = Callable[[Sequence[Transition]], None]


class IncidentFeed:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.subscribers: dict[str, Handler] = {}

    def subscribe(self, name: str, handler: Handler) -> None:
        """`handler` gets every transition after the subscriber's cursor (from the first, for a
        subscriber the database has not seen)."""
        if name in self.subscribers:
            raise ValueError(f"feed subscriber {name!r} is already registered")
        self.subscribers[name] = handler

    def deliver(self) -> int:
        """Hand each subscriber what it has not handled yet; returns how many transitions were handed
        over. A subscriber that raises keeps its cursor (it gets the same transitions next time) and
        the others go on; the first error is raised after all had their turn."""
        handed, failure = 0, None
        for name, handler in self.subscribers.items():
            try:
                handed += self._deliver_to(name, handler)
            except Exception as exc:
                log.exception("feed subscriber %s failed; it gets the same transitions again", name)
                failure = failure or exc
        if failure is not None:
            raise failure
        return handed

    def _deliver_to(self, name: str, handler: Handler) -> int:
        handed = 0
        cursor = self.cursor(name)
        while True:
            batch = self.after(cursor, BATCH)
            if not batch:
                return handed
            handler(batch)
            cursor = batch[-1].id
            self._move(name, cursor)
            handed += len(batch)

    def cursor(self, name: str) -> int:
        with self.db.connect() as conn:
            value = conn.execute(select(feed_cursors.c.last_event_id).where(feed_cursors.c.subscriber == name)).scalar()
        return int(value or 0)

    def after(self, cursor: int, limit: int = BATCH) -> list[Transition]:
        query = (
            select(
                incident_events,
                incidents.c.key,
                incidents.c.severity,
                incidents.c.title,
                incidents.c.source,
                incidents.c.detail.label("summary"),
            )
            .join(incidents, incidents.c.id == incident_events.c.incident_id)
            .where(incident_events.c.id > cursor)
            .order_by(incident_events.c.id)
            .limit(limit)
        )
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Transition(
                **event_fields(r),
                key=r.key,
                severity=Severity(r.severity),
                title=r.title,
                source=r.source,
                summary=r.summary,
            )
            for r in rows
        ]

    def _move(self, name: str, cursor: int) -> None:
        now = self.clock.now()
        with self.db.begin() as conn:
            moved = conn.execute(
                update(feed_cursors)
                .where(feed_cursors.c.subscriber == name)
                .values(last_event_id=cursor, updated_at=now)
            ).rowcount
            if not moved:
                conn.execute(insert(feed_cursors).values(subscriber=name, last_event_id=cursor, updated_at=now))


class FeedDelivery:
    """The background part of `pitstop serve` that hands the feed to its subscribers, on a
    supervised thread: at once when the registry commits a change (`wake`), and every second
    regardless (another process's changes, a subscriber that failed)."""

    name = "incident-feed"

    def __init__(
        self,
        feed: IncidentFeed,
        supervisor: Supervisor,
        every_s: float = 1.0,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.feed = feed
        self.supervisor = supervisor
        self.every_s = every_s
        # Several processes may run the feed's part (a standby scheduler): only the leading one hands
        # transitions out, so that no alert goes twice.
        self.leading = leading
        self._thread: SupervisedThread | None = None

    def start(self) -> None:
        self._thread = self.supervisor.thread(self.name, self._step, every_s=self.every_s)
        self._thread.start()

    def _step(self) -> None:
        if self.leading():
            self.feed.deliver()

    def wake(self) -> None:
        if self._thread is not None:
            self._thread.wake()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
