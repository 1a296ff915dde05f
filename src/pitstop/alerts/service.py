"""The alert service: every incident, whatever opened it, reaches the alert routes the same way.

Checks, stream scoring, prognostics, drift and model accuracy, backups and drills, declared
emergencies and remediation all open, raise and resolve incidents through the registry; every
transition comes here from the incident feed. One notification policy (`pitstop.alerts.policy`:
min interval, reminders with back-off, silences, maintenance windows, inhibition) decides what is
sent, and the router (routes by labels, grouping, retries, a delivery record per channel) is the
only way out. A reminder job, once a minute, repeats what is still open and unacknowledged and
sends what a mute or the min interval held back.

A transition handed over again after a crash is not sent twice (the router records the transition
each notification came from), and what people were told is rebuilt from those records on start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from pitstop.alerts.base import Notifier
from pitstop.alerts.notifiers import build_notifiers
from pitstop.alerts.policy import SITE_DOWN_MUTES_ASSETS, Decision, Event, NotificationPolicy, Subject, Told
from pitstop.alerts.router import AlertRouter, NotificationRecord, Route
from pitstop.config.models import Settings
from pitstop.core.clock import Clock
from pitstop.core.types import Severity
from pitstop.incidents.feed import Transition
from pitstop.incidents.models import Incident, IncidentState, parse_key
from pitstop.incidents.policy import AlertRule
from pitstop.incidents.registry import IncidentRegistry
from pitstop.incidents.windows import MuteStore
from pitstop.storage.engine import Database
from pitstop.storage.repos.assets import AssetRepo, AssetRow

log = logging.getLogger("pitstop.alerts")
SUBSCRIBER = "alerts"
REMIND_EVERY = timedelta(minutes=1)
TOLD_HISTORY = timedelta(days=7)  # delivery records read back on start
ACTIVE = (IncidentState.OPEN, IncidentState.ACKNOWLEDGED, IncidentState.SUPPRESSED)
MAX_OPEN = 100_000

# (source, key) -> labels a producer adds (a check's configured labels and scope)
LabelSource = Callable[[str, str], Mapping[str, str]]


class AlertService:
    def __init__(
        self,
        settings: Settings,
        *,
        db: Database,
        clock: Clock,
        assets: AssetRepo,
        incidents: IncidentRegistry,
        rule_for: Callable[[str], AlertRule],
        contacts: Mapping[str, Notifier] | None = None,
    ) -> None:
        """`contacts`: the on-call contacts' channels, beside the configured ones."""
        alerts = settings.health.alerts
        self.clock = clock
        self.assets = assets
        self.incidents = incidents
        self.mutes = MuteStore(db)
        self.router = AlertRouter(
            db,
            build_notifiers(alerts.channels) | dict(contacts or {}),
            [
                Route(tuple(r.channels), dict(r.match), Severity(r.min_severity), tuple(r.group_by))
                for r in alerts.routes
            ],
            max_attempts=alerts.max_attempts,
            backoff_s=alerts.backoff_s,
        )
        self.policy = NotificationPolicy(
            rule_for, inhibit=(SITE_DOWN_MUTES_ASSETS,) if alerts.inhibit_site_down else ()
        )
        self.label_sources: list[LabelSource] = []
        self._labels: dict[str, dict[str, str]] = {}  # by key, for incidents open or owed a resolution
        self._assets: dict[str, AssetRow | None] = {}  # by name, emptied by each reminder round
        self._loaded = False
        self._lock = threading.Lock()  # the feed's thread and the scheduler's share what was told

    # -- the feed subscription ------------------------------------------------------------------

    def __call__(self, transitions: Sequence[Transition]) -> None:
        wanted = [t for t in transitions if _notifies(t)]
        if wanted:
            with self._lock:
                self._notify(wanted)

    def _notify(self, wanted: Sequence[Transition]) -> None:
        self._load()
        done = self.router.sent_for([t.id for t in wanted])
        now = self.clock.now()
        mutes = self.mutes.mutes(now)
        subjects = [
            Subject(
                t.key,
                t.to_state is not IncidentState.RESOLVED,
                t.severity,
                self.labels(t.key, t.source),
                _words(t.title, t.summary),
                quiet=t.to_state is IncidentState.ACKNOWLEDGED,
                transition_id=t.id,
            )
            for t in wanted
            if t.id not in done and t.to_state is not IncidentState.SUPPRESSED  # suppressed: told nothing
        ]
        decisions = self.policy.decide(subjects, now, mutes, self._open_labels())
        for wave in _waves(decisions):
            self._send(wave, now)

    # -- the reminder job -----------------------------------------------------------------------

    def remind(self, now: datetime) -> list[NotificationRecord]:
        """Repeat open, unacknowledged incidents when due; send what a mute or the min interval
        held back (firing or resolved). The scheduled job, once a minute."""
        with self._lock:
            return self._remind(now)

    def _remind(self, now: datetime) -> list[NotificationRecord]:
        self._load()
        active = self._active()
        subjects = [
            Subject(
                i.key,
                True,
                i.severity,
                self.labels(i.key, i.source),
                _words(i.title, i.detail),
                quiet=i.state is IncidentState.ACKNOWLEDGED,
            )
            for i in active
            if i.state is not IncidentState.SUPPRESSED
        ]
        open_keys = {i.key for i in active}
        owed = [k for k, told in self.policy.told.items() if told.event == Event.FIRING and k not in open_keys]
        subjects += [Subject(k, False, self.policy.told[k].severity, self.labels(k, ""), "resolved") for k in owed]
        records = self._send(self.policy.decide(subjects, now, self.mutes.mutes(now), self._open_labels(active)), now)
        self._forget(open_keys, now)
        return records

    def scheduled(self, now: datetime) -> None:
        self.remind(now)

    # -- labels ---------------------------------------------------------------------------------

    def labels(self, key: str, source: str) -> dict[str, str]:
        """What routes, silences, windows and inhibition match on (cached per incident key)."""
        cached = self._labels.get(key)
        if cached is None or (source and cached.get("source") != source):
            cached = self._labels[key] = incident_labels(self._asset, key, source)
            for more in self.label_sources:
                try:
                    cached.update(more(source, key))
                except Exception:  # a broken health configuration must not stop every alert
                    log.warning("labels of %s from %r failed; sent without them", key, more, exc_info=True)
        return cached

    # -- internals ------------------------------------------------------------------------------

    def _send(self, decisions: Sequence[Decision], now: datetime) -> list[NotificationRecord]:
        return self.router.dispatch(decisions, now) if decisions else []

    def _asset(self, name: str) -> AssetRow | None:
        if name not in self._assets:
            self._assets[name] = self.assets.get_asset(name)
        return self._assets[name]

    def _active(self) -> list[Incident]:
        return self.incidents.list(state=ACTIVE, limit=MAX_OPEN)

    def _open_labels(self, active: Sequence[Incident] | None = None) -> list[tuple[str, Mapping[str, str]]]:
        """The active incidents and their labels, for inhibition."""
        if not self.policy.inhibit:
            return []
        return [(i.key, self.labels(i.key, i.source)) for i in (self._active() if active is None else active)]

    def _load(self) -> None:
        """What people were told, from the delivery records of the last week."""
        if self._loaded:
            return
        records = self.router.since(self.clock.now() - TOLD_HISTORY)
        self.policy.told = Told.replay(
            (r.alert_key, r.event, r.at, r.severity, r.outcome == "suppressed") for r in records
        )
        self._loaded = True

    def _forget(self, open_keys: set[str], now: datetime) -> None:
        """Drop resolutions told over a day ago, and labels of incidents neither open nor owed."""
        stale = [
            k
            for k, told in self.policy.told.items()
            if told.event == Event.RESOLVED and told.at is not None and now - told.at > timedelta(days=1)
        ]
        self.policy.forget(stale)
        self._assets.clear()  # an inventory change reaches the labels within a round
        for key in list(self._labels):
            if key not in open_keys and key not in self.policy.told:
                del self._labels[key]


