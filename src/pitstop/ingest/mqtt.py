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

Speed: the network thread does almost nothing per message (a PUBLISH is cut into topic, payload
and packet id and appended to a deque; the socket is read in large chunks); the writer thread takes
up to `batch_max` messages (or what came within `batch_ms`), parses them with orjson, validates and
writes them as one batch, and acks them with one write. The broker may send up to four batches
beyond the one being written (MQTT 5 receive maximum), so it keeps streaming during the write.

Several nodes (setting `mqtt.share_group`): each subscribes to `$share/<group>/<filter>`, and the
broker hands each message to one node of the group. What Mosquitto (2.0) does, and so what we do:
- It deals messages round-robin to every session in the group, connected or not: a node that is
  down keeps getting its share, held in its session. A restarted node must therefore come back
  under the same client id to get it; with the default `client_id` each node derives one that is
  stable across restarts and unique per node: `pitstop-<hostname>-<8 hex hashed from its data dir>` (not
  the pid, which would leave the old session holding its share until it expires).
- It does not hand a dead session's messages to the others (MQTT 5 says it SHOULD): what a session
  held when it expired is lost. So the session expiry of a group member is short (five minutes):
  long enough for a restart or a deploy to resume the session, short enough that a node gone for
  good (or under a new hostname) stops taking a share soon.
- A node that stops leaves the group first: it unsubscribes (the broker sends it nothing new), then
  writes and acks what it was already dealt, then disconnects; the others take the whole load and
  nothing waits in its session. If that does not finish within ten seconds (the database is away),
  the rest stays in its session for its next start.
