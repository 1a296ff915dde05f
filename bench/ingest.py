"""End-to-end ingest speed: file import (CSV, Parquet), HTTP push and MQTT, into SQLite and PostgreSQL.

    python bench/ingest.py                       # small sizes, about 2 minutes on 2 cores
    python bench/ingest.py --only sqlite --parts http mqtt
    python bench/ingest.py --file-readings 10000000 --http-readings 10000000 --mqtt-messages 200000

Prints JSON: readings/s (messages/s for MQTT) and the peak memory (RSS) of the process doing the
ingest. File import runs in this process. HTTP runs against `pitstop serve` in a subprocess with a
bounded load generator here (4 requests in flight, bodies of 1,000 readings as a JSON list, a wide
JSON batch and long CSV). MQTT runs on a Mosquitto of the bench's own (`--parts` without mqtt when
mosquitto is not installed): `pitstop serve` subscribed while a raw-socket QoS 1 publisher sends
one reading per message ("live"), then a backlog published while the subscriber was away and
drained by it (1 and 10 readings per message), and mosquitto_sub taking the same live stream as
the peer (the broker's and this machine's ceiling).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import orjson
import psutil
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pitstop import inventory
from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Role
from pitstop.ingest.files import ingest_file
from pitstop.testing.services import scratch_postgres_database

SENSORS = 100
T0 = 1_700_000_000


def inventory_toml() -> str:
    sensors = ", ".join(f'{{ name = "s{i:03d}", period_s = 1 }}' for i in range(SENSORS))
    return (
        f'[[sites]]\nname = "bench"\n[[assets]]\nname = "m1"\nsite = "bench"\ntype = "machine"\nsensors = [{sensors}]\n'
    )


class PeakRss:
    """Samples the RSS of a process every 20 ms; `peak_mb` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def make_table(readings: int, offset: int = 0) -> pa.Table:
    steps = readings // SENSORS
    ts = np.repeat(np.arange(steps, dtype=np.int64) + T0 + offset, SENSORS)
    iso = np.datetime_as_string(ts.astype("datetime64[s]"), unit="s")
    sensor = np.tile(np.array([f"s{i:03d}" for i in range(SENSORS)], dtype=object), steps)
    value = np.random.default_rng(7).normal(20, 5, len(ts)).round(3)
    return pa.table(
        {
            "ts": pa.array(np.char.add(iso, "Z")),
            "asset": pa.array(np.full(len(ts), "m1", dtype=object)),
            "sensor": pa.array(sensor),
            "value": pa.array(value),
        }
    )


def prepare(settings: Settings) -> str:
    pitstop = build(settings)
    pitstop.db.upgrade()
    inventory.apply(
        pitstop.db, inventory.parse(inventory_toml(), "bench", "toml"), actor="bench", now=pitstop.clock.now()
    )
    _, token = pitstop.keys.create("bench", Role.OPERATOR, pitstop.clock.now())
    pitstop.close()
    return token


