"""Checks against real things: the host, local servers started here, the broker, PostgreSQL."""

from __future__ import annotations

import http.server
import json
import os
import socket
import socketserver
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pitstop.app import Pitstop
from pitstop.config.health import CheckSettings, HealthSettings, ThresholdSettings
from pitstop.core.types import Status, to_epoch_us
from pitstop.errors import ConfigError
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold, checks
from pitstop.health.runner import CheckRunner
from pitstop.health.specs import CheckSpec, resolve
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import MQTT_HOST, MQTT_PORT, port_open, unavailable


def ctx_of(pitstop: Pitstop) -> CheckContext:
    return pitstop.health.context


def run(pitstop: Pitstop, check: str, target: str, **params: Any) -> CheckResult:
    (result,) = CheckRunner([CheckSpec(check, target, params=params)], workers=1).run(ctx_of(pitstop))
    return result


def test_host_checks(pitstop: Pitstop, tmp_path: Path) -> None:
    cpu = run(pitstop, "cpu", "localhost")
    assert cpu.status is not Status.UNKNOWN and 0 <= cpu.observed["cpu_pct"] <= 100
    mem = run(pitstop, "memory", "localhost")
    assert 0 < mem.observed["mem_pct"] < 100
    disk = run(pitstop, "disk", str(tmp_path))
    assert disk.observed["free_bytes"] > 0 and disk.issue_key == "disk.low"
    assert disk.incident_key == f"disk.low:{tmp_path}"
    assert run(pitstop, "disk", str(tmp_path / "nope")).status is Status.CRITICAL


def test_disk_thresholds_are_data(tmp_path: Path) -> None:
    t = Threshold("free_pct", "below", warning=20, critical=10, clear=25)
    assert [t.status(v) for v in (50, 20, 15, 10, 5)] == [
        Status.HEALTHY,
        Status.HEALTHY,
        Status.WARNING,
        Status.WARNING,
        Status.CRITICAL,
    ]
    assert t.is_clear(26) and not t.is_clear(22)
    with pytest.raises(ValueError):
        Threshold("free_pct", "below", warning=10, critical=20)


def test_process_checks(pitstop: Pitstop, tmp_path: Path) -> None:
    pidfile = tmp_path / "me.pid"
    pidfile.write_text(str(os.getpid()))
    assert run(pitstop, "process", "pytest", pidfile=str(pidfile)).status is Status.HEALTHY
    assert run(pitstop, "process", "ghost", pidfile=str(tmp_path / "none.pid")).status is Status.CRITICAL
    assert run(pitstop, "process", "true", command=[sys.executable, "-c", "pass"]).status is Status.HEALTHY
    down = run(pitstop, "process", "false", command=[sys.executable, "-c", "raise SystemExit(3)"])
    assert down.status is Status.CRITICAL and "exited 3" in down.summary
    assert run(pitstop, "process", "x", process="no-such-process-name").status is Status.CRITICAL
    with pytest.raises(ConfigError, match="exactly one"):
        CheckRunner([CheckSpec("process", "x", params={})])


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ok" if self.path == "/health" else "degraded", "queue": 3}).encode()
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_and_tcp_checks(pitstop: Pitstop, http_server: str) -> None:
    ok = run(pitstop, "http", f"{http_server}/health", json_field="status", expect="ok")
    assert ok.status is Status.HEALTHY and ok.observed["status_code"] == 200
    bad = run(pitstop, "http", f"{http_server}/other", json_field="status", expect="ok")
    assert bad.status is Status.CRITICAL and "degraded" in bad.summary
    assert run(pitstop, "http", f"{http_server}/q", json_field="queue").observed["queue"] == 3
    assert run(pitstop, "http", f"{http_server}/missing").status is Status.CRITICAL
    port = http_server.rsplit(":", 1)[1]
    tcp = run(pitstop, "tcp", f"127.0.0.1:{port}")
    assert tcp.status is Status.HEALTHY and tcp.observed["latency_ms"] >= 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert run(pitstop, "tcp", f"127.0.0.1:{closed}").status is Status.CRITICAL


