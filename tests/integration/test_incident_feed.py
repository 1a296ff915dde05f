"""The incident feed (issue 17): every incident transition reaches the alert routes at least once and is
sent once, also across a restart between the incident's commit and its notification."""

from __future__ import annotations

import http.server
import json
import socket
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Severity
from pitstop.incidents.feed import FeedDelivery
from pitstop.incidents.windows import Silence
from pitstop.storage import Database
from pitstop.storage.schema import feed_cursors
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY
from tests.integration.test_health_alerts import hook_server  # noqa: F401  (fixture)


def plant(db: Database, clock: FrozenClock, tmp_path: Path, url: str) -> Pitstop:
    settings = Settings(
        data_dir=tmp_path,
        health={
            "default_checks": False,
            "alerts": {"channels": {"hook": {"type": "webhook", "url": url}}, "routes": [{"channels": ["hook"]}]},
        },
    )
    pitstop = build(settings, clock=clock, db=db)
    inventory.apply(db, inventory.read_file(DEMO_INVENTORY), actor="test", now=clock.now())
    return pitstop


def posted(server: http.server.ThreadingHTTPServer) -> list[dict[str, object]]:
    return [json.loads(body) for _, _, body in server.received]  # type: ignore[attr-defined]


def test_equipment_prognostics_and_emergency_incidents_each_reach_the_channel_once(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Issue 17: `asset.anomaly`, `asset.rul_low` and a declared emergency opened incidents that never
    reached a notifier. Each now sends one `firing` message to the routed channel, like a check's
    incident; a rise in severity one more, a resolution one `resolved`."""
    pitstop = plant(db, clock, tmp_path, f"http://127.0.0.1:{hook_server.server_address[1]}/hook")
    incidents = pitstop.incidents
    incidents.open_or_update(
        "asset.anomaly:ahu-2", severity=Severity.WARNING, title="ahu-2 abnormal", source="monitoring"
    )
    incidents.open_or_update(
        "asset.rul_low:pump-1", severity=Severity.CRITICAL, title="pump-1: 3 days left", source="prognostics"
    )
    pitstop.maintenance.emergency.declare("emergency.declared:site", "fire alarm in hall A", actor="operator")
    incidents.open_or_update("disk.low:/data", severity=Severity.WARNING, title="disk low", source="check:disk")
    assert pitstop.feed.deliver() >= 4
    messages = posted(hook_server)
    alerts = [a for m in messages for a in m["alerts"]]  # type: ignore[attr-defined]
    keys = [a["key"] for a in alerts]
    assert sorted(keys) == ["asset.anomaly:ahu-2", "asset.rul_low:pump-1", "disk.low:/data", "emergency.declared:site"]
    assert [a["event"] for a in alerts] == ["firing"] * 4
    anomaly = alerts[keys.index("asset.anomaly:ahu-2")]
    assert anomaly["labels"]["asset"] == "ahu-2" and anomaly["labels"]["site"] == "north-plant"
    assert len(messages) == 2  # grouped by site: the two units of north-plant, and the rest
    assert {m["severity"] for m in messages} == {"critical", "emergency"}
    assert pitstop.feed.deliver() == 0 and len(posted(hook_server)) == 2  # nothing twice
    incidents.open_or_update(
        "asset.anomaly:ahu-2", severity=Severity.CRITICAL, title="ahu-2 abnormal", source="monitoring"
    )
    incidents.resolve("asset.rul_low:pump-1", reason="bearing replaced", actor="tech")
    pitstop.feed.deliver()
    (later,) = posted(hook_server)[2:]
    assert [(a["key"], a["event"], a["severity"]) for a in later["alerts"]] == [  # type: ignore[attr-defined]
        ("asset.anomaly:ahu-2", "firing", "critical"),
        ("asset.rul_low:pump-1", "resolved", "critical"),
    ]
    records = pitstop.alerts.router.recent()
    assert all(r.outcome == "sent" and r.channel == "hook" and r.transition_id for r in records)


def test_a_restart_between_commit_and_notification_sends_it_once(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Issue 17: the process dies after the incident committed and before it was notified: after the
    restart it is notified, once; and when it died after sending but before its cursor moved, the
    transition comes again and is not sent again."""
    url = f"http://127.0.0.1:{hook_server.server_address[1]}/hook"
    first = plant(db, clock, tmp_path, url)
    first.incidents.open_or_update(
        "asset.anomaly:pump-1", severity=Severity.WARNING, title="pump-1 vibrates", source="monitoring"
    )
    del first  # killed before its feed ran
    restarted = plant(db, clock, tmp_path, url)
    restarted.feed.deliver()
    assert len(posted(hook_server)) == 1
    with db.begin() as conn:  # killed after sending, before the cursor moved
        conn.execute(update(feed_cursors).values(last_event_id=0))
    again = plant(db, clock, tmp_path, url)
    assert again.feed.deliver() >= 1
    assert len(posted(hook_server)) == 1


def test_the_serve_feed_thread_delivers_a_committed_incident_without_waiting_for_its_poll(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """The registry wakes the feed's thread after each committed change: with a poll of 60 s, the
    incident still reaches the channel within seconds (issue 17's commit-to-delivery aim)."""
    pitstop = plant(db, clock, tmp_path, f"http://127.0.0.1:{hook_server.server_address[1]}/hook")
    delivery = FeedDelivery(pitstop.feed, pitstop.supervisor, every_s=60)
    pitstop.incidents.listeners[:] = [delivery.wake]
    delivery.start()
    try:
        time.sleep(0.2)  # the thread's first round is done: it waits for its poll or a wake-up
        pitstop.incidents.open_or_update(
            "asset.anomaly:pump-1", severity=Severity.WARNING, title="pump-1 vibrates", source="monitoring"
        )
        deadline = time.monotonic() + 10
        while not posted(hook_server) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        delivery.stop()
    assert [m["alerts"][0]["key"] for m in posted(hook_server)] == ["asset.anomaly:pump-1"]  # type: ignore[index]


def test_a_silence_holds_an_equipment_alert_back_and_records_why(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    pitstop = plant(db, clock, tmp_path, f"http://127.0.0.1:{hook_server.server_address[1]}/hook")
    now = clock.now()
    silence = pitstop.alerts.mutes.add_silence(
        Silence({"asset": "ahu-1"}, "tech", "coil cleaning", now, now + timedelta(hours=2)), now=now
    )
    pitstop.incidents.open_or_update(
        "asset.anomaly:ahu-1", severity=Severity.WARNING, title="ahu-1", source="monitoring"
    )
    pitstop.feed.deliver()
    assert posted(hook_server) == []
    (record,) = pitstop.alerts.router.recent()
    assert (record.outcome, record.reason) == ("suppressed", f"silence:{silence.id}")


def test_an_equipment_incident_is_reminded_with_a_back_off_until_someone_acknowledges_it(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Issue 17: the alert policy's reminders now apply to every incident kind, not only to checks,
    and they back off (4 h, then as long as it has been told, at most daily) instead of every 4 h
    for weeks; an acknowledgement stops them, a rise in severity is still told."""
    pitstop = plant(db, clock, tmp_path, f"http://127.0.0.1:{hook_server.server_address[1]}/hook")
    key = "asset.anomaly:ahu-2"
    pitstop.incidents.open_or_update(key, severity=Severity.WARNING, title="ahu-2 abnormal", source="monitoring")
    start = clock.now()
    pitstop.feed.deliver()
    assert pitstop.scheduler.jobs["alerts"].every == timedelta(minutes=1)  # the reminder job
    for _ in range(60 * 4):  # 60 h, a reminder round every 15 minutes
        clock.advance(timedelta(minutes=15))
        pitstop.alerts.remind(clock.now())
    events = [(m["alerts"][0]["event"], m["alerts"][0]["key"]) for m in posted(hook_server)]  # type: ignore[index]
    assert events == [("firing", key)] + [("repeat", key)] * 5
    repeats = [r.at for r in reversed(pitstop.alerts.router.recent()) if r.event == "repeat"]
    assert [round((at - start).total_seconds() / 3600) for at in repeats] == [4, 8, 16, 32, 56]
    pitstop.incidents.acknowledge(key, actor="ana", note="on it")
    pitstop.feed.deliver()
    clock.advance(timedelta(days=3))
    pitstop.alerts.remind(clock.now())
    assert len(posted(hook_server)) == 6  # acknowledged: no more reminders
    pitstop.incidents.open_or_update(key, severity=Severity.CRITICAL, title="ahu-2 abnormal", source="monitoring")
    pitstop.feed.deliver()
    assert posted(hook_server)[-1]["severity"] == "critical" and len(posted(hook_server)) == 7


def test_an_open_site_incident_of_a_check_inhibits_the_equipment_incidents_of_its_site(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Issue 17: inhibition worked among checks only. A site's gateway down (a `scope = "site"` check)
    now mutes an anomaly of an asset of that site, whatever opened it; one of another site still goes
    out; once the gateway is back, the anomaly still open is sent."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{hook_server.server_address[1]}/hook"
    settings = Settings(
        data_dir=tmp_path,
        health={
            "default_checks": False,
            "checks": [{"check": "tcp", "target": f"127.0.0.1:{port}", "site": "north-plant", "scope": "site"}],
            "alerts": {"channels": {"hook": {"type": "webhook", "url": url}}, "routes": [{"channels": ["hook"]}]},
        },
    )
    pitstop = build(settings, clock=clock, db=db)
    inventory.apply(db, inventory.read_file(DEMO_INVENTORY), actor="test", now=clock.now())
    pitstop.health.run_round()
    gateway = f"link.down:127.0.0.1:{port}"
    assert pitstop.incidents.active(gateway) is not None
    pitstop.incidents.open_or_update(
        "asset.anomaly:ahu-2", severity=Severity.WARNING, title="ahu-2 abnormal", source="monitoring"
    )
    pitstop.feed.deliver()
    sent = [a["key"] for m in posted(hook_server) for a in m["alerts"]]  # type: ignore[attr-defined]
    assert sent == [gateway]
    held = [r for r in pitstop.alerts.router.recent() if r.outcome == "suppressed"]
    assert [(r.alert_key, r.reason) for r in held] == [("asset.anomaly:ahu-2", f"inhibited:{gateway}")]
    pitstop.incidents.resolve(gateway, reason="gateway back", actor="tech")
    pitstop.feed.deliver()
    clock.advance(timedelta(minutes=1))
    pitstop.alerts.remind(clock.now())
    sent = [(a["key"], a["event"]) for m in posted(hook_server) for a in m["alerts"]]  # type: ignore[attr-defined]
    assert sent[1:] == [(gateway, "resolved"), ("asset.anomaly:ahu-2", "firing")]


def test_every_incident_transition_is_one_maintenance_log_entry(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Issue 17, item 4: the maintenance log is a subscriber of the feed. An equipment incident's
    opening, escalation, acknowledgement and resolution are four entries, on the asset, with who
    did it; handed over again (a cursor reset after a crash), nothing is logged twice."""
    pitstop = plant(db, clock, tmp_path, f"http://127.0.0.1:{hook_server.server_address[1]}/hook")
    incidents = pitstop.incidents
    key = "asset.anomaly:pump-1"
    incidents.open_or_update(key, severity=Severity.WARNING, title="pump-1 vibrates", source="monitoring")
    incidents.open_or_update(key, severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring")
    incidents.acknowledge(key, actor="ana", note="on my way")
    incidents.resolve(key, reason="bearing replaced", actor="ana")
    pitstop.feed.deliver()
    with db.begin() as conn:
        conn.execute(update(feed_cursors).values(last_event_id=0))
    pitstop.feed.deliver()
    entries = [e for e in pitstop.maintenance.log.entries(kind="incident")]
    assert sorted(e.summary.split(": ")[0] for e in entries) == sorted(
        [f"{key} opened", f"{key} severity critical", f"{key} acknowledged", f"{key} resolved"]
    )
    assert {e.asset for e in entries} == {"pump-1"} and {e.site for e in entries} == {"north-plant"}
    resolved = next(e for e in entries if e.summary.startswith(f"{key} resolved"))
    assert (resolved.actor, resolved.actions, resolved.result) == ("ana", "bearing replaced", "resolved")


def test_backups_and_drills_are_logged_and_a_failed_drill_reaches_a_person(
    tmp_path: Path,
    clock: FrozenClock,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Issue 17: backup runs and drills wrote nothing to the maintenance log, and a failed drill
    reached nobody. Each run is now a log entry; a failed drill opens `backup.drill_failed:pitstop`,
    which is notified once and resolved by the next good drill."""
    from tests.integration.test_backup_sets import _flip_byte, _models

    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    models = _models(tmp_path)
    settings = Settings(
        data_dir=tmp_path,
        backup={"schedule": False, "sources": [{"name": "models", "kind": "models", "path": str(models)}]},
        health={
            "default_checks": False,
            "alerts": {
                "channels": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{hook_server.server_address[1]}/h"}},
                "routes": [{"channels": ["hook"]}],
            },
        },
    )
    pitstop = build(settings, clock=clock, db=db)
    good = pitstop.backup.run()
    assert pitstop.backup.drill(good.id).ok
    bad = pitstop.backup.run()
    entry = bad.manifest.source("models").file("pump-1.npy")
    assert entry is not None
    _flip_byte(bad.dir / entry.stored, 40)
    assert not pitstop.backup.drill(bad.id).ok
    pitstop.feed.deliver()
    (message,) = posted(hook_server)
    assert message["alerts"][0]["key"] == "backup.drill_failed:pitstop"  # type: ignore[index]
    assert pitstop.backup.drill(good.id).ok
    pitstop.feed.deliver()
    assert [m["alerts"][0]["event"] for m in posted(hook_server)] == ["firing", "resolved"]  # type: ignore[index]
    summaries = [e.summary for e in pitstop.maintenance.log.entries(kind="backup")]
    assert summaries == [
        f"backup backup ok (set {good.id})",
        f"backup drill ok (set {good.id})",
        f"backup backup ok (set {bad.id})",
        f"backup drill failed (set {bad.id})",
        f"backup drill ok (set {good.id})",
    ]


def test_an_incident_on_a_sensor_is_labelled_with_its_asset_and_site(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """A target `<asset>/<sensor>` (a drifted transmitter, a sensor past its limit) routes like its
    asset: routes, silences and windows that match on asset or site see the sensor's."""
    pitstop = plant(db, clock, tmp_path, f"http://127.0.0.1:{hook_server.server_address[1]}/hook")
    pitstop.incidents.open_or_update(
        "sensor.drift:ahu-2/UCWIT", severity=Severity.WARNING, title="UCWIT reads high", source="monitoring"
    )
    pitstop.feed.deliver()
    labels = posted(hook_server)[0]["alerts"][0]["labels"]  # type: ignore[index]
    assert labels["target"] == "ahu-2/UCWIT"
    assert labels["asset"] == "ahu-2" and labels["site"] == "north-plant" and labels["type"] == "hvac"


def test_a_failing_label_source_does_not_stop_the_alert(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """A check's labels come from the health settings; when those cannot be read (a broken profile,
    a bad target), the incident still goes out, with the labels its key and the inventory give."""
    pitstop = plant(db, clock, tmp_path, f"http://127.0.0.1:{hook_server.server_address[1]}/hook")

    def broken(source: str, key: str) -> dict[str, str]:
        raise RuntimeError("health.include: no profile 'gone'")

    pitstop.alerts.label_sources.insert(0, broken)
    pitstop.incidents.open_or_update("disk.low:/data", severity=Severity.CRITICAL, title="disk", source="check:disk")
    pitstop.feed.deliver()
    ((alert,),) = [m["alerts"] for m in posted(hook_server)]  # type: ignore[index]
    assert alert["key"] == "disk.low:/data" and alert["labels"]["issue"] == "disk.low"


def test_a_message_says_the_incident_in_words_not_its_json_record(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Stream scoring keeps its evidence as a JSON record in the incident's detail; the message
    carries the title instead. A check's detail is its summary in words, and is what it says."""
    pitstop = plant(db, clock, tmp_path, f"http://127.0.0.1:{hook_server.server_address[1]}/hook")
    title = "ahu-2 behaves abnormally; look at coil UCWOT first"
    record = json.dumps({"asset": "ahu-2", "flagged_rows": 321, "top_signals": [{"signal": "coil UCWOT"}]})
    pitstop.incidents.open_or_update(
        "asset.anomaly:ahu-2", severity=Severity.WARNING, title=title, detail=record, source="monitoring"
    )
    words = "disk 4 % free (disk_free_pct 4 <= 10)"
    pitstop.incidents.open_or_update(
        "disk.low:/data", severity=Severity.CRITICAL, title="disk.low on /data", detail=words, source="check:disk"
    )
    pitstop.feed.deliver()
    said = {a["key"]: a["summary"] for m in posted(hook_server) for a in m["alerts"]}  # type: ignore[attr-defined]
    assert said == {"asset.anomaly:ahu-2": title, "disk.low:/data": words}
