"""MQTT with the real broker: readings published while pitstop is stopped arrive when it is back,
each stored exactly once, across two restarts of the subscriber."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion

from pitstop.app import Pitstop
from pitstop.config.models import MqttSettings
from pitstop.ingest.mqtt import MqttSubscriber
from pitstop.testing.services import MQTT_HOST, MQTT_PORT, port_open, unavailable

pytestmark = pytest.mark.mqtt
T0 = 1_767_500_000  # before the frozen clock's now
PER_MESSAGE = 100


def wait_for(condition, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def prefix() -> str:
    if not port_open(MQTT_HOST, MQTT_PORT):
        unavailable(f"Mosquitto is not reachable at {MQTT_HOST}:{MQTT_PORT}")
    return f"pitstop-test-{uuid.uuid4().hex[:10]}"


def publisher(prefix: str) -> Client:
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub")
    client.connect(MQTT_HOST, MQTT_PORT)
    client.loop_start()
    return client


def publish(client: Client, prefix: str, first: int, count: int) -> None:
    """`count` messages of PER_MESSAGE readings each, message numbers first.. (QoS 1)."""
    infos = []
    for m in range(first, first + count):
        readings = [{"ts": T0 + m * PER_MESSAGE + i, "value": 20.0 + i % 10} for i in range(PER_MESSAGE)]
        infos.append(client.publish(f"{prefix}/north/ahu-1/UCAOT", json.dumps(readings), qos=1))
    for info in infos:
        info.wait_for_publish(timeout=30)


def test_published_while_stopped_is_stored_once_after_restarts(demo_pitstop: Pitstop, prefix: str) -> None:
    settings = MqttSettings(topic_prefix=prefix, client_id=prefix, batch_ms=20)
    sensor = demo_pitstop.assets.sensor_index()[("ahu-1", "UCAOT")].id
    pub = publisher(prefix)
    try:
        subscriber = MqttSubscriber(settings, demo_pitstop.ingest, demo_pitstop.metrics)
        subscriber.start()
        assert wait_for(lambda: subscriber.state() == "ok"), subscriber.state()
        assert demo_pitstop.ingest.link_states() == {"mqtt": "ok"}
        time.sleep(0.3)  # the subscription is in place: the broker keeps the session from now on
        publish(pub, prefix, 0, 50)  # while running
        subscriber.stop()
        assert subscriber.state() == "stopped"
        publish(pub, prefix, 50, 50)  # while stopped: waits in the broker's session
        for restart in range(2):
            subscriber = MqttSubscriber(settings, demo_pitstop.ingest, demo_pitstop.metrics)
            subscriber.start()
            publish(pub, prefix, 100 + restart * 50, 25)  # while (re)connecting and running
            time.sleep(0.2)
            subscriber.stop()  # mid-stream: whatever was not acked comes again
            publish(pub, prefix, 125 + restart * 50, 25)  # while stopped
        subscriber = MqttSubscriber(settings, demo_pitstop.ingest, demo_pitstop.metrics)
        subscriber.start()
        total = 200 * PER_MESSAGE
        assert wait_for(lambda: demo_pitstop.readings.count(sensor) >= total), demo_pitstop.readings.count(sensor)
        time.sleep(0.5)  # anything redelivered now must not be stored again
        subscriber.stop()
    finally:
        pub.loop_stop()
        pub.disconnect()
    assert demo_pitstop.readings.count(sensor) == total
    frame = demo_pitstop.readings.window(sensor)
    assert frame.index.is_unique and len(frame) == total
    assert demo_pitstop.ingest.quarantine.count() == 0
    stored = demo_pitstop.metrics.registry.get_sample_value("pitstop_readings_stored_total", {"source": "mqtt"})
    assert stored == total