class _Rtsp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = self.request.recv(4096)
        cseq = next(line for line in data.decode().split("\r\n") if line.startswith("CSeq"))
        self.request.sendall(f"RTSP/1.0 200 OK\r\n{cseq}\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n".encode())


def test_rtsp_options_round_trip(pitstop: Pitstop) -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Rtsp) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        result = run(pitstop, "rtsp", f"rtsp://127.0.0.1:{port}/stream")
        server.shutdown()
    assert result.status is Status.HEALTHY, result.summary
    assert "latency_ms" in result.observed


@pytest.mark.mqtt
def test_mqtt_round_trip(pitstop: Pitstop) -> None:
    if not port_open(MQTT_HOST, MQTT_PORT):
        unavailable("Mosquitto is not reachable at 127.0.0.1:1883")
    result = run(pitstop, "mqtt", f"{MQTT_HOST}:{MQTT_PORT}", topic_prefix=f"pitstop-test/{uuid.uuid4().hex}")
    assert result.status is Status.HEALTHY, result.summary


def test_database_and_postgres_checks(pitstop: Pitstop) -> None:
    assert run(pitstop, "database", "pitstop").status is Status.HEALTHY
    pg = run(pitstop, "postgres", "pitstop-db")
    if pitstop.db.dialect != "postgresql":
        assert pg.status is Status.UNKNOWN
        return
    assert pg.status is Status.HEALTHY, pg.summary
    assert pg.observed["size_bytes"] > 0 and "dead_tuple_ratio" in pg.observed
    assert "password" not in pg.summary
    bad = run(pitstop, "postgres", "nowhere", url="postgresql://nobody:secret@127.0.0.1:1/none", timeout_s=2)
    assert bad.status is Status.CRITICAL and "secret" not in bad.summary