"""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pitstop.background import SupervisedThread, Supervisor
from pitstop.config.models import MqttSettings
from pitstop.ingest.service import UNAVAILABLE, IngestService
from pitstop.ingest.validate import FIELDS, MAX_PAYLOAD_CHARS, loads, loads_each, payload_text
from pitstop.observability import Metrics

SESSION_EXPIRY_S = 7 * 24 * 3600
SHARED_SESSION_EXPIRY_S = 5 * 60  # a share group's member: see the module's docstring
LEAVE_TIMEOUT_S = 10.0  # a node leaving its share group writes what it was dealt for at most this long
LEAVE_QUIET_S = 0.3  # ... and has written it all when nothing more came for this long
DEFAULT_CLIENT_ID: str = MqttSettings.model_fields["client_id"].default
RECEIVE_MAXIMUM_MIN = 1000  # unacked messages the broker may send us: at least this, and 4 batches
IDLE_FLUSH_S = 0.005  # write a partial batch when nothing more arrives for this long
READ_CHUNK = 1 << 18  # bytes read from the socket at once
MAX_ROUTES = 100_000  # topics remembered by the router
PUBACK = 0x40
_SENSOR, _WIDE, _OTHER = 0, 1, 2


class Message(NamedTuple):
    topic: str
    payload: bytes | bytearray
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
        self._routes: dict[str, tuple[int, str, str]] = {}

    def parse(self, messages: list[Message]) -> Parsed:
        columns: dict[str, list[Any]] = {f: [] for f in FIELDS}
        ts, asset_col, sensor_col, value_col = (columns[f] for f in FIELDS)
        malformed: list[str] = []
        routes = self._routes
        for message in messages:
            topic = message.topic
            route = routes.get(topic)
            if route is None:
                route = self._route(topic)
            try:
                data = loads(message.payload)
            except ValueError:  # a list is taken element by element: one bad reading spoils no others
                try:
                    data, unreadable = loads_each(message.payload)
                except ValueError:
                    malformed.append(_raw(message))
                    continue
                malformed += [_raw(message, text) for text in unreadable]
            kind, asset, sensor = route
            if kind == _SENSOR:
                if type(data) is dict:  # the common case: one reading per message
                    ts.append(data.get("ts"))
                    asset_col.append(asset)
                    sensor_col.append(sensor)
                    value_col.append(data.get("value"))
                    continue
                for item in data if isinstance(data, list) else [data]:
                    if not isinstance(item, dict):
                        malformed.append(_raw(message, item))
                        continue
                    ts.append(item.get("ts"))
                    asset_col.append(asset)
                    sensor_col.append(sensor)
                    value_col.append(item.get("value"))
            elif kind == _WIDE:
                for item in data if isinstance(data, list) else [data]:
                    if not isinstance(item, dict) or "ts" not in item or len(item) < 2:
                        malformed.append(_raw(message, item))
                        continue
                    for name, value in item.items():
                        if name != "ts":
                            ts.append(item["ts"])
                            asset_col.append(asset)
                            sensor_col.append(name)
                            value_col.append(value)
            else:
                malformed.append(_raw(message))
        return Parsed(columns, malformed)

    def _route(self, topic: str) -> tuple[int, str, str]:
        """(kind, asset, sensor) of a topic, remembered (topics repeat: one per sensor)."""
        wide = self.wide.match(topic)
        if wide is not None:
            route = (_WIDE, wide.group("asset"), "")
        else:
            parts = topic[len(self.prefix) + 1 :].split("/")
            if topic.startswith(self.prefix + "/") and len(parts) == 3:
                route = (_SENSOR, parts[1], parts[2])
            else:
                route = (_OTHER, "", "")
        if len(self._routes) >= MAX_ROUTES:
            self._routes.clear()
        self._routes[topic] = route
        return route


class _Client(Client):
    """paho's client, reading the socket in chunks of READ_CHUNK bytes.

    paho reads each packet with three or more `recv` calls (the command byte, each byte of the
    remaining length, the rest) and goes back to `select` after every packet; at thousands of
    small messages per second those system calls are most of the network thread's time. Here
    `_sock_recv` serves from a buffer filled by one large `recv`, and `loop_read` goes on while
    the buffer holds bytes (select cannot see them). The buffer is dropped with the socket.
    """

    def __init__(self, deliver: Callable[[str, bytes, int, int], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deliver = deliver
        self._buffer = b""
        self._buffer_at = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._buffer_at >= len(self._buffer):
            data = super()._sock_recv(READ_CHUNK)
            if len(data) <= bufsize:
                return data
            self._buffer, self._buffer_at = data, 0
        start = self._buffer_at
        self._buffer_at = min(start + bufsize, len(self._buffer))
        return self._buffer[start : self._buffer_at]

    def _sock_close(self) -> None:
        self._buffer, self._buffer_at = b"", 0
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._buffer_at < len(self._buffer) and self._sock is not None:
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        """A QoS 0 or 1 PUBLISH straight to `deliver(topic, payload, mid, qos)`: no MQTTMessage, no
        Properties object, no topic matching for per-filter callbacks (we register none), no log
        formatting. QoS 2 goes the way paho goes (to `on_message`)."""
        command = self._in_packet["command"]
        qos = (command & 0x06) >> 1
        if qos == 2 or self._protocol != MQTTProtocolVersion.MQTTv5:
            return super()._handle_publish()
        data = self._in_packet["packet"]
        try:
            end = 2 + ((data[0] << 8) | data[1])
            topic = bytes(data[2:end]).decode("utf-8", errors="replace")
            mid = 0
            if qos:
                mid = (data[end] << 8) | data[end + 1]
                end += 2
            length, shift = 0, 0  # MQTT 5 properties: a variable-length size, then skipped
            while True:
                byte = data[end]
                end += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80 or shift > 21:
                    break
            end += length
            if end > len(data):
                raise IndexError(end)
        except IndexError as exc:
            raise MalformedPacket(f"PUBLISH shorter than its headers say ({exc})") from exc
        self._deliver(topic, bytes(data[end:]), mid, qos)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK for many QoS 1 messages as one write (paho's `ack` queues one packet and wakes
        the network thread once per message)."""
        if mids:
            data = b"".join([struct.pack("!BBH", PUBACK, 2, mid) for mid in mids])
            self._packet_queue(PUBACK, data, 0, 1)


def node_client_id(settings: MqttSettings, node_dir: Path, hostname: str | None = None) -> str:
    """The client id this node connects with: `client_id` as set, except in a share group with the
    default one, where every node needs its own id and must get the same one after a restart (the
    broker keeps the node's share of messages in the session of that id). The host name tells the
    machines apart, the node's own directory (its spool, under its data dir) the nodes on one host."""
    if settings.share_group is None or settings.client_id != DEFAULT_CLIENT_ID:
        return settings.client_id
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", hostname if hostname is not None else socket.gethostname())[:40]
    key = hashlib.sha256(str(node_dir.resolve()).encode()).hexdigest()[:8]
    return f"{settings.client_id}-{host or 'host'}-{key}"


def _raw(message: Message, item: object = None) -> str:
    body: object = item if item is not None else message.payload.decode("utf-8", errors="replace")
    return payload_text({"topic": message.topic, "payload": body})


