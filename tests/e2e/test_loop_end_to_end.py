"""The loop end to end (issue 17, "done when"), on PostgreSQL and the real Mosquitto.

A simulated plant (a pump whose bearing wears out, an air-handling unit's coil twin, the system's
own backups) runs under a FrozenClock through the producers a plant runs: stream scoring
(`asset.anomaly`), prognostics (`asset.rul_low`), the model drift check (`model.drift`), a restore
drill of a damaged backup set (`backup.drill_failed`) and a declared emergency. Each is notified
once on the channel(s) its labels route it to (checked in the router's delivery records, and for
the MQTT channel by a subscriber on the broker) and recorded once in the maintenance log. The
low-RUL critical is left unacknowledged: it pages the primary, then the secondary after the
policy's delay; the secondary acknowledges through the signed link in the page and nothing more
goes out. A process killed between an incident's commit and its notification (a child process
SIGKILLed at that point) loses nothing and, after a restart, sends nothing twice.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import update

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Severity
from pitstop.incidents import IncidentState
from pitstop.sim import Fault, FaultKind, Scenario, Simulator, assets_of_database
from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.storage.schema import feed_cursors
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import MQTT_HOST, MQTT_PORT, port_open, unavailable
from tests.conftest import _empty_postgres
from tests.integration.test_backup_sets import _flip_byte, _models
from tests.integration.test_health_alerts import hook_server  # noqa: F401  (fixture)
from tests.integration.test_models_lifecycle import coil_frame

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt]

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
TWIN = "hvac-twin"
COIL = ("UCWIT", "UCAIT", "UCWF", "UCAIH", "AMBT", "UCTSP", "UCAOT", "UCWOT", "UCAF")
INVENTORY = (
    """
[[sites]]
name = "plant"

[[assets]]
name = "pump-7"
site = "plant"
type = "pump"
criticality = 4
sensors = [
  { name = "vib_rms", unit = "mm/s", min = 0, max = 100, period_s = 300 },
  { name = "bearing_temp", unit = "degC", min = -20, max = 150, period_s = 300 },
]