def bench_files(settings: Settings, readings: int, work: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for fmt, offset in (("csv", 0), ("parquet", readings)):
        path = work / f"readings.{fmt}"
        table = make_table(readings, offset)
        if fmt == "csv":
            pacsv.write_csv(table, path)
        else:
            pq.write_table(table, path, row_group_size=250_000)
        del table
        pitstop = build(settings)
        with PeakRss(os.getpid()) as rss:
            start = time.perf_counter()
            result = ingest_file(pitstop.ingest, path, chunk_rows=settings.ingest.chunk_rows)
            seconds = time.perf_counter() - start
        pitstop.close()
        assert result.stored == readings, result
        out[fmt] = {
            "readings": readings,
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "seconds": round(seconds, 2),
            "readings_per_s": round(readings / seconds),
            "peak_rss_mb": rss.peak_mb,
        }
        path.unlink()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("PITSTOP_")}, **env}
    full["PITSTOP_SCHEDULER__ENABLED"] = "false"
    full["PITSTOP_LOG__LEVEL"] = "WARNING"
    proc = subprocess.Popen([sys.executable, "-m", "pitstop", "serve", "--port", str(port)], env=full)
    try:
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def http_bodies(readings: int, shape: str, first: int) -> list[bytes]:
    """Bodies of 1,000 readings (10 time steps x 100 sensors): a JSON list, one asset's wide JSON
    batch, or long CSV."""
    steps = 10
    bodies = []
    for b in range(readings // 1000):
        base = T0 + first + b * steps
        if shape == "json":
            rows: object = [
                {"ts": base + t, "asset": "m1", "sensor": f"s{s:03d}", "value": 20.5}
                for t in range(steps)
                for s in range(SENSORS)
            ]
            bodies.append(json.dumps(rows).encode())
        elif shape == "json_wide":
            wide = [{"ts": base + t, **{f"s{s:03d}": 20.5 for s in range(SENSORS)}} for t in range(steps)]
            bodies.append(json.dumps({"asset": "m1", "rows": wide}).encode())
        else:
            lines = "".join(f"{base + t},m1,s{s:03d},20.5\n" for t in range(steps) for s in range(SENSORS))
            bodies.append(("ts,asset,sensor,value\n" + lines).encode())
    return bodies


def bench_http(env: dict[str, str], token: str, readings: int) -> dict[str, object]:
    port = _free_port()
    out: dict[str, object] = {"batch": 1000, "in_flight": 4}
    with (
        serve(env, port) as proc,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"X-API-Key": token},
            limits=httpx.Limits(max_connections=4),
            timeout=60,
        ) as client,
    ):
        for n, shape in enumerate(("json", "json_wide", "csv")):
            bodies = http_bodies(readings, shape, 30_000_000 + 10_000_000 * n)  # clear of the MQTT part
            ctype = "text/csv" if shape == "csv" else "application/json"

            def push(body: bytes, ctype: str = ctype) -> int:
                response = client.post("/api/readings", content=body, headers={"Content-Type": ctype})
                response.raise_for_status()
                return int(response.json()["stored"])

            push(bodies[0])  # warm up (first import, first connection)
            with PeakRss(proc.pid) as rss, ThreadPoolExecutor(4) as pool:
                start = time.perf_counter()
                stored = sum(pool.map(push, bodies[1:]))
                seconds = time.perf_counter() - start
            assert stored == len(bodies[1:]) * 1000, stored
            out[shape] = {
                "readings": stored,
                "seconds": round(seconds, 2),
                "readings_per_s": round(stored / seconds),
                "server_peak_rss_mb": rss.peak_mb,
            }
    return out


class RawPublisher:
    """A bounded MQTT load generator that costs next to nothing: PUBLISH packets (MQTT 3.1.1, QoS 1)
    built up front and written with `sendall` in chunks, at most `window` unacknowledged; a reader
    thread counts the PUBACKs. paho's `publish` costs tens of microseconds of Python per message,
    which on two cores would be measured instead of the subscriber."""

    def __init__(self, port: int, client_id: str, window: int = 5000, chunk: int = 500) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(cid)) + cid  # clean session, keepalive 60
        self.sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = self.sock.recv(4)
        assert connack[:1] == b"\x20" and connack[3:4] == b"\x00", connack
        self.window, self.chunk = window, chunk
        self.acked = 0
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        rest = b""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:  # closed by `close`
                return
            if not data:
                return
            rest += data
            whole = len(rest) // 4  # PUBACK: 0x40 0x02 mid(2)
            rest = rest[whole * 4 :]
            with self._cond:
                self.acked += whole
                self._cond.notify_all()

    @staticmethod
    def packets(topic: str, payloads: list[bytes]) -> list[bytes]:
        t = topic.encode()
        head = struct.pack("!H", len(t)) + t
        out = []
        for i, payload in enumerate(payloads):
            body = head + struct.pack("!H", i % 65535 + 1) + payload
            out.append(b"\x32" + _varint(len(body)) + body)
        return out

    def send(self, packets: list[bytes]) -> float:
        """Send all, return the seconds until the broker acknowledged the last one."""
        start = time.perf_counter()
        base = self.acked
        for i in range(0, len(packets), self.chunk):
            with self._cond:
                self._cond.wait_for(lambda i=i: i - (self.acked - base) < self.window, timeout=60)  # type: ignore[misc]
            self.sock.sendall(b"".join(packets[i : i + self.chunk]))
        with self._cond:
            self._cond.wait_for(lambda: self.acked - base >= len(packets), timeout=120)
        return time.perf_counter() - start

    def close(self) -> None:
        self.sock.sendall(b"\xe0\x00")
        self.sock.close()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