class MqttSubscriber:
    """The `Background` part of `pitstop serve` that takes readings from an MQTT broker."""

    name = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        service: IngestService,
        metrics: Metrics,
        log: logging.Logger | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self.log = log or logging.getLogger("pitstop.ingest.mqtt")
        self.router = TopicRouter(settings)
        self.client_id = node_client_id(settings, service.spool.directory)
        group = settings.share_group
        self.subscriptions = [f"$share/{group}/{f}" if group else f for f in self.router.filters]
        # Filled by the network thread, emptied by the writer; `_wake` is set when it was empty.
        self._pending: deque[Message] = deque()
        self._inflight: list[Message] = []  # the batch being written, kept until it is stored
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = False
        self._subscribed = False  # the broker confirmed the subscription on this connection
        self._unsubscribed = threading.Event()  # ... and, when leaving the share group, its end
        self._batches_written = 0  # by the writer: a node leaving its group waits for this to stand still
        self._state = "not started"
        self._client: _Client | None = None
        # Two supervised threads: paho's network loop, and the writer (restarted if they fail).
        self.supervisor = supervisor or Supervisor()
        self._network: SupervisedThread | None = None
        self._writer: SupervisedThread | None = None

    # -- Background -------------------------------------------------------------------------

    def start(self) -> None:
        # /ready answers for the link from here on: a process whose roles leave ingest out never starts it
        self.service.links[self.name] = self.state
        s = self.settings
        client = _Client(
            self._deliver,
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if s.username is not None:
            client.username_pw_set(s.username.get_secret_value(), s.password.get_secret_value() if s.password else None)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S if s.share_group is None else SHARED_SESSION_EXPIRY_S
        # Room for the next batches while one is written: the broker keeps sending until this many
        # messages are unacked. (All of them come again after a restart: stored once, counted as
        # duplicates.)
        properties.ReceiveMaximum = min(65535, max(RECEIVE_MAXIMUM_MIN, 4 * s.batch_max))
        self._stop.clear()
        self._state = "connecting"
        client.connect_async(s.host, s.port, keepalive=30, clean_start=False, properties=properties)
        self._client = client
        self._writer = self.supervisor.thread("mqtt-writer", self._write_step)
        self._writer.start()
        # paho's loop with its own reconnect backoff; it returns only when disconnect() is called
        self._network = self.supervisor.thread(
            "mqtt-network", lambda: client.loop_forever(retry_first_connection=True), every_s=1.0
        )
        self._network.start()

    def stop(self) -> None:
        """Stop taking messages. What was received but not yet written is not acked: the broker
        delivers it again on the next connection. A member of a share group leaves it first."""
        if self.settings.share_group is not None:
            self._leave_group()
        self._stop.set()
        if self._writer is not None:
            self._writer.stop()
        if self._network is not None:
            self._network.stopping.set()
        if self._client is not None:
            self._client.disconnect()
        if self._network is not None:
            self._network.stop()
        with self._lock:
            self._connected = False
            self._generation += 1
        self._state = "stopped"
        self.metrics.mqtt_connected.set(0)
        self._pending.clear()
        self._inflight = []

    def _leave_group(self) -> None:
        """Unsubscribe, so that the broker deals this node nothing more, then let the writer store and
        ack what it had dealt it (in flight and queued in the session), so that nothing waits there
        for a restart that may not come. Bounded by LEAVE_TIMEOUT_S; called before `_stop` is set."""
        client, group = self._client, self.settings.share_group
        if client is None or not self._connected:
            return
        self._unsubscribed.clear()
        self._subscribed = False
        self._state = f"leaving share group {group}"
        client.unsubscribe(self.subscriptions)
        deadline = time.perf_counter() + LEAVE_TIMEOUT_S
        if not self._unsubscribed.wait(LEAVE_TIMEOUT_S):
            self.log.warning("MQTT share group %s: no answer to the unsubscribe; stopping anyway", group)
            return
        while self._connected and time.perf_counter() < deadline:
            written = self._batches_written
            if self._pending or self._inflight:
                time.sleep(0.02)
                continue
            time.sleep(LEAVE_QUIET_S)  # acks free room in flight: the broker sends what it still holds
            if not self._pending and not self._inflight and self._batches_written == written:
                self.log.info("MQTT share group %s left: all that was dealt to %s is stored", group, self.client_id)
                return
        self.log.warning(
            "MQTT share group %s left with messages not yet stored: they wait in the session of %s "
            "(kept %d s) for the next start",
            group,
            self.client_id,
            SHARED_SESSION_EXPIRY_S,
        )

    def state(self) -> str:
        """ "ok" while connected, subscribed and both threads run, else what is wrong (for /ready)."""
        for thread in (self._network, self._writer):
            if thread is not None and thread.problem is not None:
                return f"{thread.name}: {thread.state()}"
        return "ok" if self._connected and self._subscribed else self._state

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(self, client: Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._state = f"refused by {self.settings.host}:{self.settings.port}: {reason}"
            self.log.warning("MQTT connection refused: %s", reason)
            return
        with self._lock:
            self._generation += 1
            self._connected = True
            self._subscribed = False
        self._state = "subscribing"
        self.metrics.mqtt_connected.set(1)
        self.log.info(
            "MQTT connected to %s:%s as %s (session present: %s)",
            self.settings.host,
            self.settings.port,
            self.client_id,
            getattr(flags, "session_present", "?"),
        )
        client.subscribe([(f, self.settings.qos) for f in self.subscriptions])

    def _on_subscribe(self, client: Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            self._state = f"subscription refused by {self.settings.host}:{self.settings.port}: {', '.join(refused)}"
            self.log.warning("MQTT subscription refused: %s", ", ".join(refused))
            return
        self._subscribed = True

    def _on_unsubscribe(self, client: Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        self._unsubscribed.set()

    def _on_disconnect(self, client: Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._lock:
            self._connected = False
            self._subscribed = False
        self.metrics.mqtt_connected.set(0)
        if not self._stop.is_set():
            self._state = f"disconnected from {self.settings.host}:{self.settings.port}: {reason}; reconnecting"
            self.log.warning("MQTT disconnected: %s; reconnecting with backoff", reason)

    def _deliver(self, topic: str, payload: bytes | bytearray, mid: int, qos: int) -> None:
        # Per message, only this: the writer does the rest per batch.
        self._pending.append(Message(topic, payload, mid, qos, self._generation))
        if not self._wake.is_set():
            self._wake.set()

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        self._deliver(message.topic, message.payload, message.mid, message.qos)

    # -- the writer (its own thread) ----------------------------------------------------------

    def _write_step(self) -> None:
        """Wait briefly for messages, then write one batch (the writer thread repeats this). A batch
        whose write failed is written again first, after the supervisor's backoff."""
        if self._inflight:
            self._write_then_ack(self._inflight)
            self._inflight = []
            return
        pending, batch_max = self._pending, self.settings.batch_max
        if not pending:
            self._wake.wait(0.2)
            self._wake.clear()
            return
        # Collect for up to batch_ms, or batch_max messages, or until nothing more comes.
        deadline = time.perf_counter() + self.settings.batch_ms / 1000
        while len(pending) < batch_max and time.perf_counter() < deadline:
            seen = len(pending)
            time.sleep(IDLE_FLUSH_S)
            if len(pending) == seen:
                break
        self._inflight = [pending.popleft() for _ in range(min(len(pending), batch_max))]
        self._write_then_ack(self._inflight)
        self._inflight = []

    def _write_then_ack(self, batch: list[Message]) -> None:
        self.metrics.mqtt_messages.inc(len(batch))
        if not self._store(batch):
            return  # stopping: not acked, the broker delivers it again
        with self._lock:
            client = self._client
            if client is None or not self._connected:
                return
            generation = self._generation
            current = [m for m in batch if m.generation == generation]
            client.ack_many([m.mid for m in current if m.qos == 1])
            for message in current:
                if message.qos == 2:
                    client.ack(message.mid, message.qos)
            self._batches_written += 1

    def _store(self, batch: list[Message]) -> bool:
        """Store a batch, retrying while the database and the spool both refuse; False when asked
        to stop first. A message that makes storing fail for any other reason (a bug it trips) must
        not hold up the others: the batch is stored message by message, and a message that still
        fails is quarantined with the error, so that it can be acked and looked at."""
        try:
            return self._store_retrying(batch)
        except Exception:
            self.log.exception("MQTT batch of %d messages failed; storing it message by message", len(batch))
        for message in batch:
            try:
                if not self._store_retrying([message]):
                    return False
            except Exception as exc:
                text = message.payload[:MAX_PAYLOAD_CHARS].decode("utf-8", errors="replace")
                raw = payload_text({"topic": message.topic, "payload": text, "error": f"{type(exc).__name__}: {exc}"})
                if not self._store_retrying([], malformed=[raw]):
                    return False
        return True

    def _store_retrying(self, batch: list[Message], malformed: Sequence[str] = ()) -> bool:
        while True:
            parsed = self.router.parse(batch)
            try:
                self.service.ingest(parsed.frame(), "mqtt", malformed=[*parsed.malformed, *malformed])
                return True
            except UNAVAILABLE as exc:  # the database and the spool both refused: keep it, retry
                self.log.warning("MQTT batch of %d messages not stored yet (%s); retrying", len(batch), exc)
                if self._stop.wait(1.0):
                    return False
