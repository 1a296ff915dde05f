"""Soak of the whole ingest path: nothing poisons ingest, nothing acknowledged is lost.

    python bench/soak.py                 # 10 minutes of traffic (plus about a minute of set-up and drain)
    python bench/soak.py --minutes 1     # a quick check
    python bench/soak.py --minutes 3 --out soak.json

Starts everything it needs in a temporary directory, never the shared services: a Mosquitto of
its own on a free port (no offline queue cap; persistence on, so a broker restart keeps what it
acknowledged), a PostgreSQL cluster of its own (initdb, another port) and `pitstop serve` with the
demo inventory, MQTT on the bench's broker, the database on the bench's cluster, the scheduler off
(its retention and roll-up jobs are not ingest and would change the counts).

Traffic, at a steady rate (`--rate` readings/s, half MQTT, half HTTP):
- 2 MQTT publishers (paho, QoS 1) to `<prefix>/north-plant/<asset>/<sensor>` of ahu-1 and ahu-2,
  one reading (`{"ts":..,"value":..}`) or a list of 4 per message; a message counts as sent once
  its PUBACK came back (paho resends unacknowledged ones after a reconnect);
- 2 HTTP clients pushing JSON lists of 50 readings (`POST /api/readings`, an operator key) for
  pump-1, fan-1 and vms-server; on a connection error or 503 the same body is sent again
  (idempotent); another 5xx is counted as an error.
Every good reading has its own (asset, sensor, ts), so the expected stored count is exact.
Poison, 1 in 1,000 on each path (every 1,000th MQTT message; one poison request per 1,000 HTTP
readings), kinds in rotation: NaN/Infinity tokens, a list mixing good and bad readings, a
conflicting second value for an already acknowledged (sensor, ts) (expected in quarantine as
`conflict`, the first value kept), invalid UTF-8, an empty payload, a 1 MiB string value, a
value of lists nested 600 deep, an integer too large for a float, a value nested 3,000 deep.
Poison timestamps lie in a range of their own, so a stored poison reading is seen; each poison
payload is different (but empty ones), so `quarantine_rows_expected` is exact when every bad
reading or message leaves one row (identical payloads are quarantined once: empty payloads count
once per topic on MQTT, once on HTTP).

Faults, spread over the run: SIGKILL of `pitstop serve` and a restart (at 20 %), a Mosquitto stop
and start on the same port (45 %), `pg_ctl restart -m fast` (70 %).

At the end it waits (at most 60 s) until the store stops growing, then counts in the bench's
PostgreSQL. Prints JSON: sent, stored, quarantined (by reason and path), duplicates (the server's
pitstop_readings_duplicate_total, summed over its two lives), lost (good readings acknowledged
to the sender but not stored: target 0), http_5xx (non-503: target 0), the longest time each
path stored nothing while traffic ran, RSS of the serve process after warm-up and at the end
(growth target < 10 %), the fault times, and `ok` per target. Exit status 1 when lost > 0 or
http_5xx > 0.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from pitstop.testing.server import RunningServer, free_port, running_pitstop
from pitstop.testing.services import PG_BIN, PostgresCluster

ROOT = Path(__file__).resolve().parents[1]
PITSTOP = ROOT / ".venv" / "bin" / "pitstop"
DEMO_INVENTORY = ROOT / "src" / "pitstop" / "data" / "demo-inventory.toml"
SITE = "north-plant"
MQTT_ASSETS = ("ahu-1", "ahu-2")
HTTP_ASSETS = ("pump-1", "fan-1", "vms-server")
GOOD_T0 = 1_600_000_000  # good readings: seconds from here (each sender a range of its own)
SENDER_SPAN = 20_000_000  # 231 days: four senders end well before now
POISON_T0 = 1_500_000_000  # poison readings: below GOOD_T0
POISON_EVERY = 1000
HTTP_BATCH = 50
MQTT_LIST = 4  # every second MQTT message is a list of this many readings
KINDS = (
    "nan_infinity",
    "mixed_list",
    "conflict",
    "invalid_utf8",
    "empty",
    "giant_string",
    "nested_600",
    "bigint",
    "nested_3000",
)
# Quarantine rows one poison message should leave (identical payloads are quarantined once:
# empty payloads are counted per distinct topic below).
ROWS_PER_KIND = {
    "nan_infinity": 3,
    "mixed_list": 2,
    "conflict": 1,
    "invalid_utf8": 1,
    "empty": 0,
    "giant_string": 1,
    "nested_600": 1,
    "bigint": 1,
    "nested_3000": 1,
}
GIANT = 1 << 20


def now() -> float:
    return time.perf_counter()


def source_state() -> dict[str, Any]:
    """The commit the serve process runs, and whether src/ differs from it (a shared checkout)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "src").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD"), "src_files_changed_since": len(changed)}


@dataclass(frozen=True)
class Sensor:
    asset: str
    name: str
    low: float
    high: float

    def value(self, n: int) -> float:
        """A value well inside the sensor's range (10 % to 90 %), different from reading to reading."""
        return round(self.low + (self.high - self.low) * (0.1 + 0.8 * ((n * 37) % 101) / 101), 3)

    def other(self, value: float) -> float:
        return round(value + (self.high - self.low) * 0.01, 3)


