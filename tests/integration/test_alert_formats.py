"""Channels for paging (issue 17, item 3): an SMS gateway (generic HTTP) and PagerDuty Events v2 /
Opsgenie webhook bodies, each against a local HTTP server; a contact paged by SMS through the router."""

from __future__ import annotations

import http.server
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from pitstop import inventory
from pitstop.alerts.base import Alert, AlertItem
from pitstop.alerts.notifiers.sms import SmsNotifier
from pitstop.alerts.notifiers.webhook import WebhookNotifier
from pitstop.app import build
from pitstop.config import Settings
from pitstop.config.health import WebhookChannel
from pitstop.config.oncall import SmsGatewaySettings
from pitstop.core.types import Severity
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY
from tests.integration.test_health_alerts import hook_server  # noqa: F401  (fixture)

AT = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
LABELS = {"target": "pump-1", "site": "north-plant", "issue": "asset.anomaly", "asset": "pump-1"}


def alert(event: str = "firing", severity: Severity = Severity.EMERGENCY) -> Alert:
    item = AlertItem("asset.anomaly:pump-1", event, severity, "pump-1 vibrates " + "x" * 400, AT, LABELS)
    return Alert({"site": "north-plant"}, (item,))


def received(server: http.server.ThreadingHTTPServer) -> list[tuple[str, dict[str, str], dict[str, object]]]:
    return [(path, headers, json.loads(body)) for path, headers, body in server.received]  # type: ignore[attr-defined]


def test_sms_gateway_posts_the_number_and_a_cut_text(hook_server: http.server.ThreadingHTTPServer) -> None:  # noqa: F811
    base = f"http://127.0.0.1:{hook_server.server_address[1]}"
    gateway = SmsGatewaySettings(
        url=f"{base}/sms/ACCOUNT-TOKEN", token="gw-token", to_field="msisdn", text_field="message", max_chars=160
    )
    assert SmsNotifier("oncall:ana:sms", gateway, "+351910000001").send(alert()).ok
    ((path, headers, body),) = received(hook_server)
    assert path == "/sms/ACCOUNT-TOKEN" and headers["Authorization"] == "Bearer gw-token"
    assert body["msisdn"] == "+351910000001"
    text = str(body["message"])
    assert len(text) == 160 and text.startswith("[EMERGENCY] firing: asset.anomaly:pump-1") and text.endswith("…")
    linked = Alert(
        alert().group, (AlertItem("k.x:y", "escalated", Severity.CRITICAL, "z" * 500 + " https://p/ack/T", AT),)
    )
    cut = SmsNotifier("s", gateway, "+351910000001").text(linked)
    assert len(cut) == 160 and cut.endswith("zz… https://p/ack/T")
    broken = SmsGatewaySettings(url=f"{base}/sms/ACCOUNT-TOKEN/broken")
    failed = SmsNotifier("oncall:ana:sms", broken, "+351910000001").send(alert())
    assert not failed.ok and "500" in (failed.error or "") and "ACCOUNT-TOKEN" not in (failed.error or "")
    dead = SmsNotifier("oncall:ana:sms", SmsGatewaySettings(url="http://127.0.0.1:9/sms", timeout_s=2), "+3519")
    unreachable = dead.send(alert())
    assert not unreachable.ok and unreachable.error == "SMS gateway 127.0.0.1: ConnectError"


def test_pagerduty_events_v2_trigger_and_resolve(hook_server: http.server.ThreadingHTTPServer) -> None:  # noqa: F811
    url = f"http://127.0.0.1:{hook_server.server_address[1]}/v2/enqueue"
    notifier = WebhookNotifier("pd", WebhookChannel(url=url, format="pagerduty", routing_key="R0UTINGKEY"))
    assert notifier.send(alert()).ok
    assert notifier.send(alert("resolved")).ok
    (_, _, trigger), (_, _, resolve) = received(hook_server)
    assert trigger["routing_key"] == "R0UTINGKEY" and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "asset.anomaly:pump-1"
    payload = trigger["payload"]
    assert isinstance(payload, dict)
    assert payload["severity"] == "critical" and payload["source"] == "north-plant"
    assert payload["component"] == "pump-1" and payload["class"] == "asset.anomaly"
    assert len(payload["summary"]) <= 1024 and payload["timestamp"] == AT.isoformat()
    assert resolve == {"routing_key": "R0UTINGKEY", "event_action": "resolve", "dedup_key": "asset.anomaly:pump-1"}
    with pytest.raises(ValidationError, match="needs routing_key"):
        WebhookChannel(url=url, format="pagerduty")


def test_opsgenie_alert_body(hook_server: http.server.ThreadingHTTPServer) -> None:  # noqa: F811
    url = f"http://127.0.0.1:{hook_server.server_address[1]}/v2/alerts"
    notifier = WebhookNotifier("og", WebhookChannel(url=url, format="opsgenie"))
    assert notifier.send(alert()).ok
    assert notifier.send(alert("resolved", Severity.WARNING)).ok
    (_, _, fired), (_, _, resolved) = received(hook_server)
    assert fired["priority"] == "P1" and fired["alias"] == "asset.anomaly:pump-1" and fired["source"] == "pitstop"
    assert str(fired["message"]).startswith("[EMERGENCY] firing") and len(str(fired["message"])) <= 130
    assert fired["entity"] == "pump-1" and fired["details"] == LABELS
    assert "site:north-plant" in fired["tags"]  # type: ignore[operator]
    assert resolved["priority"] == "P5" and str(resolved["message"]).startswith("[RESOLVED]")


def test_a_contact_is_paged_by_sms_through_the_router(
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    hook_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    base = f"http://127.0.0.1:{hook_server.server_address[1]}"
    settings = Settings(
        data_dir=tmp_path,
        health={"default_checks": False, "alerts": {"backoff_s": 0}},
        oncall={
            "contacts": {
                "ana": {"name": "Ana", "phone": "+351910000001"},
                "ben": {
                    "name": "Ben",
                    "webhook": f"{base}/pd",
                    "webhook_format": "pagerduty",
                    "routing_key": "BENKEY",
                },
            },
            "sms": {"url": f"{base}/sms"},
            "schedules": {"day": {"rotation": ["ana", "ben"], "start": "2026-01-05"}},
            "policies": {
                "all": {
                    "schedule": "day",
                    "steps": [{"notify": "primary"}, {"notify": "secondary", "after_minutes": 5}],
                }
            },
            "link_secret": "a-test-secret-of-enough-length",
        },
    )
    pitstop = build(settings, clock=clock, db=db)
    inventory.apply(db, inventory.read_file(DEMO_INVENTORY), actor="test", now=clock.now())
    pitstop.incidents.open_or_update(
        "asset.anomaly:pump-1", severity=Severity.CRITICAL, title="pump-1 vibrates", source="monitoring"
    )
    pitstop.feed.deliver()
    clock.advance(timedelta(minutes=5))
    pitstop.oncall.scheduled(clock.now())
    (sms_path, _, sms), (pd_path, _, pd) = received(hook_server)
    assert sms_path == "/sms" and sms["to"] == "+351910000001" and "/ack/" in str(sms["text"])
    assert pd_path == "/pd" and pd["routing_key"] == "BENKEY" and pd["event_action"] == "trigger"
    records = {r.channel: r.outcome for r in pitstop.alerts.router.recent() if r.event == "escalated"}
    assert records == {"oncall:ana:sms": "sent", "oncall:ben:webhook": "sent"}
