"""MQTT notifier: the alert as JSON on `pitstop/alerts/<severity>` (topic configurable)."""

from __future__ import annotations

import json
import threading
import uuid

from pitstop.alerts.base import Alert, Delivery
from pitstop.config.health import MqttChannel


class MqttNotifier:
    def __init__(self, name: str, cfg: MqttChannel) -> None:
        self.name = name
        self.cfg = cfg

    def topic(self, alert: Alert) -> str:
        return self.cfg.topic.format(severity=alert.severity.value, event=alert.event)

    def send(self, alert: Alert) -> Delivery:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        cfg = self.cfg
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pitstop-alert-{uuid.uuid4().hex[:8]}")
        if cfg.username is not None:
            client.username_pw_set(
                cfg.username.get_secret_value(), cfg.password.get_secret_value() if cfg.password else None
            )
        connected = threading.Event()
        client.on_connect = lambda c, u, flags, code, props: connected.set() if not code.is_failure else None
        try:
            client.connect(cfg.host, cfg.port, keepalive=max(5, int(cfg.timeout_s)))
        except OSError as exc:
            return Delivery(self.name, False, f"broker {cfg.host}:{cfg.port} unreachable ({type(exc).__name__})")
        client.loop_start()
        try:
            if not connected.wait(cfg.timeout_s):
                return Delivery(self.name, False, f"broker {cfg.host}:{cfg.port} refused or did not answer")
            info = client.publish(self.topic(alert), json.dumps(alert.as_dict()), qos=cfg.qos, retain=cfg.retain)
            info.wait_for_publish(cfg.timeout_s)
            if not info.is_published():
                return Delivery(self.name, False, "the broker did not confirm the message")
            return Delivery(self.name, True)
        except (OSError, RuntimeError, ValueError) as exc:
            return Delivery(self.name, False, f"publish failed ({type(exc).__name__})")
        finally:
            client.disconnect()
            client.loop_stop()