def demo_sensors() -> list[Sensor]:
    data = tomllib.loads(DEMO_INVENTORY.read_text())
    out = []
    for asset in data["assets"]:
        for s in asset.get("sensors", []):
            low = s.get("min", -1e6)
            high = s.get("max", 1e6)
            out.append(Sensor(asset["name"], s["name"], float(low), float(high)))
    return out


# -- poison ---------------------------------------------------------------------------------------


class PoisonClock:
    """Timestamps of poison readings (a range of their own) and the rotation of kinds, per path."""

    def __init__(self, offset: int) -> None:
        self._ts = itertools.count(POISON_T0 + offset)
        self._kind = itertools.count()
        self._lock = threading.Lock()

    def ts(self) -> int:
        with self._lock:
            return next(self._ts)

    def kind(self) -> str:
        with self._lock:
            return KINDS[next(self._kind) % len(KINDS)]


def nested(depth: int) -> bytes:
    """A value of lists `depth` deep (the reading around it keeps its timestamp, so that two poison
    messages never have the same quarantine payload)."""
    return b"[" * depth + b"]" * depth


def mqtt_poison(kind: str, ts: int, good: list[tuple[int, float]]) -> bytes:
    """The payload of one poison MQTT message (`conflict` is built by the caller)."""
    if kind == "nan_infinity":
        return b'[{"ts":%d,"value":NaN},{"ts":%d,"value":Infinity},{"ts":%d,"value":-Infinity}]' % (ts, ts + 1, ts + 2)
    if kind == "mixed_list":
        items = [f'{{"ts":{t},"value":{v}}}' for t, v in good]
        items.insert(1, f'{{"ts":{ts},"value":"not a number {ts}"}}')
        items.append(f'["not a reading", {ts}]')
        return ("[" + ",".join(items) + "]").encode()
    if kind == "invalid_utf8":
        return b'{"ts":%d,"value":"\xff\xfe\xc3\x28"}' % ts
    if kind == "empty":
        return b""
    if kind == "giant_string":
        return b'{"ts":%d,"value":"%s"}' % (ts, b"9" * GIANT)
    if kind in ("nested_600", "nested_3000"):
        return b'{"ts":%d,"value":%s}' % (ts, nested(int(kind.split("_")[1])))
    if kind == "bigint":
        return b'{"ts":%d,"value":1%s}' % (ts, b"0" * 400)
    raise ValueError(kind)


def http_poison(kind: str, ts: int, sensor: Sensor, good: list[dict[str, Any]]) -> bytes:
    """The body of one poison HTTP request (`conflict` is built by the caller)."""
    head = f'"ts":{ts},"asset":"{sensor.asset}","sensor":"{sensor.name}"'
    if kind == "nan_infinity":
        rows = [
            f'{{"ts":{ts + i},"asset":"{sensor.asset}","sensor":"{sensor.name}","value":{token}}}'
            for i, token in enumerate(("NaN", "Infinity", "-Infinity"))
        ]
        return ("[" + ",".join(rows) + "]").encode()
    if kind == "mixed_list":
        items = [json.dumps(r, separators=(",", ":")) for r in good]
        items.insert(1, f'{{{head},"value":"not a number {ts}"}}')
        items.append(f'["not a reading", {ts}]')
        return ("[" + ",".join(items) + "]").encode()
    if kind == "invalid_utf8":
        return b'[{%s,"value":"\xff\xfe\xc3\x28"}]' % head.encode()
    if kind == "empty":
        return b""
    if kind == "giant_string":
        return b'[{%s,"value":"%s"}]' % (head.encode(), b"9" * GIANT)
    if kind in ("nested_600", "nested_3000"):
        return b'[{%s,"value":%s}]' % (head.encode(), nested(int(kind.split("_")[1])))
    if kind == "bigint":
        return b'[{%s,"value":1%s}]' % (head.encode(), b"0" * 400)
    raise ValueError(kind)


# -- what each sender did -------------------------------------------------------------------------


@dataclass
class Tally:
    """One path's account; senders add to it under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: int = 0  # MQTT messages / HTTP requests acknowledged
    good: int = 0  # good readings acknowledged (PUBACK, or HTTP 200)
    poison: Counter[str] = field(default_factory=Counter)  # poison messages acknowledged, by kind
    poison_rows: int = 0  # bad readings or messages inside them
    empty_topics: set[str] = field(default_factory=set)
    # (asset, sensor, ts, first value, conflicting value)
    conflicts: list[tuple[str, str, int, float, float]] = field(default_factory=list)
    unconfirmed: list[tuple[str, str, int]] = field(default_factory=list)  # good readings never acknowledged
    retries: int = 0
    status: Counter[str] = field(default_factory=Counter)
    errors_5xx: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    duplicates_answered: int = 0

    def add(self, **kw: Any) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


class Pacer:
    """Paces a sender at `rate` units/s in 20 ms ticks; after an outage it does not burst more
    than one second's worth to catch up."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start = now()
        self.done = 0

    def due(self) -> int:
        elapsed = now() - self.start
        target = int(elapsed * self.rate)
        if target - self.done > self.rate:  # behind by more than a second: forget the rest
            self.done = target - int(self.rate)
        return target - self.done

    def wait(self) -> None:
        time.sleep(0.02)


