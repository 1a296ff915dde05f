"""pitstop's own MQTT link (the ingest subscriber) dropped by a broker of the test's own being
stopped and started: the link is reconnected and no published reading is lost.

The subscriber has no reconnect method of its own; the reconnect action stops and starts it (a
`Background` part), and the broker's persistent session holds what was published meanwhile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion

from pitstop import inventory
from pitstop.incidents import IncidentState
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import port_open, unavailable
from tests.conftest import DEMO_INVENTORY
from tests.faults.conftest import free_port, make_pitstop, wait_for

pytestmark = pytest.mark.mqtt
T0 = 1_767_500_000  # before the frozen clock's now
PER_MESSAGE = 50


class Broker:
    """A Mosquitto of the test's own on a free port, persisting sessions so that a restart keeps them."""

    def __init__(self, sandbox: Path) -> None:
        if shutil.which("mosquitto") is None:
            unavailable("mosquitto is not installed")
        self.port = free_port()
        self.config = sandbox / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {sandbox}/\n" + ("user root\n" if os.geteuid() == 0 else "")
            # as root mosquitto drops to a user that cannot write the session file here
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert wait_for(lambda: port_open("127.0.0.1", self.port, 0.2), 10), "mosquitto did not start"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def broker(sandbox: Path) -> Iterator[Broker]:
    b = Broker(sandbox)
    yield b
    b.stop()


def publish(port: int, prefix: str, first: int, count: int) -> None:
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub-{first}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = []
        for m in range(first, first + count):
            readings = [{"ts": T0 + m * PER_MESSAGE + i, "value": 20.0 + i % 10} for i in range(PER_MESSAGE)]
            infos.append(client.publish(f"{prefix}/north/ahu-1/UCAOT", json.dumps(readings), qos=1))
        for info in infos:
            info.wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_dropped_mqtt_link_is_reconnected_without_losing_readings(
    sandbox: Path, clock: FrozenClock, broker: Broker, record: Callable[..., None]
) -> None:
    broker.start()
    prefix = f"pitstop-fault-{uuid.uuid4().hex[:8]}"
    target = f"127.0.0.1:{broker.port}"
    pitstop = make_pitstop(
        sandbox,
        clock,
        mqtt={"port": broker.port, "topic_prefix": prefix, "client_id": prefix, "batch_ms": 20},
        health={
            "default_checks": False,
            "checks": [{"check": "mqtt", "target": target, "params": {"timeout_s": 1}}],
        },
        remediation={
            "verify_timeout_s": 10.0,
            "verify_interval_s": 0.05,
            "rules": [{"match": "mqtt.down:*", "action": "reconnect", "params": {"link": "mqtt"}}],
        },
    )
    inventory.apply(pitstop.db, inventory.read_file(DEMO_INVENTORY), actor="test", now=clock.now())
    sensor = pitstop.assets.sensor_index()[("ahu-1", "UCAOT")].id
    subscriber = next(p for p in pitstop.background if p.name == "mqtt")
    try:
        pitstop.start_background()
        assert wait_for(lambda: subscriber.state() == "ok"), subscriber.state()  # type: ignore[attr-defined]
        time.sleep(0.3)  # subscribed: the broker keeps the session from now on
        publish(broker.port, prefix, 0, 20)
        assert wait_for(lambda: pitstop.readings.count(sensor) == 20 * PER_MESSAGE)

        broker.stop()
        fault = time.perf_counter()
        assert wait_for(lambda: subscriber.state() != "ok")  # type: ignore[attr-defined]
        pitstop.health.run_round()
        [incident] = pitstop.incidents.list(state=IncidentState.OPEN)
        assert incident.key == f"mqtt.down:{target}"
        broker.start()
        publish(broker.port, prefix, 20, 20)  # while pitstop's link is still down
        [rid] = pitstop.remediation.run_pass()
        took = time.perf_counter() - fault
        done = pitstop.remediation.store.get(rid)
        assert done.state == "healed", done.result
        verified = next(s for s in pitstop.remediation.store.steps(rid) if s.step == "verified")
        assert "mqtt: ok" in verified.detail and "check mqtt: healthy" in verified.detail
        assert wait_for(lambda: pitstop.readings.count(sensor) == 40 * PER_MESSAGE, 15), pitstop.readings.count(sensor)
        assert pitstop.incidents.get(incident.id).state is IncidentState.RESOLVED
        record(fault="mqtt link dropped", expected="heal", outcome=done.state, seconds=round(took, 3))
    finally:
        pitstop.close()