def test_logfile_reads_incrementally_and_survives_rotation(
    pitstop: Pitstop, clock: FrozenClock, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("INFO start\nERROR old\n")
    (check,) = [c for _, c in CheckRunner([CheckSpec("logfile", str(log))], workers=1).instances]
    ctx = ctx_of(pitstop)
    assert check.run(ctx).observed["errors_window"] == 0  # starts at the end
    with log.open("a") as fh:
        fh.write("ERROR one\nINFO fine\nERROR two\nERROR partial")
    clock.advance(60)
    first = check.run(ctx)
    assert first.observed["new_errors"] == 2 and first.status is Status.WARNING
    assert first.observed["errors_per_min"] == 2
    with log.open("a") as fh:
        fh.write(" line\nERROR before rotation\n")
    log.rename(tmp_path / "app.log.1")
    log.write_text("ERROR after rotation\n")
    clock.advance(60)
    assert check.run(ctx).observed["new_errors"] == 3
    clock.advance(timedelta(hours=25))
    later = check.run(ctx)
    assert later.observed["errors_window"] == 0 and later.status is Status.HEALTHY


def test_freshness_per_sensor(demo_pitstop: Pitstop, clock: FrozenClock) -> None:
    pitstop = demo_pitstop
    sensors = pitstop.assets.sensors("pump-1")
    now = to_epoch_us(clock.now())
    pitstop.readings.write(ReadingBatch.of([s.id for s in sensors], [now] * len(sensors), [1.0] * len(sensors)))
    assert run(pitstop, "freshness", "pump-1").status is Status.HEALTHY
    clock.advance(max(s.period_s for s in sensors) * 4)
    stale = run(pitstop, "freshness", "pump-1")
    assert stale.status is Status.CRITICAL and stale.observed["completeness_pct"] == 0
    assert run(pitstop, "freshness", "ahu-1").observed["stale"] == len(pitstop.assets.sensors("ahu-1"))
    specs = resolve(
        HealthSettings(default_checks=False, checks=[CheckSettings(check="freshness", target="*")]),
        data_dir=Path("."),
        assets=pitstop.assets.list_assets(),
    )
    assert {s.target for s in specs} >= {"ahu-1", "pump-1", "vms-server"}
    assert all(s.site == "north-plant" for s in specs if s.target == "ahu-1")


def test_heartbeat_reads_the_scheduler(pitstop: Pitstop, clock: FrozenClock) -> None:
    assert run(pitstop, "heartbeat", "heartbeat").status is Status.CRITICAL  # never ran
    pitstop.scheduler.tick()
    assert run(pitstop, "heartbeat", "heartbeat").status is Status.HEALTHY
    clock.advance(300)
    assert run(pitstop, "heartbeat", "heartbeat").status is Status.CRITICAL


class _Broken(Check):
    name = "test-broken"
    issue = "test.broken"

    def run(self, ctx: CheckContext, /) -> CheckResult:
        raise RuntimeError("probe exploded")


def test_a_check_that_raises_is_unknown_with_the_error(pitstop: Pitstop) -> None:
    if "test-broken" not in checks:
        checks.add(_Broken)
    result = run(pitstop, "test-broken", "x")
    assert result.status is Status.UNKNOWN and result.error == "RuntimeError: probe exploded"


def test_profiles_are_included_and_overridden(tmp_path: Path) -> None:
    settings = HealthSettings(
        include=["vibration-monitoring"],
        thresholds={"cpu": {"cpu_pct": ThresholdSettings(warning=75)}},
        checks=[CheckSettings(check="rtsp", target="rtsp://camera-1.local:554/stream", enabled=True)],
    )
    specs = {s.id: s for s in resolve(settings, data_dir=tmp_path)}
    cpu = specs["cpu:localhost"].thresholds["cpu_pct"]
    assert (cpu.warning, cpu.critical, cpu.clear) == (75, 90, None)
    assert specs["disk:" + str(tmp_path)].thresholds["free_pct"].warning == 20
    assert specs["rtsp:rtsp://camera-1.local:554/stream"].thresholds["latency_ms"].warning == 500
    assert "modbus:plc-1.local:502" not in specs  # disabled until configured
    assert "backup:backups" in specs and "http:http://127.0.0.1:8000/health" in specs
    secret = HealthSettings(
        default_checks=False,
        checks=[CheckSettings(check="postgres", target="plant-db", secrets={"url": "postgresql://u:pw-123@h/db"})],
    )
    (pg,) = resolve(secret, data_dir=tmp_path)
    assert pg.params["url"].endswith("pw-123@h/db") and "pw-123" not in repr(pg)
    from pitstop.config import Settings, masked

    assert "pw-123" not in json.dumps(masked(Settings(health=secret)))
    with pytest.raises(ConfigError, match="no profile"):
        resolve(HealthSettings(include=["nope"]), data_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown check"):
        resolve(HealthSettings(checks=[CheckSettings(check="warp-drive")]), data_dir=tmp_path)


def test_modbus_reads_a_holding_register_from_pymodbus_server(pitstop: Pitstop) -> None:
    import asyncio

    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import ModbusTcpServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [0, 42, 7] + [0] * 20))
    servers: list[ModbusTcpServer] = []

    async def serve() -> None:
        servers.append(ModbusTcpServer(ModbusServerContext(devices=device, single=True), address=("127.0.0.1", port)))
        await servers[0].serve_forever()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        result = None
        for _ in range(50):  # until the server listens
            result = run(pitstop, "modbus", f"127.0.0.1:{port}", register=1, timeout_s=1)
            if result.status is Status.HEALTHY:
                break
            threading.Event().wait(0.05)
        assert result is not None and result.status is Status.HEALTHY, result
        assert result.observed["value"] == 42 and result.incident_key == f"plc.link:127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(servers[0].shutdown(), loop).result(5)
        thread.join(5)
        loop.close()
    down = run(pitstop, "modbus", f"127.0.0.1:{port}", timeout_s=1)
    assert down.status is Status.CRITICAL and down.observed["up"] == 0