def incident_labels(find_asset: Callable[[str], AssetRow | None], key: str, source: str) -> dict[str, str]:
    """The key's parts, the source, and the asset's site and type when the target is an asset or
    one of its sensors (``<asset>/<sensor>``)."""
    area, condition, target = parse_key(key)
    labels = {"key": key, "area": area, "issue": f"{area}.{condition}", "target": target, "source": source}
    asset = find_asset(target.split("/", 1)[0])  # asset names have no "/"
    if asset is not None:
        labels.update(asset=asset.name, site=asset.site, type=asset.type, scope="asset")
    else:
        labels["scope"] = "installation"
    return labels


def _words(title: str, detail: str | None) -> str:
    """What a message says: the incident's detail when it is text (a check's summary), else its
    title (a producer's detail may be a JSON record: evidence, scores)."""
    if detail and not detail.lstrip().startswith(("{", "[")):
        return detail
    return title


def _waves(decisions: Sequence[Decision]) -> list[list[Decision]]:
    """Each incident's first decision of the batch, then each one's second, ...: one dispatch per
    wave (grouped messages, one write of the records), and two steps of one incident are two
    messages, in order."""
    waves: list[list[Decision]] = []
    seen: dict[str, int] = {}
    for d in decisions:
        n = seen[d.key] = seen.get(d.key, -1) + 1
        if n == len(waves):
            waves.append([])
        waves[n].append(d)
    return waves


def _notifies(t: Transition) -> bool:
    if t.action in ("opened", "resolved"):
        return True
    return t.action == "updated" and "severity" in t.detail  # raised (or eased) by its producer
