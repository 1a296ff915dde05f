"""The simulator publishing into the database, the local Mosquitto and an HTTP endpoint."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pitstop import inventory
from pitstop.app import Pitstop
from pitstop.sim import Simulator, assets_of_database, assets_of_inventory
from pitstop.sim.live import JOB, LiveSimulation, attach
from pitstop.sim.publish import DatabasePublisher, HttpPublisher, MqttPublisher, run
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import MQTT_HOST, MQTT_PORT, port_open, unavailable
from tests.conftest import DEMO_INVENTORY

HOUR = timedelta(hours=1)


def _publisher(pitstop: Pitstop, simulator: Simulator) -> DatabasePublisher:
    return DatabasePublisher(simulator, assets=pitstop.assets, readings=pitstop.readings, ingest=pitstop.ingest)


def _attach(pitstop: Pitstop, **options: Any) -> tuple[LiveSimulation, int]:
    return attach(
        clock=pitstop.clock,
        data_dir=pitstop.settings.data_dir,
        assets=pitstop.assets,
        readings=pitstop.readings,
        ingest=pitstop.ingest,
        scheduler=pitstop.scheduler,
        **options,
    )


def test_backfill_stores_the_expected_count_once(demo_pitstop: Pitstop) -> None:
    simulator = Simulator(assets_of_database(demo_pitstop.assets), seed=7)
    end = demo_pitstop.clock.now()
    start = end - timedelta(days=1)
    publisher = _publisher(demo_pitstop, simulator)
    taken = sum(publisher.publish(b) for b in simulator.chunks(start, end, timedelta(hours=6)))
    assert taken == simulator.count(start, end) == 96_480
    assert demo_pitstop.readings.count() == 96_480
    publisher.publish(simulator.batch(start, end))  # a replay stores nothing twice
    assert demo_pitstop.readings.count() == 96_480
    sensor = next(s for s in demo_pitstop.assets.sensors("pump-1") if s.name == "vib_rms")
    stored = demo_pitstop.readings.window(sensor.id)
    expected = simulator.batch(start, end).series("pump-1", "vib_rms")
    assert np.allclose(stored["value"].to_numpy(), expected.to_numpy())


def test_runner_paces_simulated_time_by_the_clock(demo_pitstop: Pitstop) -> None:
    clock = demo_pitstop.clock
    assert isinstance(clock, FrozenClock)
    simulator = Simulator(assets_of_database(demo_pitstop.assets), seed=1)
    start = clock.now() - HOUR
    ticks: list[int] = []
    summary = run(
        simulator,
        _publisher(demo_pitstop, simulator),
        clock=clock,
        start=start,
        duration=HOUR,
        speed=60.0,
        sleep=clock.advance,  # one real second = one simulated minute
        progress=lambda at, total: ticks.append(total),
    )
    assert summary.readings == simulator.count(start, start + HOUR) == demo_pitstop.readings.count()
    assert len(ticks) == 60  # one publish per real second over one real minute


def test_demo_backfills_then_keeps_publishing(demo_pitstop: Pitstop) -> None:
    clock = demo_pitstop.clock
    assert isinstance(clock, FrozenClock)
    live, stored = _attach(demo_pitstop, history=timedelta(hours=6))
    assert stored == live.simulator.count(clock.now() - timedelta(hours=6), clock.now()) > 0
    assert live.simulator.failure_time("pump-1") is not None
    assert JOB in demo_pitstop.scheduler.jobs
    clock.advance(timedelta(seconds=60))
    demo_pitstop.scheduler.jobs[JOB].func(clock.now())  # what the scheduler runs every 10 s
    assert demo_pitstop.readings.count() == stored + live.simulator.count(
        clock.now() - timedelta(seconds=60), clock.now()
    )
    # a restart fills only the gap, from the same seed and scenario
    demo_pitstop.scheduler.jobs.pop(JOB)
    clock.advance(timedelta(minutes=5))
    again, gap = _attach(demo_pitstop, seed=99, history=timedelta(hours=6))
    assert again.simulator.seed == 7 and 0 < gap <= again.simulator.count(
        clock.now() - timedelta(minutes=6), clock.now()
    )


@pytest.fixture
def broker() -> Iterator[None]:
    if not port_open(MQTT_HOST, MQTT_PORT):
        unavailable(f"no MQTT broker at {MQTT_HOST}:{MQTT_PORT}")
    yield


@pytest.mark.mqtt
def test_mqtt_publish_reaches_a_subscriber(broker: None) -> None:
    simulator = Simulator(assets_of_inventory(inventory.read_file(DEMO_INVENTORY)), seed=7)
    prefix = f"pitstop-test-{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, dict[str, object]]] = []
    subscribed, done = threading.Event(), threading.Event()
    start = FrozenClock().now()
    batch = simulator.batch(start, start + timedelta(minutes=10))

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        got.append((message.topic, json.loads(message.payload)))
        if len(got) == len(batch):
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.connect(MQTT_HOST, MQTT_PORT)
    sub.subscribe(f"{prefix}/#", qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        publisher = MqttPublisher(simulator, host=MQTT_HOST, port=MQTT_PORT, prefix=prefix)
        try:
            assert publisher.publish(batch) == len(batch)
        finally:
            publisher.close()
        assert done.wait(30), f"{len(got)} of {len(batch)} arrived"
    finally:
        sub.loop_stop()
        sub.disconnect()
    topics = {t for t, _ in got}
    assert f"{prefix}/north-plant/ahu-1/UCAOT" in topics and len(topics) == len(simulator.keys)
    first = next(p for t, p in got if t.endswith("/pump-1/vib_rms"))
    assert first["ts"] == "2026-01-05T08:00:00+00:00" and isinstance(first["value"], float)


def test_http_publish_posts_batches_of_1000() -> None:
    bodies: list[list[dict[str, object]]] = []
    headers: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            bodies.append(json.loads(data))
            headers.append(self.headers["Authorization"])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        simulator = Simulator(assets_of_inventory(inventory.read_file(DEMO_INVENTORY)), seed=7)
        start = FrozenClock().now()
        batch = simulator.batch(start, start + timedelta(minutes=5))
        publisher = HttpPublisher(f"http://127.0.0.1:{server.server_address[1]}", "ps_test")
        try:
            assert publisher.publish(batch) == len(batch)
        finally:
            publisher.close()
    finally:
        server.shutdown()
        server.server_close()
    assert [len(b) for b in bodies] == [1000] * (len(batch) // 1000) + (
        [len(batch) % 1000] if len(batch) % 1000 else []
    )
    assert set(headers) == {"Bearer ps_test"}
    row = bodies[0][0]
    assert set(row) == {"asset", "sensor", "ts", "value"} and str(row["ts"]).endswith("+00:00")
