"""Several ingest nodes in one MQTT 5 share group (`mqtt.share_group`), on a Mosquitto of the test's
own and one database (SQLite file or PostgreSQL): each message is stored by one node, exactly once;
a node that stops leaves the group and the other takes the whole load; a node that dies without
leaving gets its share back when it restarts under the same (derived) client id."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.config.models import MqttSettings
from pitstop.ingest.mqtt import MqttSubscriber, node_client_id
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from tests.integration.test_ingest_mqtt import own_mosquitto, publish, publisher, wait_for

GROUP = "ingest"
N = 2000  # readings per phase, one per QoS 1 message


@pytest.fixture
def broker_port(tmp_path: Path) -> Iterator[int]:
    with own_mosquitto(tmp_path) as port:
        yield port


@pytest.fixture
def second_node(demo_pitstop: Pitstop, db: Database, clock: FrozenClock, tmp_path: Path) -> Iterator[Pitstop]:
    """Another pitstop on the same database, with a data dir (so a spool and a client id) of its own."""
    database = Database(db.url.render_as_string(hide_password=False))
    yield build(Settings(data_dir=tmp_path / "node-b"), clock=clock, db=database)
    database.dispose()


def stored(node: Pitstop) -> float:
    return node.metrics.registry.get_sample_value("pitstop_readings_stored_total", {"source": "mqtt"}) or 0.0


def duplicates(node: Pitstop) -> float:
    return node.metrics.registry.get_sample_value("pitstop_readings_duplicate_total", {"source": "mqtt"}) or 0.0


def subscriber(node: Pitstop, settings: MqttSettings) -> MqttSubscriber:
    sub = MqttSubscriber(settings, node.ingest, node.metrics)
    sub.start()
    assert wait_for(lambda: sub.state() == "ok", 10), sub.state()
    return sub


@pytest.mark.mqtt
def test_two_nodes_split_the_topics_and_one_takes_all_when_the_other_stops(
    demo_pitstop: Pitstop, second_node: Pitstop, broker_port: int, tmp_path: Path
) -> None:
    settings = MqttSettings(port=broker_port, topic_prefix="plant", share_group=GROUP, batch_ms=20)
    sensor = demo_pitstop.assets.sensor_index()[("ahu-1", "UCAOT")].id
    pub = publisher("plant", broker_port)
    node_a = subscriber(demo_pitstop, settings)
    node_b = subscriber(second_node, settings)
    try:
        # each node derived its own client id from the default one
        assert node_a.client_id != node_b.client_id
        assert node_a.client_id.startswith("pitstop-") and node_b.client_id.startswith("pitstop-")
        assert node_a.subscriptions == ["$share/ingest/plant/+/+/+", "$share/ingest/plant-wide/+/+"]

        publish(pub, "plant", 0, N, 1)
        assert wait_for(lambda: demo_pitstop.readings.count(sensor) >= N), demo_pitstop.readings.count(sensor)
        split = stored(demo_pitstop), stored(second_node)
        assert sum(split) == N and min(split) > N / 4, split  # both took a real share

        # node B stops while publishing goes on: it leaves the group, and A gets everything after
        published = threading.Event()

        def keep_publishing() -> None:
            for chunk in range(20):
                publish(pub, "plant", N + chunk * 100, 100, 1)
                if chunk == 4:
                    published.set()
                time.sleep(0.1)

        publishing = threading.Thread(target=keep_publishing)
        publishing.start()
        assert published.wait(30)
        node_b.stop()
        stored_by_b = stored(second_node)
        assert publishing.is_alive()  # and publishing goes on
        publishing.join(60)
        assert wait_for(lambda: demo_pitstop.readings.count(sensor) >= 2 * N), demo_pitstop.readings.count(sensor)
        time.sleep(0.5)  # anything redelivered now must not be stored again
    finally:
        node_a.stop()
        node_b.stop()
        pub.loop_stop()
        pub.disconnect()
    assert demo_pitstop.readings.count(sensor) == 2 * N
    assert demo_pitstop.readings.window(sensor).index.is_unique
    assert stored(second_node) == stored_by_b > split[1]  # B stored its share of phase 2 until it left
    assert stored(demo_pitstop) + stored(second_node) == 2 * N
    assert duplicates(demo_pitstop) == duplicates(second_node) == 0  # B acked all it was dealt before leaving
    assert demo_pitstop.ingest.quarantine.count() == 0


@pytest.mark.mqtt
def test_a_node_that_dies_gets_its_share_back_when_it_restarts(
    demo_pitstop: Pitstop, second_node: Pitstop, broker_port: int
) -> None:
    """Mosquitto keeps dealing a dead member's share to its session: the restarted node resumes that
    session because it derives the same client id again."""
    settings = MqttSettings(port=broker_port, topic_prefix="plant", share_group=GROUP, batch_ms=20)
    sensor = demo_pitstop.assets.sensor_index()[("ahu-1", "UCAOT")].id
    pub = publisher("plant", broker_port)
    node_a = subscriber(demo_pitstop, settings)
    node_b = subscriber(second_node, settings)
    try:
        publish(pub, "plant", 0, N // 2, 1)
        assert wait_for(lambda: demo_pitstop.readings.count(sensor) >= N // 2)
        node_b._leave_group = lambda: None  # type: ignore[method-assign]  # dies as a killed process would
        node_b.stop()
        publish(pub, "plant", N // 2, N // 2, 1)
        time.sleep(1.0)
        assert demo_pitstop.readings.count(sensor) < N  # B's share waits in B's session
        restarted = subscriber(second_node, settings)
        assert restarted.client_id == node_b.client_id
        assert wait_for(lambda: demo_pitstop.readings.count(sensor) >= N), demo_pitstop.readings.count(sensor)
        restarted.stop()
    finally:
        node_a.stop()
        pub.loop_stop()
        pub.disconnect()
    assert demo_pitstop.readings.count(sensor) == N
    assert demo_pitstop.readings.window(sensor).index.is_unique


@pytest.mark.parametrize("group", ["", "a/b", "north+", "#", "x#y", "nul\x00"])
def test_a_share_group_name_mqtt_forbids_is_refused(group: str) -> None:
    with pytest.raises(ValidationError, match="share_group"):
        MqttSettings(share_group=group)


def test_the_derived_client_id_is_stable_per_node_and_unique_among_nodes(tmp_path: Path) -> None:
    shared = MqttSettings(share_group="plant-north_2")
    here = node_client_id(shared, tmp_path / "a" / "spool", "edge 7.local")
    assert here == node_client_id(shared, tmp_path / "a" / "spool", "edge 7.local")  # after a restart
    assert here.startswith("pitstop-edge-7.local-")
    assert here != node_client_id(shared, tmp_path / "b" / "spool", "edge 7.local")  # another node, same host
    assert here != node_client_id(shared, tmp_path / "a" / "spool", "edge-8")  # another host
    # an id set by hand, or no group: used as it is
    assert node_client_id(MqttSettings(share_group="g", client_id="north-1"), tmp_path, "h") == "north-1"
    assert node_client_id(MqttSettings(), tmp_path, "h") == "pitstop"
