"""Webhook notifier: generic JSON, a Slack-compatible body, a PagerDuty Events v2 event or an
Opsgenie create-alert body, optionally signed with HMAC-SHA256.

The signature header is `X-Pitstop-Signature: sha256=<hex of HMAC(secret, body)>`. The URL is a
secret (Slack URLs carry their token): errors name the host only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from pitstop.alerts.base import Alert, Delivery
from pitstop.config.health import WebhookChannel
from pitstop.core.types import Severity

SIGNATURE_HEADER = "X-Pitstop-Signature"
PAGERDUTY_SEVERITY = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "critical"}
OPSGENIE_PRIORITY = {Severity.INFO: "P5", Severity.WARNING: "P3", Severity.CRITICAL: "P2", Severity.EMERGENCY: "P1"}


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    def __init__(self, name: str, cfg: WebhookChannel, *, transport: httpx.BaseTransport | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self.transport = transport

    def body(self, alert: Alert) -> bytes:
        if self.cfg.format == "slack":
            return json.dumps({"text": alert.text}).encode()
        if self.cfg.format == "pagerduty":
            key = self.cfg.routing_key.get_secret_value() if self.cfg.routing_key else ""
            return json.dumps(pagerduty_event(alert, key)).encode()
        if self.cfg.format == "opsgenie":
            return json.dumps(opsgenie_alert(alert)).encode()
        return json.dumps(alert.as_dict()).encode()

    def send(self, alert: Alert) -> Delivery:
        url = self.cfg.url.get_secret_value()
        body = self.body(alert)
        headers = {"Content-Type": "application/json", "User-Agent": "pitstop"}
        if self.cfg.hmac_secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.cfg.hmac_secret.get_secret_value(), body)
        host = urlsplit(url).hostname or "?"
        try:
            with httpx.Client(timeout=self.cfg.timeout_s, transport=self.transport) as client:
                response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Delivery(self.name, False, f"webhook {host}: {type(exc).__name__}")
        if response.status_code >= 300:
            return Delivery(self.name, False, f"webhook {host} answered {response.status_code}")
        return Delivery(self.name, True)


def dedup_key(alert: Alert) -> str:
    """One incident is one alert upstream: its key; a group of several, the group's labels."""
    if len(alert.items) == 1:
        return alert.items[0].key
    return "pitstop:" + ",".join(f"{k}={v}" for k, v in sorted(alert.group.items()))


def pagerduty_event(alert: Alert, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events v2 event: `trigger`, or `resolve` for a resolution, deduplicated by key."""
    first = alert.items[0]
    action = "resolve" if alert.event == "resolved" else "trigger"
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key(alert)}
    if action == "trigger":
        event["payload"] = {
            "summary": alert.text[:1024],
            "source": first.labels.get("site") or "pitstop",
            "severity": PAGERDUTY_SEVERITY.get(alert.severity, "critical"),
            "timestamp": first.at.isoformat(),
            "component": first.labels.get("target", first.key),
            "group": first.labels.get("site", ""),
            "class": first.labels.get("issue", first.key.partition(":")[0]),
            "custom_details": alert.as_dict(),
        }
    return event


def opsgenie_alert(alert: Alert) -> dict[str, Any]:
    """An Opsgenie create-alert body (message, alias, description, priority, details, tags)."""
    first = alert.items[0]
    resolved = alert.event == "resolved"
    return {
        "message": (("[RESOLVED] " if resolved else "") + alert.title)[:130],
        "alias": dedup_key(alert)[:512],
        "description": alert.text[:15000],
        "priority": "P5" if resolved else OPSGENIE_PRIORITY[alert.severity],
        "source": "pitstop",
        "entity": first.labels.get("target", first.key)[:512],
        "tags": sorted({alert.severity.value, alert.event, *(f"{k}:{v}" for k, v in alert.group.items() if v)})[:20],
        "details": {k: str(v)[:8000] for k, v in first.labels.items()},
    }
