"""Fuzz of the MQTT path against the real Mosquitto (issue 15): hostile payloads among good ones.

Every generated part knows what it must become: readings stored, or rows quarantined. After each
example, what the subscriber stored, quarantined and counted as duplicates adds up to what was sent,
and a good message published after the hostile ones is stored within 5 s."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.client import Client

from pitstop.app import Pitstop
from pitstop.config.models import MqttSettings
from pitstop.ingest.mqtt import MqttSubscriber
from pitstop.testing.services import MQTT_HOST, MQTT_PORT, port_open, unavailable
from tests.hostile import T0, message, unique
from tests.integration.test_ingest_mqtt import publisher, wait_for

pytestmark = pytest.mark.mqtt


@pytest.fixture
def live(demo_pitstop: Pitstop) -> Iterator[tuple[Pitstop, MqttSubscriber, Client, str]]:
    if not port_open(MQTT_HOST, MQTT_PORT):
        unavailable(f"Mosquitto is not reachable at {MQTT_HOST}:{MQTT_PORT}")
    prefix = f"pitstop-fuzz-{time.monotonic_ns():x}"
    subscriber = MqttSubscriber(
        MqttSettings(topic_prefix=prefix, client_id=prefix, batch_ms=20), demo_pitstop.ingest, demo_pitstop.metrics
    )
    subscriber.start()
    pub = publisher(prefix, MQTT_PORT)
    try:
        assert wait_for(lambda: subscriber.state() == "ok"), subscriber.state()
        time.sleep(0.3)
        yield demo_pitstop, subscriber, pub, prefix
    finally:
        subscriber.stop()
        pub.loop_stop()
        pub.disconnect()


def _counted(pitstop: Pitstop) -> tuple[float, float, float]:
    sample = pitstop.metrics.registry.get_sample_value
    stored = sample("pitstop_readings_stored_total", {"source": "mqtt"}) or 0.0
    duplicates = sample("pitstop_readings_duplicate_total", {"source": "mqtt"}) or 0.0
    quarantined = sum(
        m.value
        for family in pitstop.metrics.registry.collect()
        if family.name == "pitstop_readings_quarantined"
        for m in family.samples
        if m.name.endswith("_total") and m.labels.get("source") == "mqtt"
    )
    return stored, duplicates, quarantined


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(messages=st.lists(message(), min_size=1, max_size=6))
def test_hostile_payloads_never_block_ingest_and_every_reading_is_accounted_for(
    live: tuple[Pitstop, MqttSubscriber, Client, str], messages: list[tuple[bytes, int, int]]
) -> None:
    pitstop, subscriber, pub, prefix = live
    sensor = pitstop.assets.sensor_index()[("ahu-1", "UCAOT")].id
    stored_before, duplicates_before, quarantined_before = _counted(pitstop)
    rows_before = pitstop.readings.count(sensor)
    infos = [
        # a site of its own per message, so that two equal unreadable payloads are two quarantined rows
        pub.publish(f"{prefix}/site-{unique()}/ahu-1/UCAOT", payload, qos=1)
        for payload, _, _ in messages
    ]
    sentinel_ts = T0 + unique()
    infos.append(pub.publish(f"{prefix}/north/ahu-1/UCAOT", json.dumps({"ts": sentinel_ts, "value": 1.0}), qos=1))
    for info in infos:
        info.wait_for_publish(timeout=10)
    expected_stored = sum(m[1] for m in messages) + 1
    expected_quarantined = sum(m[2] for m in messages)
    window = pitstop.readings.window
    assert wait_for(lambda: len(window(sensor, sentinel_ts * 1_000_000, sentinel_ts * 1_000_000 + 1)) == 1, 5), (
        "a good message after the hostile ones was not stored within 5 s: " + subscriber.state()
    )

    def settled() -> bool:
        stored, duplicates, quarantined = _counted(pitstop)
        return stored - stored_before + duplicates - duplicates_before + quarantined - quarantined_before >= (
            expected_stored + expected_quarantined
        )

    assert wait_for(settled, 5)
    stored, duplicates, quarantined = _counted(pitstop)
    assert (stored - stored_before, duplicates - duplicates_before, quarantined - quarantined_before) == (
        expected_stored,
        0,
        expected_quarantined,
    )
    assert pitstop.readings.count(sensor) - rows_before == expected_stored
    assert subscriber.state() == "ok"
