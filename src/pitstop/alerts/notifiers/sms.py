"""SMS through a generic HTTP gateway: one JSON POST per message, `{to_field: phone, text_field: text}`.

The text is the alert's text cut to the gateway's `max_chars`, keeping a link at its end. The URL and token are secrets:
errors name the gateway's host only.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx

from pitstop.alerts.base import Alert, Delivery
from pitstop.config.oncall import SmsGatewaySettings


class SmsNotifier:
    def __init__(
        self, name: str, gateway: SmsGatewaySettings, phone: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.name = name
        self.gateway = gateway
        self.phone = phone
        self.transport = transport

    def text(self, alert: Alert) -> str:
        """The alert's text within `max_chars`; a link that ends it (an acknowledge link) is kept whole."""
        text = alert.text
        limit = self.gateway.max_chars
        if len(text) <= limit:
            return text
        head, _, last = text.rpartition(" ")
        if last.startswith(("http://", "https://")) and len(last) <= limit // 2:
            return head[: limit - len(last) - 2] + "… " + last
        return text[: limit - 1] + "…"

    def body(self, alert: Alert) -> bytes:
        return json.dumps({self.gateway.to_field: self.phone, self.gateway.text_field: self.text(alert)}).encode()

    def send(self, alert: Alert) -> Delivery:
        url = self.gateway.url.get_secret_value()
        headers = {"Content-Type": "application/json", "User-Agent": "pitstop"}
        if self.gateway.token is not None:
            headers["Authorization"] = f"Bearer {self.gateway.token.get_secret_value()}"
        host = urlsplit(url).hostname or "?"
        try:
            with httpx.Client(timeout=self.gateway.timeout_s, transport=self.transport) as client:
                response = client.post(url, content=self.body(alert), headers=headers)
        except httpx.HTTPError as exc:
            return Delivery(self.name, False, f"SMS gateway {host}: {type(exc).__name__}")
        if response.status_code >= 300:
            return Delivery(self.name, False, f"SMS gateway {host} answered {response.status_code}")
        return Delivery(self.name, True)
