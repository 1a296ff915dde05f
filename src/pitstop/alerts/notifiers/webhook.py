"""Webhook notifier: generic JSON or a Slack-compatible body, optionally signed with HMAC-SHA256.

The signature header is `X-Pitstop-Signature: sha256=<hex of HMAC(secret, body)>`. The URL is a
secret (Slack URLs carry their token): errors name the host only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

import httpx

from pitstop.alerts.base import Alert, Delivery
from pitstop.config.health import WebhookChannel

SIGNATURE_HEADER = "X-Pitstop-Signature"


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