[[assets]]
name = "ahu-1"
site = "plant"
type = "hvac"
criticality = 3
sensors = [
"""
    + "".join(f'  {{ name = "{s}", unit = "", min = -100, max = 20000, period_s = 1800 }},\n' for s in COIL)
    + "]\n"
)


# -- the services --------------------------------------------------------------------------------


@pytest.fixture
def pg(pg_url: str) -> Iterator[Database]:
    """The session's scratch PostgreSQL database, upgraded and emptied."""
    database = Database(pg_url)
    database.upgrade()
    _empty_postgres(database)
    yield database
    database.dispose()


class Subscriber:
    """A paho client on the real broker, subscribed to one test's alert topics."""

    def __init__(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.prefix = f"pitstop-e2e-{uuid.uuid4().hex[:10]}"
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.prefix}-sub")
        self.client.on_subscribe = lambda c, u, mid, codes, props: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(MQTT_HOST, MQTT_PORT)
        self.client.loop_start()
        self.client.subscribe(f"{self.prefix}/#", qos=1)
        assert subscribed.wait(5), "the broker did not confirm the subscription"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.received.append((msg.topic, json.loads(msg.payload)))

    def messages(self, expected: int, key: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """The messages (of alerts of `key`) once `expected` arrived, and a moment more for any extra."""
        deadline = time.monotonic() + 5
        while len(self._of(key)) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # a duplicate would arrive now
        return self._of(key)

    def _of(self, key: str | None) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(t, m) for t, m in self.received if key is None or m["alerts"][0]["key"] == key]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker() -> Iterator[Subscriber]:
    if not port_open(MQTT_HOST, MQTT_PORT):
        unavailable(f"Mosquitto is not reachable at {MQTT_HOST}:{MQTT_PORT}")
    subscriber = Subscriber()
    yield subscriber
    subscriber.close()


# -- the plant -------------------------------------------------------------------------------------


def plant_settings(tmp_path: Path, prefix: str, hook: str) -> dict[str, Any]:
    """Equipment alerts of the site go to its MQTT topics, the installation's to the ops webhook,
    emergencies to both; criticals of the site escalate on the maintenance rota."""
    return {
        "data_dir": str(tmp_path),
        "health": {
            "default_checks": False,
            "checks": [{"check": "drift", "target": TWIN}],
            "alerts": {
                "channels": {
                    "plant-mqtt": {"type": "mqtt", "topic": prefix + "/alerts/{severity}"},
                    "ops-hook": {"type": "webhook", "url": f"{hook}/ops"},
                },
                "routes": [
                    {"channels": ["plant-mqtt"], "match": {"site": "plant"}},
                    {"channels": ["ops-hook"], "match": {"scope": "installation"}},
                    {"channels": ["plant-mqtt", "ops-hook"], "min_severity": "emergency"},
                ],
            },
        },
        "prognostics": {"lead_time_hours": 300, "baseline_hours": 48, "min_history_hours": 24},
        "backup": {
            "schedule": False,
            "sources": [{"name": "models", "kind": "models", "path": str(_models(tmp_path))}],
        },
        "oncall": {
            "contacts": {
                "ana": {"name": "Ana Silva", "webhook": f"{hook}/ana"},
                "ben": {"name": "Ben Okafor", "webhook": f"{hook}/ben"},
            },
            "schedules": {"rota": {"rotation": ["ana", "ben"], "start": "2026-01-05", "timezone": "Europe/Lisbon"}},
            "policies": {
                "plant": {
                    "schedule": "rota",
                    "match": {"site": "plant"},
                    "min_severity": "critical",
                    "steps": [
                        {"notify": "primary"},
                        {"notify": "secondary", "after_minutes": 15},
                        {"notify": "channel:ops-hook", "after_minutes": 10},
                    ],
                }
            },
            "public_url": "https://pitstop.plant.example",
            "link_secret": "an-end-to-end-secret-of-enough-length",
        },
    }


def backfill(pitstop: Pitstop, simulator: Simulator, start: datetime, end: datetime) -> None:
    index = pitstop.assets.sensor_index()
    for batch in simulator.chunks(start, end):
        ids = np.array([index[key].id for key in batch.keys], dtype=np.int32)[batch.key]
        pitstop.readings.write(ReadingBatch.of(ids, batch.ts_us, batch.value))


def store_coil(pitstop: Pitstop, frame: pd.DataFrame) -> None:
    ids = {s.name: s.id for s in pitstop.assets.sensors("ahu-1")}
    ts = pd.DatetimeIndex(frame.index).as_unit("us").asi8
    for column in frame.columns:
        pitstop.readings.write(ReadingBatch.of(np.full(len(ts), ids[column]), ts, frame[column].to_numpy()))


def hook_posts(server: http.server.ThreadingHTTPServer, who: str) -> list[dict[str, Any]]:
    """The alert items the local webhook server got on /<who>, in order."""
    return [
        json.loads(body)["alerts"][0]
        for path, _, body in list(server.received)  # type: ignore[attr-defined]
        if path == f"/{who}"
    ]


def notifications(pitstop: Pitstop, key: str) -> list[tuple[str, str, str]]:
    """(channel, event, outcome) of every delivery record of `key` but escalation pages, oldest first."""
    records = reversed(pitstop.alerts.router.recent(limit=1000, key=key))
    return [(r.channel, r.event, r.outcome) for r in records if r.event != "escalated"]


def log_entries(pitstop: Pitstop, key: str) -> list[str]:
    """The maintenance-log entries that record the incidents of `key`: `<kind>: <summary>`."""
    ids = {i.id for i in pitstop.incidents.list(limit=1000) if i.key == key}
    refs = {f"incident:{i}" for i in ids}
    refs |= {f"incident-event:{e.id}" for i in ids for e in pitstop.incidents.timeline(i)}
    return [f"{e.kind}: {e.summary}" for e in pitstop.maintenance.log.entries(limit=10000) if e.ref in refs]


def opened_once(pitstop: Pitstop, broker: Subscriber, key: str, channels: set[str], severity: Severity) -> None:
    """`key` was opened once, notified once (`firing`) on each of `channels` and on no other, is in the
    MQTT stream once when it routes there, and in the maintenance log once."""
    (incident,) = [i for i in pitstop.incidents.list(limit=1000) if i.key == key]
    assert incident.severity is severity, incident
    sent = notifications(pitstop, key)
    assert sorted(sent) == sorted((c, "firing", "sent") for c in channels), sent
    over_mqtt = broker.messages(1 if "plant-mqtt" in channels else 0, key)
    if "plant-mqtt" in channels:
        ((topic, message),) = over_mqtt
        assert topic == f"{broker.prefix}/alerts/{severity.value}"
        assert message["alerts"][0]["event"] == "firing" and message["severity"] == severity.value
    else:
        assert over_mqtt == []
    kind = "emergency" if severity is Severity.EMERGENCY else "incident"
    assert log_entries(pitstop, key) == [f"{kind}: {key} opened: {incident.title}"]


# -- the tests -------------------------------------------------------------------------------------


def test_every_finding_reaches_its_channel_and_the_log_once_and_a_critical_escalates_until_acknowledged(
    pg: Database,
    tmp_path: Path,
    broker: Subscriber,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    from fastapi.testclient import TestClient

    from pitstop.api import create_app

    clock = FrozenClock(T0)
    hook = f"http://127.0.0.1:{hook_server.server_address[1]}"
    pitstop = build(Settings(**plant_settings(tmp_path, broker.prefix, hook)), clock=clock, db=pg)
    inventory.apply(pg, inventory.parse(INVENTORY, "plant.toml", "toml"), actor="test", now=T0)
    wear = Fault(FaultKind.BEARING_WEAR, "pump-7", T0 + timedelta(days=3), end=T0 + timedelta(days=17))
    assert wear.failure_time is not None
    pump = [a for a in assets_of_database(pitstop.assets) if a.name == "pump-7"]
    simulator = Simulator(pump, seed=11, scenario=Scenario((wear,)))

    # 1. Stream scoring and prognostics, every 12 hours as the scheduler would, each step's
    # transitions handed to the feed's subscribers (alerts, on-call, maintenance log).
    anomaly, rul = "asset.anomaly:pump-7", "asset.rul_low:pump-7"
    now = T0
    while pitstop.incidents.active(rul) is None:
        assert now < wear.failure_time, "the wearing bearing was never predicted"
        backfill(pitstop, simulator, now, now + timedelta(hours=12))
        now += timedelta(hours=12)
        clock.set(now)
        pitstop.scoring.run(now)
        pitstop.prognostics.run(now)
        pitstop.feed.deliver()
    assert wear.start < pitstop.incidents.get(anomaly).opened_at <= pitstop.incidents.get(rul).opened_at
    opened_once(pitstop, broker, anomaly, {"plant-mqtt"}, Severity.WARNING)
    opened_once(pitstop, broker, rul, {"plant-mqtt"}, Severity.CRITICAL)

    # 2. The low-RUL critical is left unacknowledged: the primary is paged at once, the secondary
    # 15 minutes later (not a second before), each through the router with a signed link.
    (on_call,) = pitstop.oncall.now()
    primary, secondary = on_call.primary, on_call.secondary
    assert secondary is not None and {primary, secondary} == {"ana", "ben"}
    (page,) = hook_posts(hook_server, primary)
    assert page["event"] == "escalated" and page["key"] == rul and "step 1/3" in page["summary"]
    assert hook_posts(hook_server, secondary) == []
    clock.advance(timedelta(minutes=14, seconds=59))
    pitstop.oncall.scheduled(clock.now())
    assert hook_posts(hook_server, secondary) == []
    clock.advance(timedelta(seconds=1))
    pitstop.oncall.scheduled(clock.now())
    (second,) = hook_posts(hook_server, secondary)
    assert "step 2/3" in second["summary"]
    pages = [r for r in pitstop.alerts.router.recent(key=rul) if r.event == "escalated"]
    assert sorted(r.channel for r in pages) == sorted(f"oncall:{who}:webhook" for who in (primary, secondary))
    assert all(r.outcome == "sent" for r in pages)

    # The secondary acknowledges through the link in the page: the team step never goes out.
    link = str(second["summary"]).rsplit("Acknowledge: ", 1)[1]
    assert link.startswith("https://pitstop.plant.example/ack/")
    client = TestClient(create_app(pitstop))
    assert client.post(link.removeprefix("https://pitstop.plant.example")).status_code == 200
    assert pitstop.incidents.get(rul).state is IncidentState.ACKNOWLEDGED
    pitstop.feed.deliver()
    for _ in range(4):
        clock.advance(timedelta(minutes=30))
        pitstop.oncall.scheduled(clock.now())
    assert [p["key"] for p in hook_posts(hook_server, "ops")] == []  # the team channel was never paged
    assert len(hook_posts(hook_server, primary)) == 1 and len(hook_posts(hook_server, secondary)) == 1
    (esc,) = pitstop.oncall.list(active=False)
    assert (esc.state, esc.stopped_by, esc.fired) == ("acknowledged", f"link:{secondary}", 2)
    title = pitstop.incidents.get(rul).title
    assert log_entries(pitstop, rul)[1:] == [  # each page is on the log, then the acknowledgement
        f"incident: {rul} escalated: {title}",
        f"incident: {rul} escalated: {title}",
        f"incident: {rul} acknowledged: {title}",
    ]
    assert len(notifications(pitstop, rul)) == 1  # an acknowledgement is not a second alert

    # 3. Model drift: a coil twin trained on winter readings, judged by the drift check on summer's.
    store_coil(pitstop, coil_frame("2026-01-05", 20, seed=3))
    clock.set(datetime(2026, 3, 25, tzinfo=UTC))
    pitstop.models.retrain(TWIN, pitstop.model_data.frame(TWIN), trigger="initial", params={"n_estimators": 30})
    (trained,) = pitstop.maintenance.log.entries(kind="model_training")  # the gates' decision, on the log
    assert trained.summary.startswith(f"model {TWIN}: v1 trained (initial), gates passed against champion none")
    store_coil(pitstop, coil_frame("2026-06-01", 20, seed=3))
    clock.set(datetime(2026, 6, 21, tzinfo=UTC))
    pitstop.health.run_round()
    pitstop.feed.deliver()
    drift = f"model.drift:{TWIN}"
    opened_once(pitstop, broker, drift, {"ops-hook"}, pitstop.incidents.get(drift).severity)
    assert pitstop.incidents.get(drift).severity in (Severity.WARNING, Severity.CRITICAL)

    # 4. A restore drill of a damaged backup set fails.
    backup = pitstop.backup.run()
    stored = backup.manifest.source("models").file("pump-1.npy")
    assert stored is not None
    _flip_byte(backup.dir / stored.stored, 40)
    assert not pitstop.backup.drill(backup.id).ok
    pitstop.feed.deliver()
    drill = "backup.drill_failed:pitstop"
    opened_once(pitstop, broker, drill, {"ops-hook"}, Severity.CRITICAL)
    runs = [e.summary for e in pitstop.maintenance.log.entries(kind="backup")]
    assert runs == [f"backup backup ok (set {backup.id})", f"backup drill failed (set {backup.id})"]

    # 5. A declared emergency: both channels, and the on-call paged at once.
    before = len(hook_posts(hook_server, primary)), len(hook_posts(hook_server, secondary))
    pitstop.maintenance.emergency.declare("emergency.declared:plant", "fire alarm in hall A", actor="shift-lead")
    pitstop.feed.deliver()
    emergency = "emergency.declared:plant"
    opened_once(pitstop, broker, emergency, {"plant-mqtt", "ops-hook"}, Severity.EMERGENCY)
    on_duty = pitstop.oncall.now(clock.now())[0].primary
    paged = [p for p in hook_posts(hook_server, on_duty) if p["key"] == emergency]
    assert len(paged) == 1 and paged[0]["event"] == "escalated"
    assert (len(hook_posts(hook_server, primary)), len(hook_posts(hook_server, secondary))) == (
        before[0] + (on_duty == primary),
        before[1] + (on_duty == secondary),
    )

    # Handed over again (a restart of the feed's subscribers from the first transition), nothing goes
    # out twice and nothing is logged twice.
    pitstop.feed.deliver()  # the page's own timeline event (escalated), written after the log's turn
    counts = {
        k: (len(notifications(pitstop, k)), len(log_entries(pitstop, k)))
        for k in (anomaly, rul, drift, drill, emergency)
    }
    total = len(broker.messages(0)), len(hook_server.received)  # type: ignore[attr-defined]
    with pg.begin() as conn:
        conn.execute(update(feed_cursors).values(last_event_id=0))
    assert pitstop.feed.deliver() > 0
    assert {k: (len(notifications(pitstop, k)), len(log_entries(pitstop, k))) for k in counts} == counts
    assert (len(broker.messages(0)), len(hook_server.received)) == total  # type: ignore[attr-defined]
    pitstop.close()


# -- a crash between an incident's commit and its notification -----------------------------------

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from pitstop.app import build
    from pitstop.config import Settings
    from pitstop.storage import Database
    from pitstop.testing.clock import FrozenClock
    from datetime import datetime

    settings, url, when, at = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    pitstop = build(Settings(**settings), clock=FrozenClock(datetime.fromisoformat(at)), db=Database(url))
    if when == "check-after-commit":
        # a check's incident: killed after the health round committed it, before the feed ran
        pitstop.health.run_round()
        os.kill(os.getpid(), signal.SIGKILL)
    pitstop.maintenance.emergency.declare("emergency.declared:plant", "fire alarm in hall A", actor="shift-lead")
    if when == "after-send":
        # killed once the alert went out and its delivery was recorded, before the feed's cursor moved
        pitstop.feed._move = lambda name, cursor: os.kill(os.getpid(), signal.SIGKILL)
        pitstop.feed.deliver()
    os.kill(os.getpid(), signal.SIGKILL)  # the incident is committed; the feed never ran
    """
)


def run_child(settings: dict[str, Any], url: str, when: str, at: datetime) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PITSTOP_")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(settings), url, when, at.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9, done.stderr[-3000:]


@pytest.mark.parametrize("when", ["after-commit", "after-send"])
def test_a_process_killed_between_commit_and_notification_notifies_once_after_restart(
    pg: Database,
    pg_url: str,
    tmp_path: Path,
    broker: Subscriber,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
    when: str,
) -> None:
    settings = plant_settings(tmp_path, broker.prefix, f"http://127.0.0.1:{hook_server.server_address[1]}")
    settings["oncall"] = {}  # only the routed alert channels
    key = "emergency.declared:plant"
    run_child(settings, pg_url, when, T0)
    clock = FrozenClock(T0 + timedelta(minutes=1))
    restarted = build(Settings(**settings), clock=clock, db=pg)
    (incident,) = restarted.incidents.list()
    assert incident.key == key and incident.state is IncidentState.OPEN  # committed before the kill
    before = notifications(restarted, key)
    if when == "after-commit":
        assert before == [] and broker.messages(0, key) == []  # died before any notification
    else:
        assert sorted(before) == [("ops-hook", "firing", "sent"), ("plant-mqtt", "firing", "sent")]
        assert len(broker.messages(1, key)) == 1
        assert log_entries(restarted, key) == []  # the log's subscriber never ran
    for _ in range(2):  # delivered after the restart, and once more: nothing twice
        restarted.feed.deliver()
        assert sorted(notifications(restarted, key)) == [
            ("ops-hook", "firing", "sent"),
            ("plant-mqtt", "firing", "sent"),
        ]
        ((_, message),) = broker.messages(1, key)
        assert message["alerts"][0]["event"] == "firing" and message["severity"] == "emergency"
        assert len(hook_posts(hook_server, "ops")) == 1
        (entry,) = log_entries(restarted, key)
        assert "fire alarm in hall A" in entry
    restarted.close()


def test_a_process_killed_between_a_checks_incident_and_its_notification_notifies_once_after_restart(
    pg: Database,
    pg_url: str,
    tmp_path: Path,
    broker: Subscriber,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Incidents of checks (a link down here; model drift above) reach people through the feed like
    every other: killed after the health round committed the incident, the restarted process's
    feed sends it, once, and its next rounds send nothing more."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = plant_settings(tmp_path, broker.prefix, f"http://127.0.0.1:{hook_server.server_address[1]}")
    settings["oncall"] = {}
    settings["health"]["checks"] = [{"check": "tcp", "target": f"127.0.0.1:{port}", "site": "plant", "scope": "site"}]
    key = f"link.down:127.0.0.1:{port}"
    run_child(settings, pg_url, "check-after-commit", T0)
    clock = FrozenClock(T0 + timedelta(minutes=1))
    restarted = build(Settings(**settings), clock=clock, db=pg)
    (incident,) = restarted.incidents.list()
    assert incident.key == key and incident.state is IncidentState.OPEN  # committed before the kill
    assert notifications(restarted, key) == [] and broker.messages(0, key) == []
    for _ in range(2):  # the feed after the restart sends it; the next rounds not again
        restarted.feed.deliver()
        restarted.health.run_round()
        restarted.feed.deliver()
        assert notifications(restarted, key) == [("plant-mqtt", "firing", "sent")]
        ((topic, message),) = broker.messages(1, key)
        assert topic == f"{broker.prefix}/alerts/critical" and message["alerts"][0]["event"] == "firing"
        assert log_entries(restarted, key) == [f"incident: {key} opened: {incident.title}"]
        clock.advance(timedelta(minutes=1))
    assert len(restarted.incidents.list()) == 1
    restarted.close()
