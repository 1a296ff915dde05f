"""Notifiers against local servers started here, the router's retries, and the whole loop with
the real Mosquitto and PostgreSQL: a failing check opens one incident and sends one MQTT alert;
its recovery resolves it and sends one resolution."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import socket
import socketserver
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pitstop.alerts.base import Alert, AlertItem, Delivery
from pitstop.alerts.notifiers import EmailNotifier, WebhookNotifier
from pitstop.alerts.notifiers.webhook import SIGNATURE_HEADER
from pitstop.alerts.policy import Decision, Event
from pitstop.alerts.router import AlertRouter, Route
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.config.health import EmailChannel, WebhookChannel
from pitstop.core.types import Severity
from pitstop.incidents import IncidentState
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import MQTT_HOST, MQTT_PORT, port_open, unavailable

AT = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
ALERT = Alert(
    {"site": "north-plant"},
    (AlertItem("disk.low:/data", "firing", Severity.CRITICAL, "/data: 4% free", AT, {"site": "north-plant"}),),
)


# -- a tiny SMTP server ------------------------------------------------------------------------


class _Smtp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            cmd = line.decode().strip().upper()
            if cmd.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250-test\r\n250 8BITMIME\r\n")
            elif cmd == "DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    data += self.rfile.readline()
                self.server.messages.append(data.decode())  # type: ignore[attr-defined]
                self.wfile.write(b"250 queued\r\n")
            elif cmd == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.messages = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_email_notifier(smtp_server: socketserver.ThreadingTCPServer) -> None:
    port = smtp_server.server_address[1]
    notifier = EmailNotifier("mail", EmailChannel(port=port, to=["ops@plant.example"], sender="pitstop@plant.example"))
    assert notifier.send(ALERT) == Delivery("mail", True)
    (message,) = smtp_server.messages  # type: ignore[attr-defined]
    assert "Subject: [CRITICAL] firing: disk.low:/data" in message and "/data: 4% free" in message
    tls = EmailNotifier(
        "mail", EmailChannel(port=port, to=["x@y.z"], starttls=True, username="u", password="hunter2-secret")
    )
    failed = tls.send(ALERT)
    assert not failed.ok and "hunter2" not in (failed.error or "")


# -- a local HTTP server for webhooks ----------------------------------------------------------


class _Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        self.send_response(500 if self.path.endswith("/broken") else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_notifier_generic_signed_and_slack(hook_server: http.server.ThreadingHTTPServer) -> None:
    base = f"http://127.0.0.1:{hook_server.server_address[1]}"
    signed = WebhookNotifier("hook", WebhookChannel(url=f"{base}/generic", hmac_secret="s3cret"))
    assert signed.send(ALERT).ok
    slack = WebhookNotifier("slack", WebhookChannel(url=f"{base}/services/T000/B000/XXXX", format="slack"))
    assert slack.send(ALERT).ok
    (_, h1, b1), (_, h2, b2) = hook_server.received  # type: ignore[attr-defined]
    assert json.loads(b1)["alerts"][0]["key"] == "disk.low:/data"
    expected = "sha256=" + hmac.new(b"s3cret", b1, hashlib.sha256).hexdigest()
    assert h1[SIGNATURE_HEADER] == expected
    assert SIGNATURE_HEADER not in h2 and "disk.low:/data" in json.loads(b2)["text"]
    broken = WebhookNotifier("hook", WebhookChannel(url=f"{base}/services/T000/broken"))
    failed = broken.send(ALERT)
    assert not failed.ok and "500" in (failed.error or "") and "T000" not in (failed.error or "")


class _Flaky:
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def send(self, alert: Alert) -> Delivery:
        self.calls += 1
        return Delivery(self.name, self.calls > self.failures, None if self.calls > self.failures else "down")


def test_router_retries_with_backoff_and_records_every_delivery(pitstop: Pitstop) -> None:
    sleeps: list[float] = []
    flaky, dead = _Flaky(2), _Flaky(99)
    router = AlertRouter(
        pitstop.db,
        {"flaky": flaky, "dead": dead},
        [Route(("flaky", "dead"), group_by=("site",))],
        max_attempts=3,
        backoff_s=0.5,
        sleep=sleeps.append,
    )
    labels = {"site": "north-plant", "asset": "pump-1"}
    decisions = [
        Decision("cpu.high:a", Event.FIRING, Severity.WARNING, AT, labels, "cpu 80%"),
        Decision("mem.high:a", Event.FIRING, Severity.CRITICAL, AT, labels, "mem 97%"),
        Decision("disk.low:b", Event.FIRING, Severity.WARNING, AT, labels, "5%", suppressed_by="window:sunday"),
        Decision("info.x:c", Event.FIRING, Severity.INFO, AT, labels, "below the route's severity"),
    ]
    records = router.dispatch(decisions, AT)
    assert flaky.calls == 3 and dead.calls == 3  # one grouped message per channel, retried
    assert sleeps == [0.5, 1.0, 0.5, 1.0]
    outcomes = sorted((r.alert_key, r.channel, r.outcome, r.attempts) for r in records)
    assert outcomes == [
        ("cpu.high:a", "dead", "failed", 3),
        ("cpu.high:a", "flaky", "sent", 3),
        ("disk.low:b", "-", "suppressed", 0),
        ("mem.high:a", "dead", "failed", 3),
        ("mem.high:a", "flaky", "sent", 3),
    ]
    assert len(router.recent()) == 5


# -- the whole loop ----------------------------------------------------------------------------


@pytest.mark.mqtt
def test_failing_check_opens_one_incident_and_sends_one_mqtt_alert(
    db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    if not port_open(MQTT_HOST, MQTT_PORT):
        unavailable("Mosquitto is not reachable at 127.0.0.1:1883")
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    prefix = f"pitstop-test-{uuid.uuid4().hex[:10]}"
    settings = Settings(
        data_dir=tmp_path,
        health={
            "default_checks": False,
            "checks": [{"check": "tcp", "target": f"127.0.0.1:{port}", "site": "north-plant", "scope": "site"}],
            "alerts": {
                "rule": {"min_interval_s": 0},
                "channels": {"mqtt": {"type": "mqtt", "topic": prefix + "/alerts/{severity}"}},
                "routes": [{"channels": ["mqtt"]}],
            },
        },
    )
    pitstop = build(settings, clock=clock, db=db)
    received: list[tuple[str, dict[str, Any]]] = []
    got = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-sub")
    ready = threading.Event()
    sub.on_subscribe = lambda c, u, mid, codes, props: ready.set()

    def on_message(c: Any, u: Any, msg: Any) -> None:
        received.append((msg.topic, json.loads(msg.payload)))
        got.set()

    sub.on_message = on_message
    sub.connect(MQTT_HOST, MQTT_PORT)
    sub.loop_start()
    try:
        sub.subscribe(f"{prefix}/#", qos=1)
        assert ready.wait(5)
        assert pitstop.health.run_round().results[0].status.value == "healthy"
        listener.close()  # the link goes down
        for _ in range(3):
            clock.advance(timedelta(minutes=1))
            pitstop.health.run_round()
        pitstop.feed.deliver()  # `serve` does it each second
        assert got.wait(5)
        (incident,) = pitstop.incidents.list()
        assert incident.key == f"link.down:127.0.0.1:{port}" and incident.state is IncidentState.OPEN
        assert incident.severity is Severity.CRITICAL
        got.clear()
        listener = socket.socket()
        listener.bind(("127.0.0.1", port))
        listener.listen()
        for _ in range(2):
            clock.advance(timedelta(minutes=1))
            pitstop.health.run_round()
        pitstop.feed.deliver()
        assert got.wait(5)
        clock.advance(timedelta(seconds=1))
        got.wait(0.5)  # anything extra would arrive now
    finally:
        sub.loop_stop()
        sub.disconnect()
        listener.close()
    assert [(topic.rsplit("/", 1)[1], body["event"]) for topic, body in received] == [
        ("critical", "firing"),
        ("critical", "resolved"),
    ]
    assert received[0][1]["alerts"][0]["key"] == incident.key
    assert pitstop.incidents.get(incident.key).state is IncidentState.RESOLVED
    assert [r.outcome for r in pitstop.alerts.router.recent()] == ["sent", "sent"]
    timeline = [e.action for e in pitstop.incidents.timeline(incident.id)]
    assert timeline == ["opened", "resolved"]


def test_a_window_holds_alerts_back_and_they_are_sent_when_it_ends(
    db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    """Inside the window the incident opens but the alert is logged as suppressed, not lost."""
    from pitstop.incidents.windows import recurring

    clock.set(datetime(2026, 1, 11, 2, 30, tzinfo=UTC))  # a Sunday, inside 02:00-04:00
    missing = tmp_path / "gone"
    settings = Settings(
        data_dir=tmp_path,
        health={
            "default_checks": False,
            "checks": [{"check": "disk", "target": str(missing), "asset": "vms-server", "site": "north-plant"}],
        },
    )
    pitstop = build(settings, clock=clock, db=db)
    pitstop.alerts.mutes.add_window(
        recurring("sunday", {"site": "north-plant"}, days="sun", start="02:00", end="04:00"), now=clock.now()
    )
    for _ in range(4):
        pitstop.scheduler.tick()
        clock.advance(timedelta(minutes=10))
    assert pitstop.incidents.active(f"disk.low:{missing}") is not None
    records = pitstop.alerts.router.recent()
    assert [(r.outcome, r.reason) for r in records] == [("suppressed", "window:sunday")]  # logged once
    clock.set(datetime(2026, 1, 11, 4, 1, tzinfo=UTC))
    pitstop.scheduler.tick()
    latest = pitstop.alerts.router.recent(1)[0]
    assert (latest.outcome, latest.channel, latest.event) == ("sent", "log", "firing")
    assert any(r.job == "health" and r.outcome == "ok" for r in pitstop.jobs.recent("health"))
