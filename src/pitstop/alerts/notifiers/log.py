"""The log notifier: one log line per alert (always available, the default channel)."""

from __future__ import annotations

import logging

from pitstop.alerts.base import Alert, Delivery

log = logging.getLogger("pitstop.alerts")


class LogNotifier:
    def __init__(self, name: str = "log") -> None:
        self.name = name

    def send(self, alert: Alert) -> Delivery:
        level = logging.INFO if alert.event == "resolved" else logging.WARNING
        log.log(level, "%s", alert.text)
        return Delivery(self.name, True)