@dataclass
class Pending:
    topic: str
    kind: str  # "good" or a poison kind
    good: list[tuple[str, str, int]]
    poison_rows: int
    first: tuple[str, str, int, float] | None = None
    conflict: tuple[str, str, int, float, float] | None = None


class MqttSender(threading.Thread):
    def __init__(
        self, index: int, port: int, prefix: str, sensors: list[Sensor], rate: float, tally: Tally, poison: PoisonClock
    ) -> None:
        super().__init__(name=f"soak-mqtt-{index}", daemon=True)
        self.port, self.prefix, self.sensors, self.tally, self.poison = port, prefix, sensors, tally, poison
        self.rate = rate / ((1 + MQTT_LIST) / 2)  # messages/s
        self.ts = itertools.count(GOOD_T0 + index * SENDER_SPAN)
        self.stop = threading.Event()
        # by paho's message id until the PUBACK: `on_publish` (paho's network thread) only appends
        # the id to `acked`; this thread matches them (an id can come back before it is filed)
        self.pending: dict[int, Pending] = {}
        self.acked: deque[int] = deque()
        self.early: set[int] = set()
        self.window = 20_000  # at most this many unacknowledged (paho's message ids are 16 bits)
        self.acked_recent: deque[tuple[str, str, int, float]] = deque(maxlen=200)
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub{index}")
        self.client.max_inflight_messages_set(200)
        self.client.reconnect_delay_set(1, 2)
        self.connected = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_publish = lambda client, userdata, mid, *a: self.acked.append(mid)
        self.client.connect_async("127.0.0.1", port, keepalive=15)
        self.client.loop_start()
        self.error: str | None = None

    def topic(self, s: Sensor) -> str:
        return f"{self.prefix}/{SITE}/{s.asset}/{s.name}"

    def sweep(self) -> None:
        """Count what the broker acknowledged (in any order)."""
        done: list[Pending] = []
        while self.acked:
            self.early.add(self.acked.popleft())
        for mid in [m for m in self.early if m in self.pending]:
            self.early.discard(mid)
            done.append(self.pending.pop(mid))
        if not done:
            return
        with self.tally.lock:
            for p in done:
                self.tally.messages += 1
                self.tally.good += len(p.good)
                if p.kind != "good":
                    self.tally.poison[p.kind] += 1
                    self.tally.poison_rows += p.poison_rows
                    if p.kind == "empty":
                        self.tally.empty_topics.add(p.topic)
                if p.conflict is not None:
                    self.tally.conflicts.append(p.conflict)
        for p in done:
            if p.first is not None:
                self.acked_recent.append(p.first)

    def publish(self, topic: str, payload: bytes, kind: str, good: list[tuple[str, str, int]], **kw: Any) -> None:
        info = self.client.publish(topic, payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"paho refused a publish: {info.rc}")
        if info.mid in self.pending:  # paho reuses an id once it was acknowledged: settle that first
            self.sweep()
        self.pending[info.mid] = Pending(topic, kind, good, **kw)

    def one(self, m: int) -> None:
        s = self.sensors[m % len(self.sensors)]
        topic = self.topic(s)
        if m % POISON_EVERY == POISON_EVERY - 1:
            kind = self.poison.kind()
            if kind == "conflict" and len(self.acked_recent) < 100:
                kind = "nan_infinity"  # nothing old enough acknowledged yet
            if kind == "conflict":
                asset, name, ts, first = self.acked_recent[0]  # acknowledged about 100 messages ago
                target = next(x for x in self.sensors if x.asset == asset and x.name == name)
                second = target.other(first)
                payload = f'{{"ts":{ts},"value":{second}}}'.encode()
                self.publish(
                    self.topic(target), payload, kind, [], poison_rows=1, conflict=(asset, name, ts, first, second)
                )
                return
            good: list[tuple[int, float]] = []
            if kind == "mixed_list":
                good = [(t, s.value(t)) for t in (next(self.ts), next(self.ts))]
            keys = [(s.asset, s.name, t) for t, _ in good]
            rows = ROWS_PER_KIND[kind]
            self.publish(topic, mqtt_poison(kind, self.poison.ts(), good), kind, keys, poison_rows=rows)
            for _ in range(2):  # nan_infinity takes three poison timestamps
                self.poison.ts()
            return
        n = 1 if m % 2 == 0 else MQTT_LIST
        stamps = [next(self.ts) for _ in range(n)]
        values = [s.value(t) for t in stamps]
        if n == 1:
            payload = f'{{"ts":{stamps[0]},"value":{values[0]}}}'.encode()
            first = (s.asset, s.name, stamps[0], values[0])
        else:
            payload = (
                "[" + ",".join(f'{{"ts":{t},"value":{v}}}' for t, v in zip(stamps, values, strict=True)) + "]"
            ).encode()
            first = None
        self.publish(topic, payload, "good", [(s.asset, s.name, t) for t in stamps], poison_rows=0, first=first)

    def run(self) -> None:
        try:
            pacer = Pacer(self.rate)
            m = 0
            while not self.stop.is_set():
                self.sweep()
                for _ in range(pacer.due()):
                    if len(self.pending) >= self.window:
                        break
                    self.one(m)
                    m += 1
                    pacer.done += 1
                pacer.wait()
        except Exception as exc:  # reported in the JSON, not swallowed
            self.error = f"{type(exc).__name__}: {exc}"

    def finish(self, deadline: float) -> None:
        """Wait (until `deadline`) for the broker to acknowledge what is still out; the rest is unconfirmed."""
        while self.pending and now() < deadline:
            self.sweep()
            time.sleep(0.1)
        self.sweep()
        with self.tally.lock:
            for p in self.pending.values():
                self.tally.unconfirmed.extend(p.good)
        self.client.disconnect()
        self.client.loop_stop()


