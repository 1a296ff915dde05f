"""Notifiers: each sends one alert once; built from `[health.alerts.channels]`.

A package adds a notifier with an entry point in `pitstop.notifiers`: a class with a class
attribute `kind` (the entry point's name) built as ``cls(channel_name, params)``, params being the
channel's `params` and its `secrets` in the clear; a channel uses it with
``type = "plugin", notifier = "<kind>"``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pitstop.alerts.base import Notifier
from pitstop.alerts.notifiers.email import EmailNotifier
from pitstop.alerts.notifiers.log import LogNotifier
from pitstop.alerts.notifiers.mqtt import MqttNotifier
from pitstop.alerts.notifiers.webhook import WebhookNotifier
from pitstop.config.health import Channel, EmailChannel, LogChannel, MqttChannel, PluginChannel, WebhookChannel
from pitstop.core.registry import Registry, UnknownComponentError
from pitstop.errors import ConfigError

plugins: Registry[Notifier] = Registry("notifier", "pitstop.notifiers", key="kind")


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
        elif isinstance(cfg, PluginChannel):
            try:
                cls = plugins.get(cfg.notifier)
            except UnknownComponentError as exc:
                raise ConfigError(f"health.alerts.channels.{name}: {exc}") from None
            params = {**cfg.params, **{k: v.get_secret_value() for k, v in cfg.secrets.items()}}
            out[name] = cls(name, params)  # type: ignore[call-arg]
    return out


__all__ = ["EmailNotifier", "LogNotifier", "MqttNotifier", "WebhookNotifier", "build_notifiers", "plugins"]
