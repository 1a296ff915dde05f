"""Notifiers: each sends one alert once; built from `[health.alerts.channels]`."""

from __future__ import annotations

from collections.abc import Mapping

from pitstop.alerts.base import Notifier
from pitstop.alerts.notifiers.email import EmailNotifier
from pitstop.alerts.notifiers.log import LogNotifier
from pitstop.alerts.notifiers.mqtt import MqttNotifier
from pitstop.alerts.notifiers.webhook import WebhookNotifier
from pitstop.config.health import Channel, EmailChannel, LogChannel, MqttChannel, WebhookChannel


def build_notifiers(channels: Mapping[str, Channel]) -> dict[str, Notifier]:
    out: dict[str, Notifier] = {}
    for name, cfg in channels.items():
        if isinstance(cfg, LogChannel):
            out[name] = LogNotifier(name)
        elif isinstance(cfg, MqttChannel):
            out[name] = MqttNotifier(name, cfg)
        elif isinstance(cfg, EmailChannel):
            out[name] = EmailNotifier(name, cfg)
        elif isinstance(cfg, WebhookChannel):
            out[name] = WebhookNotifier(name, cfg)
    return out


__all__ = ["EmailNotifier", "LogNotifier", "MqttNotifier", "WebhookNotifier", "build_notifiers"]