class HttpSender(threading.Thread):
    def __init__(
        self, index: int, url: str, token: str, sensors: list[Sensor], rate: float, tally: Tally, poison: PoisonClock
    ) -> None:
        super().__init__(name=f"soak-http-{index}", daemon=True)
        self.url, self.token, self.sensors, self.tally, self.poison = url, token, sensors, tally, poison
        self.rate = rate / HTTP_BATCH  # requests/s
        self.ts = itertools.count(GOOD_T0 + (2 + index) * SENDER_SPAN)
        self.n = 0
        self.stop = threading.Event()
        self.give_up_at = math.inf  # after the run: stop retrying here
        self.last_good: tuple[str, str, int, float] | None = None
        self.error: str | None = None

    def rows(self, count: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            s = self.sensors[self.n % len(self.sensors)]
            self.n += 1
            t = next(self.ts)
            out.append({"ts": t, "asset": s.asset, "sensor": s.name, "value": s.value(t)})
        return out

    def post(self, client: httpx.Client, body: bytes) -> httpx.Response | None:
        """The response that is not a 503 or a connection error; None when giving up."""
        delay = 0.2
        while True:
            try:
                response = client.post("/api/readings", content=body, headers={"Content-Type": "application/json"})
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code != 503:
                return response
            if now() > self.give_up_at:
                return None
            self.tally.add(retries=1)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def send(self, client: httpx.Client, body: bytes, kind: str, good: list[dict[str, Any]], **kw: Any) -> None:
        response = self.post(client, body)
        keys = [(r["asset"], r["sensor"], r["ts"]) for r in good]
        with self.tally.lock:
            if response is None:
                self.tally.unconfirmed.extend(keys)
                self.tally.status["gave up"] += 1
                return
            code = response.status_code
            self.tally.status[str(code)] += 1
            self.tally.messages += 1
            if kind != "good":
                self.tally.poison[kind] += 1
                self.tally.poison_rows += kw.get("poison_rows", 0)
                if kw.get("conflict"):
                    self.tally.conflicts.append(kw["conflict"])
            if code >= 500:
                self.tally.errors_5xx.append(f"{kind}: {code} {response.text[:200]}")
                self.tally.unconfirmed.extend(keys)
                return
            expected = (200,) if kind == "good" else (200, 422)
            if code not in expected:
                self.tally.unexpected.append(f"{kind}: {code} {response.text[:200]}")
            if code != 200:
                self.tally.unconfirmed.extend(keys)
            else:
                self.tally.good += len(keys)
                with contextlib.suppress(ValueError, KeyError):
                    self.tally.duplicates_answered += int(response.json()["duplicates"])
        if kind == "good" and code == 200:
            r = good[0]
            self.last_good = (r["asset"], r["sensor"], r["ts"], r["value"])

    def poison_request(self, client: httpx.Client) -> None:
        kind = self.poison.kind()
        if kind == "conflict" and self.last_good is None:
            kind = "nan_infinity"
        if kind == "conflict":
            assert self.last_good is not None
            asset, name, ts, first = self.last_good
            target = next(x for x in self.sensors if x.asset == asset and x.name == name)
            second = target.other(first)
            body = json.dumps([{"ts": ts, "asset": asset, "sensor": name, "value": second}]).encode()
            self.send(client, body, kind, [], poison_rows=1, conflict=(asset, name, ts, first, second))
            return
        sensor = self.sensors[self.n % len(self.sensors)]
        good = self.rows(2) if kind == "mixed_list" else []
        ts = self.poison.ts()
        for _ in range(2):
            self.poison.ts()
        self.send(client, http_poison(kind, ts, sensor, good), kind, good, poison_rows=ROWS_PER_KIND[kind])

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, headers={"X-API-Key": self.token}, timeout=30) as client:
                pacer = Pacer(self.rate)
                bodies = 0
                while not self.stop.is_set():
                    for _ in range(pacer.due()):
                        if self.stop.is_set():
                            break
                        rows = self.rows(HTTP_BATCH)
                        self.send(client, json.dumps(rows, separators=(",", ":")).encode(), "good", rows)
                        bodies += 1
                        pacer.done += 1
                        if bodies % (POISON_EVERY // HTTP_BATCH) == 0:
                            self.poison_request(client)
                    pacer.wait()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"


# -- the services the bench runs --------------------------------------------------------------------


class Mosquitto:
    """The bench's broker. Persistence is on (saved at a clean stop), so that what it acknowledged
    to a publisher and had not yet delivered survives its restart, as pitstop's session does."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "mosquitto"
        self.dir.mkdir()
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n"
            f"persistence true\npersistence_location {self.dir}/\n"
            "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 1000\n"
        )
        if os.geteuid() == 0:  # mosquitto drops root for its own user, which must write the store
            with contextlib.suppress(LookupError, OSError):
                shutil.chown(self.dir, "mosquitto")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_port(self.port, 15):
            raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_port(port: int, timeout: float) -> bool:
    deadline = now() + timeout
    while now() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Serve:
    """`pitstop serve` (through pitstop.testing.server), killed and started again on demand."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stack = contextlib.ExitStack()
        self.server: RunningServer | None = None
        self.lives: list[dict[str, Any]] = []  # per process: pid, metrics, rss samples
        self.output: list[str] = []

    def start(self) -> float:
        cm = running_pitstop(["serve", "--port", str(self.port)], port=self.port, cwd=self.cwd, env=self.env)
        self.stack = contextlib.ExitStack()
        server = self.stack.enter_context(cm)
        self.lives.append({"pid": server.process.pid, "metrics": "", "ready_s": round(server.ready_s, 1)})
        self.server = server
        return server.ready_s

    @property
    def life(self) -> dict[str, Any]:
        return self.lives[-1]

    def kill(self) -> None:
        assert self.server is not None
        self.scrape()
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait()
        self.close()

    def close(self) -> None:
        server = self.server
        self.server = None
        self.stack.close()
        if server is not None:
            self.output.extend(server.output)

    def scrape(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"{self.url}/metrics", timeout=5)
            if response.status_code == 200:
                self.life["metrics"] = response.text

    def rss_mb(self) -> float | None:
        if self.server is None:
            return None
        try:
            return round(psutil.Process(self.server.process.pid).memory_info().rss / 2**20, 1)
        except psutil.Error:
            return None


def metric_sums(text: str, name: str) -> dict[str, float]:
    """Sum of a Prometheus counter by its `source` label (or "" without labels)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        rest = head[len(name) :]
        if rest and not rest.startswith("{"):
            continue
        source = ""
        if 'source="' in rest:
            source = rest.split('source="', 1)[1].split('"', 1)[0]
        out[source] = out.get(source, 0.0) + float(value)
    return out


def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PITSTOP_")} | env
    done = subprocess.run(
        [str(PITSTOP), *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"pitstop {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


# -- counting in the database ---------------------------------------------------------------------------


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection[Any] | None = None
        self.ids: dict[tuple[str, str], int] = {}

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        try:
            return self.conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
            self.conn = None
            raise

    def load_ids(self) -> None:
        rows = self.query("select a.name, s.name, s.id from sensors s join assets a on a.id = s.asset_id")
        self.ids = {(a, s): i for a, s, i in rows}

    def stored(self, assets: tuple[str, ...], good: bool = True) -> int:
        ids = [i for (a, _), i in self.ids.items() if a in assets]
        op = ">=" if good else "<"
        sql = f"select count(*) from readings where sensor_id = any(%s) and ts {op} %s"
        return int(self.query(sql, (ids, GOOD_T0 * 1_000_000))[0][0])

    def stored_among(self, keys: list[tuple[str, str, int]]) -> int:
        if not keys:
            return 0
        sids = [self.ids[(a, s)] for a, s, _ in keys]
        tss = [t * 1_000_000 for _, _, t in keys]
        sql = (
            "select count(*) from readings r join unnest(%s::int[], %s::bigint[]) as k(s, t)"
            " on r.sensor_id = k.s and r.ts = k.t"
        )
        return int(self.query(sql, (sids, tss))[0][0])

    def values(self, keys: list[tuple[str, str, int]]) -> dict[tuple[str, str, int], float]:
        out = {}
        by_id = {i: k for k, i in self.ids.items()}
        for a, s, t in keys:
            rows = self.query(
                "select sensor_id, ts, value from readings where sensor_id = %s and ts = %s",
                (self.ids[(a, s)], t * 1_000_000),
            )
            for sid, ts, value in rows:
                out[(*by_id[sid], ts // 1_000_000)] = value
        return out

    def totals(self) -> tuple[int, int]:
        rows = self.query("select (select count(*) from readings), (select count(*) from quarantine)")
        return int(rows[0][0]), int(rows[0][1])

    def quarantine(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for source, reason, n in self.query("select source, reason, count(*) from quarantine group by 1, 2"):
            out.setdefault(source, {})[reason] = int(n)
        return out


# -- the run --------------------------------------------------------------------------------------------


class Monitor(threading.Thread):
    """Every 2 s: the server's metrics (readings stored per source, summed over its lives, for
    stalls) and its RSS; notes when `pitstop serve` exits without being killed."""

    def __init__(self, serve: Serve, started: float) -> None:
        super().__init__(name="soak-monitor", daemon=True)
        self.serve, self.started = serve, started
        self.stop = threading.Event()
        self.progress: list[tuple[float, float, float]] = []  # (s, mqtt stored, http stored)
        self.rss: list[tuple[float, int, float]] = []  # (s, pid, MB)
        self.exits: list[str] = []
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.wait(2.0):
            with self.lock:
                server = self.serve.server
                if server is None:
                    continue
                t = round(now() - self.started, 1)
                code = server.process.poll()
                if code is not None:
                    if not self.exits or not self.exits[-1].startswith(f"pid {server.process.pid} "):
                        self.exits.append(f"pid {server.process.pid} exited with {code} at {t} s")
                    continue
                self.serve.scrape()
                stored: Counter[str] = Counter()
                for life in self.serve.lives:
                    stored.update(metric_sums(life["metrics"], "pitstop_readings_stored_total"))
                self.progress.append((t, stored.get("mqtt", 0.0), stored.get("http", 0.0)))
                rss = self.serve.rss_mb()
                if rss is not None:
                    self.rss.append((t, self.serve.life["pid"], rss))

    def longest_flat(self, column: int, until: float) -> float:
        """The longest time (s) in which a path stored nothing (by the server's own count), up to `until`."""
        longest, since, last = 0.0, 0.0, -1.0
        for sample in self.progress:
            t, value = sample[0], sample[column]
            if t > until:
                break
            if value > last:
                since, last = t, value
            longest = max(longest, t - since)
        return round(max(longest, until - since), 1)


def run(minutes: float, rate: float, keep: bool) -> dict[str, Any]:
    duration = minutes * 60
    root = Path(tempfile.mkdtemp(prefix="pitstop-soak-"))
    root.chmod(0o755)
    result: dict[str, Any] = {
        "bench": "soak",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "source": source_state(),
        "config": {
            "minutes": minutes,
            "rate_readings_per_s": rate,
            "mqtt": f"2 publishers, QoS 1, messages of 1 or {MQTT_LIST} readings, assets {', '.join(MQTT_ASSETS)}",
            "http": f"2 clients, JSON lists of {HTTP_BATCH}, assets {', '.join(HTTP_ASSETS)}",
            "poison": f"1 in {POISON_EVERY} per path, kinds in turn: {', '.join(KINDS)}",
        },
    }
    cluster = PostgresCluster(root)
    broker = Mosquitto(root)
    serve: Serve | None = None
    senders: list[MqttSender | HttpSender] = []
    store: Store | None = None
    try:
        cluster.init()
        cluster.pg_ctl("start")
        broker.start()
        prefix = f"soak-{uuid.uuid4().hex[:8]}"
        env = {
            "PITSTOP_DATA_DIR": str(root / "data"),
            "PITSTOP_DATABASE_URL": cluster.url,
            "PITSTOP_SCHEDULER__ENABLED": "false",
            "PITSTOP_LOG__LEVEL": "WARNING",
            "PITSTOP_MQTT__HOST": "127.0.0.1",
            "PITSTOP_MQTT__PORT": str(broker.port),
            "PITSTOP_MQTT__TOPIC_PREFIX": prefix,
            "PITSTOP_MQTT__CLIENT_ID": prefix,
        }
        cli(env, root, "db", "upgrade")
        cli(env, root, "assets", "load", str(DEMO_INVENTORY))
        token = cli(env, root, "keys", "create", "--role", "operator", "--name", "soak").strip().splitlines()[-1]
        store = Store(cluster.url)
        store.load_ids()
        sensors = demo_sensors()
        mqtt_sensors = [s for s in sensors if s.asset in MQTT_ASSETS]
        http_sensors = [s for s in sensors if s.asset in HTTP_ASSETS]

        serve = Serve(env, root)
        first_ready = serve.start()
        mqtt, http = Tally(), Tally()
        mqtt_poison_clock, http_poison_clock = PoisonClock(0), PoisonClock(SENDER_SPAN)
        for i in range(2):
            senders.append(MqttSender(i, broker.port, prefix, mqtt_sensors, rate / 4, mqtt, mqtt_poison_clock))
            senders.append(HttpSender(i, serve.url, token, http_sensors, rate / 4, http, http_poison_clock))
        for sender in senders:
            if isinstance(sender, MqttSender) and not sender.connected.wait(10):
                raise RuntimeError("the MQTT publisher did not connect")
        started = now()
        monitor = Monitor(serve, started)
        for sender in senders:
            sender.start()
        monitor.start()

        warm = max(10.0, min(60.0, 0.1 * duration))
        faults: list[dict[str, Any]] = []
        rss: dict[str, Any] = {"warm_up_s": warm, "first_start_ready_s": round(first_ready, 1)}

        def at(fraction: float) -> None:
            time.sleep(max(0.0, started + fraction * duration - now()))

        def elapsed() -> float:
            return round(now() - started, 1)

        def rss_now() -> float | None:
            with monitor.lock:
                return serve.rss_mb() if serve is not None else None

        # first life: RSS after warm-up, then SIGKILL and a restart
        time.sleep(max(0.0, min(warm, 0.2 * duration - 1) - (now() - started)))
        rss["first_life_after_warm_up_mb"] = rss_now()
        at(0.2)
        rss["first_life_before_kill_mb"] = rss_now()
        t = elapsed()
        with monitor.lock:
            serve.kill()
        ready = serve.start()
        faults.append({"fault": "pitstop serve SIGKILL and restart", "at_s": t, "ready_again_s": round(ready, 1)})
        restarted = now()

        time.sleep(max(0.0, restarted + warm - now()))
        rss["after_warm_up_mb"] = rss_now()
        rss["after_warm_up_at_s"] = elapsed()

        at(0.45)
        t = elapsed()
        broker.stop()
        time.sleep(3)
        broker.start()
        back = round(elapsed() - t, 1)
        faults.append({"fault": "mosquitto stop, 3 s down, start (same port)", "at_s": t, "back_s": back})

        at(0.7)
        t = elapsed()
        cluster.pg_ctl("restart", "-m", "fast")
        faults.append({"fault": "postgresql pg_ctl restart -m fast", "at_s": t, "back_s": round(elapsed() - t, 1)})

        at(1.0)
        traffic_s = now() - started
        for sender in senders:
            sender.stop.set()
            if isinstance(sender, HttpSender):
                sender.give_up_at = now() + 30
        for sender in senders:
            sender.join(timeout=60)
        deadline = now() + 30
        for sender in senders:
            if isinstance(sender, MqttSender):
                sender.finish(deadline)
        sent_done = now()

        # drain: until nothing grows for 6 s, or everything expected is there (at most 60 s)
        expected_good = mqtt.good + http.good
        last: tuple[int, int] | None = None
        flat_since = now()
        drain_deadline = now() + 60
        while now() < drain_deadline:
            try:
                totals = store.totals()
            except psycopg.Error:
                time.sleep(1)
                continue
            if totals != last:
                last, flat_since = totals, now()
            spool = metric_sums(serve.life["metrics"], "pitstop_ingest_spool_bytes").get("", 0.0)
            done_good = store.stored(MQTT_ASSETS) + store.stored(HTTP_ASSETS) >= expected_good
            if now() - flat_since >= 6 or (done_good and now() - flat_since >= 2 and spool == 0):
                break
            time.sleep(1)
        drain_s = now() - sent_done
        monitor.stop.set()
        monitor.join(timeout=10)
        serve.scrape()
        rss["end_mb"] = rss_now()
        rss["end_at_s"] = elapsed()
        second_life = [mb for _, pid, mb in monitor.rss if pid == serve.life["pid"]]
        rss["samples_second_life"] = second_life[:: max(1, len(second_life) // 20)]

        # counting
        mqtt_stored = store.stored(MQTT_ASSETS)
        http_stored = store.stored(HTTP_ASSETS)
        poison_stored = store.stored(MQTT_ASSETS + HTTP_ASSETS, good=False)
        quarantine = store.quarantine()
        mqtt_q = quarantine.get("mqtt", {})
        http_q = {}
        for source, reasons in quarantine.items():
            if source.startswith("http"):
                for reason, n in reasons.items():
                    http_q[reason] = http_q.get(reason, 0) + n
        reasons: Counter[str] = Counter()
        for r in quarantine.values():
            reasons.update(r)

        def path(tally: Tally, stored: int, q: dict[str, int], empties: int, flat_col: int) -> dict[str, Any]:
            stored_unconfirmed = store.stored_among(tally.unconfirmed)
            kept = store.values([(a, s, t) for a, s, t, _, _ in tally.conflicts])
            kept_first = sum(1 for a, s, t, first, _ in tally.conflicts if kept.get((a, s, t)) == first)
            expected_q = tally.poison_rows + empties
            out: dict[str, Any] = {
                "messages" if tally is mqtt else "requests": tally.messages,
                "good_readings_sent": tally.good,
                "poison_sent": dict(sorted(tally.poison.items())),
                "poison_sent_total": sum(tally.poison.values()),
                "unconfirmed_readings": len(tally.unconfirmed),
                "unconfirmed_but_stored": stored_unconfirmed,
                "stored": stored,
                "lost": tally.good - (stored - stored_unconfirmed),
                "quarantined": dict(sorted(q.items())),
                "quarantined_total": sum(q.values()),
                "quarantine_rows_expected": expected_q,
                "conflicts_sent": len(tally.conflicts),
                "conflicts_quarantined": q.get("conflict", 0),
                "conflicts_first_value_kept": kept_first,
                "good_readings_per_s": round(tally.good / traffic_s),
                "longest_nothing_stored_s": monitor.longest_flat(flat_col, traffic_s),
            }
            return out

        mqtt_out = path(mqtt, mqtt_stored, mqtt_q, len(mqtt.empty_topics), 1)
        http_out = path(http, http_stored, http_q, 1 if http.poison.get("empty") else 0, 2)
        http_out.update(
            retries=http.retries,
            status=dict(sorted(http.status.items())),
            http_5xx=len(http.errors_5xx),
            http_5xx_examples=http.errors_5xx[:5],
            unexpected_status=http.unexpected[:5],
            duplicates_answered=http.duplicates_answered,
        )
        duplicates: dict[str, float] = {}
        stored_metric: dict[str, float] = {}
        for life in serve.lives:
            for source, v in metric_sums(life["metrics"], "pitstop_readings_duplicate_total").items():
                duplicates[source] = duplicates.get(source, 0) + v
            for source, v in metric_sums(life["metrics"], "pitstop_readings_stored_total").items():
                stored_metric[source] = stored_metric.get(source, 0) + v
        lost = mqtt_out["lost"] + http_out["lost"]
        growth = None
        if rss.get("after_warm_up_mb") and rss.get("end_mb"):
            growth = round(100 * (rss["end_mb"] - rss["after_warm_up_mb"]) / rss["after_warm_up_mb"], 1)
        rss["growth_pct"] = growth
        conflicts = mqtt_out["conflicts_sent"] + http_out["conflicts_sent"]
        conflicts_q = mqtt_out["conflicts_quarantined"] + http_out["conflicts_quarantined"]
        stall = max(mqtt_out["longest_nothing_stored_s"], http_out["longest_nothing_stored_s"])
        targets = {
            "lost": {"value": lost, "target": "0", "ok": lost == 0},
            "http_5xx": {"value": http_out["http_5xx"], "target": "0", "ok": http_out["http_5xx"] == 0},
            "rss_growth_pct": {"value": growth, "target": "< 10", "ok": growth is not None and growth < 10},
            "poison_stored": {"value": poison_stored, "target": "0", "ok": poison_stored == 0},
            "conflicts_quarantined": {
                "value": conflicts_q,
                "target": f"= conflicts sent ({conflicts})",
                "ok": conflicts_q == conflicts,
            },
            "longest_nothing_stored_s": {
                "value": stall,
                "target": "< 30 on either path (each fault stops a path for a few seconds)",
                "ok": stall < 30,
            },
        }
        result.update(
            {
                "traffic_s": round(traffic_s, 1),
                "drain_s": round(drain_s, 1),
                "faults": faults,
                "mqtt": mqtt_out,
                "http": http_out,
                "store": {
                    "readings": store.totals()[0],
                    "quarantined_by_reason": dict(sorted(reasons.items())),
                    "quarantined_by_source": quarantine,
                    "poison_readings_stored": poison_stored,
                },
                "sent": {
                    "good_readings": mqtt.good + http.good,
                    "poison_messages": sum(mqtt.poison.values()) + sum(http.poison.values()),
                    "poison_rows": mqtt.poison_rows + http.poison_rows,
                },
                "stored": mqtt_stored + http_stored,
                "lost": lost,
                "http_5xx": http_out["http_5xx"],
                "duplicates": {
                    "from_metrics": duplicates,
                    "note": "pitstop_readings_duplicate_total summed over both serve processes (scraped at the kill)",
                },
                "stored_metric": stored_metric,
                "rates": {
                    "good_readings_per_s": round((mqtt.good + http.good) / traffic_s),
                    "stored_readings_per_s": round((mqtt_stored + http_stored) / traffic_s),
                    "mqtt_messages_per_s": round(mqtt.messages / traffic_s),
                    "http_requests_per_s": round(http.messages / traffic_s),
                },
                "rss_mb": rss,
                "targets": targets,
                "ok": all(t["ok"] for t in targets.values()),
                "sender_errors": [f"{s.name}: {s.error}" for s in senders if s.error],
                "serve_exited_on_its_own": monitor.exits,
            }
        )
        if not result["ok"] or result["sender_errors"] or monitor.exits:
            lines = serve.output + (serve.server.output if serve.server else [])
            result["serve_log_tail"] = [line.rstrip() for line in lines][-30:]
        return result
    finally:
        for sender in senders:
            sender.stop.set()
            if isinstance(sender, MqttSender):
                with contextlib.suppress(Exception):
                    sender.client.loop_stop()
        if serve is not None:
            serve.close()
        if store is not None and store.conn is not None:
            store.conn.close()
        broker.stop()
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            cluster.pg_ctl("stop", "-m", "immediate")
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    short = __doc__.split("Starts everything")[0] + "What it does and prints: the top of bench/soak.py."
    parser = argparse.ArgumentParser(description=short, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="minutes of traffic (default 10)")
    parser.add_argument("--rate", type=float, default=3000, help="good readings/s in total (default 3000)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = parser.parse_args()
    for tool in ("mosquitto",):
        if shutil.which(tool) is None:
            print(json.dumps({"skipped": True, "reason": f"{tool} is not installed"}))
            return
    if not (PG_BIN / "initdb").exists():
        print(json.dumps({"skipped": True, "reason": f"PostgreSQL 15 server binaries not found in {PG_BIN}"}))
        return
    try:
        result = run(args.minutes, args.rate, args.keep)
    except Exception as exc:  # the set-up or a fault failed: still JSON, and a failing status
        print(json.dumps({"bench": "soak", "ok": False, "error": f"{type(exc).__name__}: {exc}"}, indent=2))
        sys.exit(2)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    sys.exit(1 if result["lost"] > 0 or result["http_5xx"] > 0 else 0)


if __name__ == "__main__":
    main()
