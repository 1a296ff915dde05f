"""End-to-end ingest speed: file import (CSV, Parquet), HTTP push and MQTT, into SQLite and PostgreSQL.

    python bench/ingest.py                       # small sizes, about 3 minutes on 2 cores
    python bench/ingest.py --file-readings 10000000 --http-readings 10000000 --mqtt-messages 200000

Prints JSON: readings/s (messages/s for MQTT) and the peak memory (RSS) of the process doing the
ingest. File import runs in this process; HTTP and MQTT run against `pitstop serve` in a subprocess,
with a bounded load generator here (4 requests in flight, batches of 1,000 readings) and a paho
publisher (QoS 1, one reading per message) on the local Mosquitto.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
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


def bench_http(env: dict[str, str], token: str, readings: int) -> dict[str, object]:
    port = _free_port()
    steps = 10
    bodies = []
    for b in range(readings // 1000):
        base = T0 + 10_000_000 + b * steps
        bodies.append(
            json.dumps(
                [
                    {"ts": base + t, "asset": "m1", "sensor": f"s{s:03d}", "value": 20.5}
                    for t in range(steps)
                    for s in range(SENSORS)
                ]
            ).encode()
        )
    with (
        serve(env, port) as proc,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"X-API-Key": token, "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=4),
            timeout=60,
        ) as client,
    ):
        client.post("/api/readings", content=bodies[0])  # warm up (first import, first connection)

        def push(body: bytes) -> int:
            response = client.post("/api/readings", content=body)
            response.raise_for_status()
            return int(response.json()["stored"])

        with PeakRss(proc.pid) as rss, ThreadPoolExecutor(4) as pool:
            start = time.perf_counter()
            stored = sum(pool.map(push, bodies[1:]))
            seconds = time.perf_counter() - start
    assert stored == len(bodies[1:]) * 1000, stored
    return {
        "readings": stored,
        "batch": 1000,
        "in_flight": 4,
        "seconds": round(seconds, 2),
        "readings_per_s": round(stored / seconds),
        "server_peak_rss_mb": rss.peak_mb,
    }


def bench_mqtt(env: dict[str, str], settings: Settings, messages: int) -> dict[str, object] | str:
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion

    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
    except OSError:
        return "skipped: no MQTT broker at 127.0.0.1:1883"
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**env, "PITSTOP_MQTT__TOPIC_PREFIX": prefix, "PITSTOP_MQTT__CLIENT_ID": prefix}
    pitstop = build(settings)
    sensor = pitstop.assets.sensor_index()[("m1", "s000")].id
    port = _free_port()
    with serve(env, port) as proc:
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).json()["checks"].get("mqtt") == "ok":
                break
            time.sleep(0.2)
        time.sleep(0.5)
        pub = Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub")
        pub.max_inflight_messages_set(1000)
        pub.max_queued_messages_set(0)
        pub.connect("127.0.0.1", 1883)
        pub.loop_start()
        base = T0 + 20_000_000
        before = pitstop.readings.count(sensor)
        with PeakRss(proc.pid) as rss:
            start = time.perf_counter()
            for m in range(messages):
                pub.publish(f"{prefix}/bench/m1/s000", f'{{"ts": {base + m}, "value": 1.5}}', qos=1)
            published = time.perf_counter() - start
            while pitstop.readings.count(sensor) - before < messages and time.perf_counter() - start < 600:
                time.sleep(0.1)
            seconds = time.perf_counter() - start
        pub.loop_stop()
        pub.disconnect()
    stored = pitstop.readings.count(sensor) - before
    pitstop.close()
    return {
        "messages": messages,
        "stored": stored,
        "publish_seconds": round(published, 2),
        "seconds": round(seconds, 2),
        "messages_per_s": round(stored / seconds),
        "server_peak_rss_mb": rss.peak_mb,
    }


def run(url: str | None, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="pitstop-bench-") as tmp:
        work = Path(tmp)
        database = {"url": url} if url else {}
        settings = Settings(data_dir=work / "data", database=database)
        token = prepare(settings)
        env = {"PITSTOP_DATA_DIR": str(work / "data")}
        if url:
            env["PITSTOP_DATABASE_URL"] = url
        result: dict[str, object] = {"files": bench_files(settings, args.file_readings, work)}
        result["http"] = bench_http(env, token, args.http_readings)
        result["mqtt"] = bench_mqtt(env, settings, args.mqtt_messages)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file-readings", type=int, default=1_000_000)
    parser.add_argument("--http-readings", type=int, default=200_000)
    parser.add_argument("--mqtt-messages", type=int, default=10_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
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