@contextmanager
def own_mosquitto(work: Path) -> Iterator[int | None]:
    """A Mosquitto of the bench's own on a free port (unbounded queues, no persistence), so that a
    publisher faster than the subscriber is queued, not dropped at the shared broker's 1,000-message
    cap, and the shared broker is left alone. None when mosquitto is not installed."""
    if shutil.which("mosquitto") is None:
        yield None
        return
    port = _free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 10000000\nmax_inflight_messages 1000\nlog_dest none\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _wait_count(count: Callable[[], int], target: int, start: float, limit: float = 300) -> float:
    while count() < target and time.perf_counter() - start < limit:
        time.sleep(0.02)
    return time.perf_counter() - start


def _payloads(first: int, messages: int, per_message: int) -> list[bytes]:
    base = T0 + 20_000_000 + first
    if per_message == 1:
        return [b'{"ts": %d, "value": 1.5}' % (base + m) for m in range(messages)]
    return [
        orjson.dumps([{"ts": base + m * per_message + i, "value": 1.5} for i in range(per_message)])
        for m in range(messages)
    ]


def bench_mqtt(env: dict[str, str], settings: Settings, messages: int, work: Path) -> dict[str, object] | str:
    with own_mosquitto(work) as broker_port:
        if broker_port is None:
            return "skipped: mosquitto is not installed"
        return _bench_mqtt(env, settings, messages, broker_port)


