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
        "schedules": {"maintenance": {"rotation": ["ana", "ben"], "start": "2026-01-05", "timezone": "Europe/Lisbon"}},
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
    channels = [r.channel for r in pitstop.alerts.router.recent() if r.event == "escalated"]
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


def test_a_rise_to_emergency_pages_the_next_step_now_and_once(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """A critical under way that rises to emergency sends its next step at once; handed over again
    (the feed's cursor lost in a crash), neither the opening nor the rise pages anyone again."""
    from sqlalchemy import update

    from pitstop.storage.schema import feed_cursors

    pitstop = plant(db, clock, tmp_path, base_url(hook_server))
    pitstop.incidents.open_or_update(KEY, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring")
    pitstop.feed.deliver()
    clock.advance(timedelta(minutes=2))
    pitstop.incidents.open_or_update(KEY, severity=Severity.EMERGENCY, title="pump-1 seized", source="monitoring")
    pitstop.feed.deliver()
    assert [who for who, _ in pages(hook_server)] == ["ana", "ben"]  # not 15 minutes later
    with db.begin() as conn:
        conn.execute(update(feed_cursors).values(last_event_id=0))
    assert pitstop.feed.deliver() > 0
    assert [who for who, _ in pages(hook_server)] == ["ana", "ben"]
    clock.advance(timedelta(minutes=10))
    pitstop.oncall.scheduled(clock.now())
    assert [who for who, _ in pages(hook_server)] == ["ana", "ben", "team"]  # the policy's own pace again


def link_of(page: dict[str, Any]) -> str:
    """The acknowledge link's path (/ack/<token>) in a page's text."""
    url = str(page["summary"]).rsplit("Acknowledge: ", 1)[1]
    assert url.startswith("https://pitstop.plant.example/ack/")
    return url.removeprefix("https://pitstop.plant.example")


def test_the_signed_link_in_the_page_acknowledges_and_stops_the_escalation(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Issue 17, done when: a critical left unacknowledged escalates to the secondary after the
    configured delay; an acknowledgement through the signed link stops it."""
    from fastapi.testclient import TestClient

    from pitstop.api import create_app

    pitstop = plant(db, clock, tmp_path, base_url(hook_server))
    pitstop.incidents.open_or_update(KEY, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring")
    pitstop.feed.deliver()
    clock.advance(timedelta(minutes=15))
    pitstop.oncall.scheduled(clock.now())
    (_, ana), (_, ben) = pages(hook_server)
    client = TestClient(create_app(pitstop))
    shown = client.get(link_of(ben))
    assert shown.status_code == 200 and "pump-1 vibrates" in shown.text and "<form method='post'>" in shown.text
    assert pitstop.incidents.get(KEY).state.value == "open"  # looking at the link changes nothing
    done = client.post(link_of(ben))
    assert done.status_code == 200 and "Acknowledged" in done.text
    incident = pitstop.incidents.get(KEY)
    assert incident.state.value == "acknowledged"
    assert pitstop.incidents.timeline(incident.id)[-1].actor == "link:ben"
    again = client.post(link_of(ana))  # the primary's link, later
    assert again.status_code == 200 and "Already acknowledged" in again.text
    pitstop.feed.deliver()
    clock.advance(timedelta(hours=3))
    pitstop.oncall.scheduled(clock.now())
    assert [who for who, _ in pages(hook_server)] == ["ana", "ben"]  # the team was never paged
    (esc,) = pitstop.oncall.list(active=False)
    assert (esc.state, esc.stopped_by) == ("acknowledged", "link:ben")


def test_forged_expired_and_malformed_links_are_refused_and_change_nothing(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    from fastapi.testclient import TestClient

    from pitstop.api import create_app
    from pitstop.oncall.links import AckLinks

    pitstop = plant(db, clock, tmp_path, base_url(hook_server))
    pitstop.incidents.open_or_update(KEY, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring")
    other, _ = pitstop.incidents.open_or_update(
        "asset.anomaly:ahu-1", severity=Severity.CRITICAL, title="ahu-1", source="monitoring"
    )
    pitstop.feed.deliver()
    path = link_of(pages(hook_server)[0][1])
    incident_id, recipient, expires, signature = path.removeprefix("/ack/").split(".")
    elsewhere = AckLinks(b"another pitstop's secret, long enough", "https://x", timedelta(hours=1))
    refused = {
        f"/ack/{incident_id}.{recipient}.{expires}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}": 403,
        f"/ack/{other.id}.{recipient}.{expires}.{signature}": 403,  # someone else's incident, same signature
        f"/ack/{incident_id}.{recipient}.{int(expires) + 86400}.{signature}": 403,  # a longer life
        f"/ack/{incident_id}.ben.{expires}.{signature}": 403,  # another recipient
        "/ack/" + elsewhere.token(int(incident_id), "ana", clock.now()): 403,
        f"/ack/{incident_id}.{recipient}.{expires}": 400,
        "/ack/0.ana.1.x": 400,
        "/ack/%00%27%3B--": 400,
        "/ack/" + "9" * 199: 400,
        "/ack/" + "9" * 201: 422,
    }
    client = TestClient(create_app(pitstop))
    for bad, status in refused.items():
        for method in (client.get, client.post):
            response = method(bad)
            assert response.status_code == status, (bad, response.text)
    clock.advance(timedelta(hours=24))  # the link's life
    expired = client.post(path)
    assert expired.status_code == 410 and "expired" in expired.text
    assert {i.state.value for i in pitstop.incidents.list()} == {"open"}
    assert pitstop.oncall.get(int(incident_id)).state == "active"  # type: ignore[union-attr]
    pitstop.oncall.scheduled(clock.now())
    assert "ben" in [who for who, _ in pages(hook_server)]  # the escalation went on


def test_a_link_of_a_resolved_incident_acknowledges_nothing(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    from fastapi.testclient import TestClient

    from pitstop.api import create_app

    pitstop = plant(db, clock, tmp_path, base_url(hook_server))
    pitstop.incidents.open_or_update(KEY, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring")
    pitstop.feed.deliver()
    path = link_of(pages(hook_server)[0][1])
    pitstop.incidents.resolve(KEY, reason="bearing replaced", actor="ana")
    newer, _ = pitstop.incidents.open_or_update(
        KEY, severity=Severity.CRITICAL, title="pump-1 vibrates again", source="monitoring"
    )
    response = TestClient(create_app(pitstop)).post(path)
    assert response.status_code == 409 and "resolved" in response.text
    assert pitstop.incidents.get(newer.id).state.value == "open"  # the newer incident of the key is untouched


def test_oncall_api_viewers_read_operators_acknowledge(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    from fastapi.testclient import TestClient

    from pitstop.api import create_app
    from pitstop.core.types import Role
    from tests.conftest import auth

    pitstop = plant(db, clock, tmp_path, base_url(hook_server))
    viewer = auth(pitstop.keys.create("v", Role.VIEWER, clock.now())[1])
    operator = auth(pitstop.keys.create("o", Role.OPERATOR, clock.now())[1])
    incident, _ = pitstop.incidents.open_or_update(
        KEY, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring"
    )
    pitstop.feed.deliver()
    client = TestClient(create_app(pitstop))
    assert client.get("/api/oncall/now").status_code == 401
    now = client.get("/api/oncall/now", headers=viewer).json()
    assert now["on_call"][0]["primary"] == "ana" and now["on_call"][0]["secondary"] == "ben"
    assert [e["incident_key"] for e in now["escalations"]] == [KEY]
    shifts = client.get("/api/oncall/schedules/maintenance?days=15", headers=viewer).json()["shifts"]
    assert [s["contact"] for s in shifts] == ["ana", "ben", "ana"]  # from Monday 08:00 UTC, 2026-01-05
    ical = client.get("/api/oncall/schedules/maintenance/ical?days=15", headers=viewer)
    assert ical.headers["content-type"].startswith("text/calendar") and ical.text.count("BEGIN:VEVENT") == 3
    contacts = client.get("/api/oncall/contacts", headers=viewer)
    assert [c["name"] for c in contacts.json()] == ["Ana Silva", "Ben Okafor"] and "/ana" not in contacts.text
    for bad, status in {
        "/api/oncall/schedules/weekend": 404,
        "/api/oncall/schedules/maintenance?days=0": 422,
        "/api/oncall/schedules/maintenance?days=100000": 422,
        "/api/oncall/schedules/maintenance?start=yesterday": 422,
        "/api/oncall/schedules/maintenance?start=2026-01-05T08:00:00": 422,  # no offset
        "/api/oncall/now?at=0001-01-01T00:00:00Z": 422,
        "/api/oncall/escalations?state=some": 422,
    }.items():
        assert client.get(bad, headers=viewer).status_code == status, bad
    assert client.post(f"/api/incidents/{incident.id}/ack", json={}, headers=viewer).status_code == 403
    acked = client.post(f"/api/incidents/{incident.id}/ack", json={"note": "on it"}, headers=operator)
    assert acked.status_code == 200
    pitstop.feed.deliver()
    clock.advance(timedelta(hours=1))
    pitstop.oncall.scheduled(clock.now())
    assert [who for who, _ in pages(hook_server)] == ["ana"]
    stopped = client.get("/api/oncall/escalations?state=all", headers=viewer).json()
    assert stopped[0]["state"] == "acknowledged" and stopped[0]["stopped_by"].startswith("key:o:")


def test_times_at_the_end_of_the_calendar_are_refused_not_500(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    from fastapi.testclient import TestClient

    from pitstop.api import create_app
    from pitstop.core.types import Role
    from tests.conftest import auth

    pitstop = plant(db, clock, tmp_path, base_url(hook_server))
    viewer = auth(pitstop.keys.create("v", Role.VIEWER, clock.now())[1])
    client = TestClient(create_app(pitstop))
    for path in (
        "/api/oncall/now?at=9998-12-31T00:00:00Z",
        "/api/oncall/schedules/maintenance?start=9998-12-31T00:00:00Z&days=366",
        "/api/oncall/schedules/maintenance/ical?start=9998-12-31T00:00:00Z&days=366",
    ):
        response = client.get(path, headers=viewer)
        assert response.status_code == 400 and "1970 and 9000" in response.text, path
