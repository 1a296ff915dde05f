"""On-call escalation (issue 17, item 3): a critical left unacknowledged pages the primary, then the
secondary after the policy's delay, then the team channel; an acknowledgement stops it; a restart
neither pages again nor forgets; a declared emergency pages at once. Every page goes out through
the alert router (retries, a delivery record per channel), tested against a local HTTP server."""

from __future__ import annotations

import http.server
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Severity
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY
from tests.integration.test_health_alerts import hook_server  # noqa: F401  (fixture)

KEY = "asset.anomaly:pump-1"


def oncall_settings(base: str, **policy: Any) -> dict[str, Any]:
    return {
        "contacts": {
            "ana": {"name": "Ana Silva", "webhook": f"{base}/ana"},
            "ben": {"name": "Ben Okafor", "webhook": f"{base}/ben"},
        },
        "schedules": {
            "maintenance": {"rotation": ["ana", "ben"], "start": "2026-01-05", "timezone": "Europe/Lisbon"}
        },
        "policies": {
            "plant": {
                "schedule": "maintenance",
                "match": {"site": "north-plant"},
                "steps": [
                    {"notify": "primary"},
                    {"notify": "secondary", "after_minutes": 15},
                    {"notify": "channel:team", "after_minutes": 10},
                ],
                **policy,
            }
        },
        "public_url": "https://pitstop.plant.example",
        "link_secret": "a-test-secret-of-enough-length",
    }


def plant(db: Database, clock: FrozenClock, tmp_path: Path, base: str, **policy: Any) -> Pitstop:
    settings = Settings(
        data_dir=tmp_path,
        health={
            "default_checks": False,
            "alerts": {
                "channels": {"team": {"type": "webhook", "url": f"{base}/team"}},
                "routes": [{"channels": ["team"], "min_severity": "emergency"}],
            },
        },
        oncall=oncall_settings(base, **policy),
    )
    pitstop = build(settings, clock=clock, db=db)
    inventory.apply(db, inventory.read_file(DEMO_INVENTORY), actor="test", now=clock.now())
    return pitstop


def pages(server: http.server.ThreadingHTTPServer) -> list[tuple[str, dict[str, Any]]]:
    """(who, the alert item) of every escalation message received, in order."""
    out = []
    for path, _, body in server.received:  # type: ignore[attr-defined]
        item = json.loads(body)["alerts"][0]
        if item["event"] == "escalated":
            out.append((path.rsplit("/", 1)[-1], item))
    return out


def base_url(server: http.server.ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_a_critical_left_unacknowledged_escalates_to_the_secondary_then_the_team(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    pitstop = plant(db, clock, tmp_path, base_url(hook_server))
    pitstop.incidents.open_or_update(KEY, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring")
    pitstop.feed.deliver()
    (first,) = pages(hook_server)
    assert first[0] == "ana"  # the primary of the week starting Monday 2026-01-05
    assert "step 1/3" in first[1]["summary"] and "https://pitstop.plant.example/ack/" in first[1]["summary"]
    clock.advance(timedelta(minutes=14, seconds=59))
    pitstop.oncall.scheduled(clock.now())
    assert len(pages(hook_server)) == 1  # not yet
    clock.advance(timedelta(seconds=1))
    pitstop.oncall.scheduled(clock.now())
    assert [who for who, _ in pages(hook_server)] == ["ana", "ben"]
    clock.advance(timedelta(minutes=10))
    pitstop.oncall.scheduled(clock.now())
    assert [who for who, _ in pages(hook_server)] == ["ana", "ben", "team"]
    clock.advance(timedelta(hours=2))
    pitstop.oncall.scheduled(clock.now())
    assert len(pages(hook_server)) == 3  # no repeat configured
    (esc,) = pitstop.oncall.list(active=False)
    assert (esc.state, esc.fired, esc.next_at) == ("exhausted", 3, None)
    channels = [r.channel for r in pitstop.health.router.recent() if r.event == "escalated"]
    assert sorted(channels) == ["oncall:ana:webhook", "oncall:ben:webhook", "team"]


def test_an_acknowledgement_stops_the_escalation_even_before_the_feed_hands_it_over(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    pitstop = plant(db, clock, tmp_path, base_url(hook_server))
    pitstop.incidents.open_or_update(KEY, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring")
    pitstop.feed.deliver()
    clock.advance(timedelta(minutes=5))
    pitstop.incidents.acknowledge(KEY, actor="ana", note="on my way")
    clock.advance(timedelta(minutes=30))
    pitstop.oncall.scheduled(clock.now())  # the job reads the incident: acknowledged
    assert [who for who, _ in pages(hook_server)] == ["ana"]
    pitstop.feed.deliver()
    (esc,) = pitstop.oncall.list(active=False)
    assert (esc.state, esc.next_at) == ("acknowledged", None)


def test_a_restart_neither_pages_again_nor_forgets_the_next_step(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    base = base_url(hook_server)
    first = plant(db, clock, tmp_path, base)
    first.incidents.open_or_update(KEY, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring")
    first.feed.deliver()
    del first
    clock.advance(timedelta(minutes=3))
    restarted = plant(db, clock, tmp_path, base)
    restarted.feed.deliver()
    restarted.oncall.scheduled(clock.now())
    assert [who for who, _ in pages(hook_server)] == ["ana"]
    clock.advance(timedelta(minutes=12))
    restarted.oncall.scheduled(clock.now())
    assert [who for who, _ in pages(hook_server)] == ["ana", "ben"]


def test_policies_cover_only_what_they_match_and_critical_repeats(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    pitstop = plant(db, clock, tmp_path, base_url(hook_server), repeat=1, repeat_after_minutes=30)
    incidents = pitstop.incidents
    incidents.open_or_update(KEY, severity=Severity.WARNING, title="pump-1 vibrates", source="monitoring")
    incidents.open_or_update("disk.low:/data", severity=Severity.CRITICAL, title="disk", source="check:disk")
    pitstop.feed.deliver()
    assert pages(hook_server) == []  # a warning; and an installation incident outside north-plant
    incidents.open_or_update(KEY, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring")
    pitstop.feed.deliver()  # risen to critical: covered now
    for minutes in (15, 10, 30, 15, 10, 30):
        clock.advance(timedelta(minutes=minutes))
        pitstop.oncall.scheduled(clock.now())
    assert [who for who, _ in pages(hook_server)] == ["ana", "ben", "team", "ana", "ben", "team"]
    assert "round 2" in pages(hook_server)[3][1]["summary"]


def test_a_declared_emergency_pages_the_on_call_at_once(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """An emergency no policy matches (no site label) goes to the first policy, and its first step is
    due at once even where the policy waits."""
    pitstop = plant(db, clock, tmp_path, base_url(hook_server))
    policy = pitstop.settings.oncall.policies["plant"]
    assert policy.match  # the emergency's labels do not match it
    pitstop.maintenance.emergency.declare("emergency.declared:site", "fire alarm in hall A", actor="operator")
    pitstop.feed.deliver()
    assert [who for who, _ in pages(hook_server)] == ["ana"]
    (esc,) = pitstop.oncall.list()
    assert esc.policy == "plant" and esc.fired == 1