def _bench_mqtt(env: dict[str, str], settings: Settings, messages: int, broker: int) -> dict[str, object]:
    from pitstop.config.models import MqttSettings
    from pitstop.ingest.mqtt import MqttSubscriber

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}/bench/m1/s000"
    pitstop = build(settings)
    sensor = pitstop.assets.sensor_index()[("m1", "s000")].id
    out: dict[str, object] = {"broker": "mosquitto of the bench's own (max_queued_messages 10M), QoS 1"}

    # 1. live: `pitstop serve` subscribed while the publisher sends, one reading per message
    env = {
        **env,
        "PITSTOP_MQTT__TOPIC_PREFIX": prefix,
        "PITSTOP_MQTT__CLIENT_ID": prefix,
        "PITSTOP_MQTT__PORT": str(broker),
    }
    port = _free_port()
    packets = RawPublisher.packets(topic, _payloads(0, messages, 1))
    with serve(env, port) as proc:
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).json()["checks"].get("mqtt") == "ok":
                break
            time.sleep(0.2)
        time.sleep(0.5)
        pub = RawPublisher(broker, f"{prefix}-pub")
        before = pitstop.readings.count(sensor)
        with PeakRss(proc.pid) as rss:
            start = time.perf_counter()
            published = pub.send(packets)
            seconds = _wait_count(lambda: pitstop.readings.count(sensor) - before, messages, start)
        pub.close()
        stored = pitstop.readings.count(sensor) - before
        received = _metric(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, "pitstop_mqtt_messages_total")
    out["live"] = {
        "messages": messages,
        "readings_per_message": 1,
        "received": received,
        "stored": stored,
        "publish_seconds": round(published, 2),
        "seconds": round(seconds, 2),
        "messages_per_s": round(stored / seconds),
        "readings_per_s": round(stored / seconds),
        "server_peak_rss_mb": rss.peak_mb,
    }

    # 2. backlog: published while pitstop was away, then drained (the subscriber in this process)
    for per_message in (1, 10):
        mqtt = MqttSettings(topic_prefix=prefix, client_id=f"{prefix}-b{per_message}", port=broker)
        subscriber = MqttSubscriber(mqtt, pitstop.ingest, pitstop.metrics)
        subscriber.start()
        _wait_count(lambda s=subscriber: int(s.state() == "ok"), 1, time.perf_counter(), 30)  # type: ignore[misc]
        time.sleep(0.3)
        subscriber.stop()  # the session stays at the broker and collects what is published now
        first = messages * (1 + per_message)
        pub = RawPublisher(broker, f"{prefix}-pub")
        published = pub.send(RawPublisher.packets(topic, _payloads(first, messages, per_message)))
        pub.close()
        before = pitstop.readings.count(sensor)
        subscriber = MqttSubscriber(mqtt, pitstop.ingest, pitstop.metrics)
        start = time.perf_counter()
        subscriber.start()
        readings = messages * per_message
        seconds = _wait_count(lambda b=before: pitstop.readings.count(sensor) - b, readings, start)  # type: ignore[misc]
        subscriber.stop()
        stored = pitstop.readings.count(sensor) - before
        out[f"backlog_{per_message}_per_message"] = {
            "messages": messages,
            "readings_per_message": per_message,
            "stored": stored,
            "publish_seconds": round(published, 2),
            "seconds": round(seconds, 2),
            "messages_per_s": round(messages * stored / readings / seconds),
            "readings_per_s": round(stored / seconds),
        }
    pitstop.close()

    # 3. peer: mosquitto_sub (C, libmosquitto) taking the same messages live, QoS 1, to /dev/null
    if shutil.which("mosquitto_sub"):
        peer_topic = f"{prefix}-peer/bench/m1/s000"
        sub = subprocess.Popen(
            ["mosquitto_sub", "-p", str(broker), "-t", peer_topic, "-q", "1", "-V", "5", "-C", str(messages)],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        pub = RawPublisher(broker, f"{prefix}-pub")
        start = time.perf_counter()
        published = pub.send(RawPublisher.packets(peer_topic, _payloads(0, messages, 1)))
        sub.wait(timeout=300)
        seconds = time.perf_counter() - start
        pub.close()
        out["peer_mosquitto_sub_live"] = {
            "messages": messages,
            "publish_seconds": round(published, 2),
            "seconds": round(seconds, 2),
            "messages_per_s": round(messages / seconds),
        }
    return out


def run(url: str | None, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="pitstop-bench-") as tmp:
        work = Path(tmp)
        database = {"url": url} if url else {}
        settings = Settings(data_dir=work / "data", database=database)
        token = prepare(settings)
        env = {"PITSTOP_DATA_DIR": str(work / "data")}
        if url:
            env["PITSTOP_DATABASE_URL"] = url
        result: dict[str, object] = {}
        if "files" in args.parts:
            result["files"] = bench_files(settings, args.file_readings, work)
        if "http" in args.parts:
            result["http"] = bench_http(env, token, args.http_readings)
        if "mqtt" in args.parts:
            result["mqtt"] = bench_mqtt(env, settings, args.mqtt_messages, work)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file-readings", type=int, default=1_000_000)
    parser.add_argument("--http-readings", type=int, default=200_000)
    parser.add_argument("--mqtt-messages", type=int, default=50_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument(
        "--parts", nargs="+", choices=["files", "http", "mqtt"], default=["files", "http", "mqtt"], help="what to run"
    )
    args = parser.parse_args()
    report: dict[str, object] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "sizes": vars(args),
        "targets": {"file_readings_per_s": 300_000, "http_readings_per_s": 100_000, "mqtt_messages_per_s": 20_000},
    }
    runs: list[tuple[str, Callable[[], dict[str, object]]]] = []
    if args.only in (None, "sqlite"):
        runs.append(("sqlite", lambda: run(None, args)))
    if args.only in (None, "postgresql"):

        def on_postgres() -> dict[str, object]:
            with scratch_postgres_database() as url:
                return run(url, args)

        runs.append(("postgresql", on_postgres))
    for name, fn in runs:
        report[name] = fn()
        print(json.dumps({name: report[name]}), file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
