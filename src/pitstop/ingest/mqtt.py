"""MQTT subscriber: readings from `<prefix>/<site>/<asset>/<sensor>` topics, stored before they are acked.

Payloads on a sensor topic: `{"ts": ..., "value": ...}` or a JSON list of those. On the wide topic
(setting `mqtt.wide_topic`, default `{prefix}-wide/{site}/{asset}`): `{"ts": ..., "<sensor>": value, ...}`
or a list of those, for one asset. The site level is for the plant's topic tree; assets are
identified by name.

Delivery: QoS 1 on an MQTT 5 persistent session (fixed client id, clean start off, a session
expiry of a week), with manual acknowledgement: a message is acked only after the batch it is in
has been committed (or spooled to disk while the database is down). Messages published while
pitstop is stopped wait in the broker's session and arrive when it reconnects; a message that was
stored but not acked comes again and is counted as a duplicate. Reconnects back off from 1 to 30 s.
Brokers cap what they hold for an offline session (Mosquitto: `max_queued_messages`, default 1000
messages): size that for the longest outage you want to ride through.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pitstop.config.models import MqttSettings
from pitstop.ingest.service import IngestService
from pitstop.ingest.validate import FIELDS, payload_text
from pitstop.observability import Metrics

SESSION_EXPIRY_S = 7 * 24 * 3600
RECEIVE_MAXIMUM = 1000
IDLE_FLUSH_S = 0.005  # write a partial batch when nothing more arrives for this long


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # the connection it arrived on: acks are only valid on that one


@dataclass
class Parsed:
    """Messages turned into raw columns, and the ones that were not even rows."""

    columns: dict[str, list[Any]]
    malformed: list[str]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({f: pd.Series(self.columns[f], dtype=object) for f in FIELDS})


class TopicRouter:
    def __init__(self, settings: MqttSettings) -> None:
        self.prefix = settings.topic_prefix.rstrip("/")
        pattern = re.escape(settings.wide_topic)
        for name, group in (
            ("prefix", re.escape(self.prefix)),
            ("site", "(?P<site>[^/]+)"),
            ("asset", "(?P<asset>[^/]+)"),
        ):
            pattern = pattern.replace(re.escape("{" + name + "}"), group)
        self.wide = re.compile(pattern + "$")
        self.filters = [
            f"{self.prefix}/+/+/+",
            settings.wide_topic.replace("{prefix}", self.prefix).replace("{site}", "+").replace("{asset}", "+"),
        ]

    def parse(self, messages: list[Message]) -> Parsed:
        columns: dict[str, list[Any]] = {f: [] for f in FIELDS}
        ts, asset_col, sensor_col, value_col = (columns[f] for f in FIELDS)
        malformed: list[str] = []
        for message in messages:
            try:
                data = json.loads(message.payload)
            except (ValueError, UnicodeDecodeError):
                malformed.append(_raw(message))
                continue
            items = data if isinstance(data, list) else [data]
            wide = self.wide.match(message.topic)
            if wide is not None:
                asset = wide.group("asset")
                for item in items:
                    if not isinstance(item, dict) or "ts" not in item or len(item) < 2:
                        malformed.append(_raw(message, item))
                        continue
                    for sensor, value in item.items():
                        if sensor != "ts":
                            ts.append(item["ts"])
                            asset_col.append(asset)
                            sensor_col.append(sensor)
                            value_col.append(value)
                continue
            parts = message.topic[len(self.prefix) + 1 :].split("/")
            if not message.topic.startswith(self.prefix + "/") or len(parts) != 3:
                malformed.append(_raw(message))
                continue
            for item in items:
                if not isinstance(item, dict):
                    malformed.append(_raw(message, item))
                    continue
                ts.append(item.get("ts"))
                asset_col.append(parts[1])
                sensor_col.append(parts[2])
                value_col.append(item.get("value"))
        return Parsed(columns, malformed)


def _raw(message: Message, item: object = None) -> str:
    body: object = item if item is not None else message.payload.decode("utf-8", errors="replace")
    return payload_text({"topic": message.topic, "payload": body})


class MqttSubscriber:
    """The `Background` part of `pitstop serve` that takes readings from an MQTT broker."""

    name = "mqtt"

    def __init__(
        self, settings: MqttSettings, service: IngestService, metrics: Metrics, log: logging.Logger | None = None
    ) -> None:
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self.log = log or logging.getLogger("pitstop.ingest.mqtt")
        self.router = TopicRouter(settings)
        self._queue: queue.Queue[Message] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = False
        self._state = "not started"
        self._client: Client | None = None
        self._worker: threading.Thread | None = None
        service.links[self.name] = self.state

    # -- Background -------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if s.username is not None:
            client.username_pw_set(s.username.get_secret_value(), s.password.get_secret_value() if s.password else None)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self._stop.clear()
        self._state = "connecting"
        client.connect_async(s.host, s.port, keepalive=30, clean_start=False, properties=properties)
        self._client = client
        self._worker = threading.Thread(target=self._run, name="pitstop-mqtt-writer", daemon=True)
        self._worker.start()
        client.loop_start()

    def stop(self) -> None:
        """Stop taking messages. What was received but not yet written is not acked: the broker
        delivers it again on the next connection."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=30)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        with self._lock:
            self._connected = False
            self._generation += 1
        self._state = "stopped"
        self.metrics.mqtt_connected.set(0)
        while not self._queue.empty():
            self._queue.get_nowait()

    def state(self) -> str:
        """ "ok" while connected, else what is wrong (for /ready)."""
        return "ok" if self._connected else self._state

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(self, client: Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._state = f"refused by {self.settings.host}:{self.settings.port}: {reason}"
            self.log.warning("MQTT connection refused: %s", reason)
            return
        with self._lock:
            self._generation += 1
            self._connected = True
        self.metrics.mqtt_connected.set(1)
        self.log.info(
            "MQTT connected to %s:%s (session present: %s)",
            self.settings.host,
            self.settings.port,
            getattr(flags, "session_present", "?"),
        )
        client.subscribe([(f, self.settings.qos) for f in self.router.filters])

    def _on_disconnect(self, client: Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._lock:
            self._connected = False
        self.metrics.mqtt_connected.set(0)
        if not self._stop.is_set():
            self._state = f"disconnected from {self.settings.host}:{self.settings.port}: {reason}; reconnecting"
            self.log.warning("MQTT disconnected: %s; reconnecting with backoff", reason)

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        self.metrics.mqtt_messages.inc()
        self._queue.put(Message(message.topic, bytes(message.payload), message.mid, message.qos, self._generation))

    # -- the writer (its own thread) ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.perf_counter() + self.settings.batch_ms / 1000
            while len(batch) < self.settings.batch_max:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=min(remaining, IDLE_FLUSH_S)))
                except queue.Empty:
                    break
            self._write_then_ack(batch)

    def _write_then_ack(self, batch: list[Message]) -> None:
        parsed = self.router.parse(batch)
        while True:
            try:
                self.service.ingest(parsed.frame(), "mqtt", malformed=parsed.malformed)
                break
            except Exception as exc:  # the database and the spool both refused: keep it, retry
                self.log.warning("MQTT batch of %d messages not stored yet (%s); retrying", len(batch), exc)
                if self._stop.wait(1.0):
                    return  # not acked: the broker delivers it again
        with self._lock:
            if self._client is None:
                return
            for message in batch:
                if message.qos > 0 and message.generation == self._generation and self._connected:
                    self._client.ack(message.mid, message.qos)
