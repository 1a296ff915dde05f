"""Notifications for incidents, from the incident feed: every incident reaches a person.

Incidents opened by checks are notified by the health monitor's alert policy (for, N-of-M,
hysteresis, flapping, repeats), which sees each check round. Every other incident (an equipment
anomaly from stream scoring, a low remaining-life estimate, model drift or accuracy, a failed
backup or drill, a declared emergency, a failing background thread) is a finding already judged by
its producer: its opening and each rise in severity go out as `firing`, its resolution as
`resolved`, through the same silences, maintenance windows, routes and router (retries and a
delivery record per channel) as the checks' alerts. A transition handed over again after a crash
is not sent twice (the router records the transition it sent).
"""

from __future__ import annotations

from collections.abc import Sequence

from pitstop.alerts.router import AlertRouter
from pitstop.core.clock import Clock
from pitstop.incidents.feed import Transition
from pitstop.incidents.models import parse_key
from pitstop.incidents.policy import Decision, Event
from pitstop.incidents.windows import MuteStore
from pitstop.storage.repos.assets import AssetRepo

SUBSCRIBER = "alerts"
CHECK_SOURCE = "check:"  # incidents the health policy notifies itself


class IncidentAlerts:
    """The alert service's subscription to the incident feed."""

    def __init__(self, router: AlertRouter, mutes: MuteStore, assets: AssetRepo, clock: Clock) -> None:
        self.router = router
        self.mutes = mutes
        self.assets = assets
        self.clock = clock

    def __call__(self, transitions: Sequence[Transition]) -> None:
        wanted = [(t, event) for t in transitions if (event := _event(t)) is not None]
        if not wanted:
            return
        done = self.router.sent_for([t.id for t, _ in wanted])
        now = self.clock.now()
        mutes = self.mutes.mutes(now)
        for t, event in wanted:
            if t.id in done:
                continue
            labels = self.labels(t)
            decision = Decision(
                key=t.key,
                event=event,
                severity=t.severity,
                at=t.at,
                labels=labels,
                summary=t.title,
                suppressed_by=mutes.reason(labels, now) if event is Event.FIRING else None,
                transition_id=t.id,
            )
            # one transition at a time: two steps of one incident in a batch are two messages
            self.router.dispatch([decision], now)

    def labels(self, t: Transition) -> dict[str, str]:
        return incident_labels(self.assets, t)


def incident_labels(assets: AssetRepo, t: Transition) -> dict[str, str]:
    """What routes, silences, windows and on-call policies match on: the key's parts, and the
    asset's site and type when the target is an asset or one of its sensors (``<asset>/<sensor>``)."""
    area, condition, target = parse_key(t.key)
    labels = {"key": t.key, "area": area, "issue": f"{area}.{condition}", "target": target, "source": t.source}
    asset = assets.get_asset(target)
    if asset is None and "/" in target:
        asset = assets.get_asset(target.split("/", 1)[0])
    if asset is not None:
        labels.update(asset=asset.name, site=asset.site, type=asset.type, scope="asset")
    else:
        labels["scope"] = "installation"
    return labels


def _event(t: Transition) -> Event | None:
    if t.source.startswith(CHECK_SOURCE):
        return None
    if t.action == "opened":
        return Event.FIRING
    if t.action == "resolved":
        return Event.RESOLVED
    if t.action == "updated" and "severity" in t.detail:  # escalated (or eased) by its producer
        return Event.FIRING
    return None
