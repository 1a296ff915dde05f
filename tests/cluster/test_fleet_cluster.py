"""The fleet on one machine, under load, losing a worker, a NATS node and the scheduler.

Three `nats-server` processes clustered on high ports (the job stream kept on all three), a scratch
PostgreSQL database, the shared Mosquitto under a topic prefix of its own, and four `pitstop serve`
processes: api+ingest (A), api+ingest+scheduler (B, the standby), worker+scheduler (C, started first:
the leader) and worker (D). Twelve pumps send a reading a second per sensor, half over MQTT (a shared
subscription split between A and B), half over HTTP to A or B (the other when one does not answer,
as a load balancer would). Four of them develop a vibration fault at different times, before and
after each failure. Stream scoring runs every 2 s as per-asset jobs over JetStream.

Timeline: D is SIGKILLed (C takes its partitions within the lease) and started again; a NATS node
is SIGKILLed (the stream keeps its quorum); C, the scheduler and a worker, is SIGKILLed (B leads the
scheduler and D holds every partition within the lease). Then: every reading sent is stored once,
each faulty pump has exactly one anomaly incident and no healthy pump has one, the job stream is
empty and every job published was recorded as done once, and the scorer's checkpoint of every pump
reached the end of the load.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from sqlalchemy import func, select

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.config.fleet import FleetSettings
from pitstop.core.types import Role
from pitstop.fleet.bus import JobBus
from pitstop.fleet.worker import PARTITION_LEASE
from pitstop.scheduler.scheduler import LEASE as SCHEDULER_LEASE
from pitstop.storage.schema import fleet_job_runs, incidents, readings, scorer_baselines
from pitstop.testing.fleet import FleetSite, Node
from pitstop.testing.nats import nats_servers
from pitstop.testing.services import MQTT_HOST, MQTT_PORT, port_open, scratch_postgres_database, unavailable

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.postgres, pytest.mark.mqtt]

PUMPS = [f"pump-{i:02d}" for i in range(12)]
FAULTS = {"pump-00": 20, "pump-03": 50, "pump-06": 80, "pump-09": 100}  # seconds into the load
LOAD_S = 130
HISTORY = timedelta(minutes=12)  # the scorer's baseline is the first 10 minutes
LEASE_S = 3.0


def inventory_text() -> str:
    assets = "\n".join(
        f"""[[assets]]
name = "{name}"
site = "fleet-plant"
type = "pump"
sensors = [
  {{ name = "vib_rms", unit = "mm/s", min = 0, max = 100, period_s = 1 }},
  {{ name = "bearing_temp", unit = "degC", min = -20, max = 150, period_s = 1 }},
]
"""
        for name in PUMPS
    )
    return f'[[sites]]\nname = "fleet-plant"\n\n{assets}'


def value(asset: str, sensor: str, t: float, rng: random.Random) -> float:
    if sensor == "vib_rms":
        fault = asset in FAULTS and t >= FAULTS[asset]
        return round(5.0 + rng.gauss(0, 0.2) + (10.0 if fault else 0.0), 4)
    return round(60.0 + rng.gauss(0, 0.5), 4)


class Load:
    """A reading a second per sensor of every pump from T0 on: even pumps over MQTT (QoS 1, counted when
    acknowledged), odd ones over HTTP to node A or B (the other on a connection error)."""

    def __init__(self, site: FleetSite, api: list[Node], key: str, t0: datetime) -> None:
        self.site, self.api, self.key, self.t0 = site, api, key, t0
        self.sent = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.rng = random.Random(7)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"load-{site.prefix}")
        self.client.max_inflight_messages_set(1000)

    def start(self) -> None:
        self.client.connect(MQTT_HOST, MQTT_PORT)
        self.client.loop_start()
        self.thread.start()

    def join(self) -> None:
        self.stop.set()
        self.thread.join(60)
        self.client.loop_stop()
        self.client.disconnect()

    def _run(self) -> None:
        http = httpx.Client(timeout=10, headers={"Authorization": f"Bearer {self.key}"})
        second = 0
        while not self.stop.is_set() and second < LOAD_S:
            ts = self.t0 + timedelta(seconds=second)
            wait = (ts - datetime.now(UTC)).total_seconds()
            if wait > 0:
                time.sleep(wait)
            body, infos = [], []
            for i, asset in enumerate(PUMPS):
                for sensor in ("vib_rms", "bearing_temp"):
                    v = value(asset, sensor, second, self.rng)
                    if i % 2 == 0:
                        topic = f"{self.site.prefix}/fleet-plant/{asset}/{sensor}"
                        payload = f'{{"ts":{ts.timestamp():.0f},"value":{v}}}'
                        infos.append(self.client.publish(topic, payload, qos=1))
                    else:
                        body.append({"ts": int(ts.timestamp()), "asset": asset, "sensor": sensor, "value": v})
            self._post(http, body, second)
            for info in infos:
                info.wait_for_publish(30)
                if info.is_published():
                    self.sent += 1
                else:
                    self.errors.append(f"MQTT message of second {second} not acknowledged")
            second += 1
        http.close()

    def _post(self, http: httpx.Client, body: list[dict[str, object]], second: int) -> None:
        for attempt in range(20):
            node = self.api[(second + attempt) % len(self.api)]
            try:
                response = http.post(f"{node.url}/api/readings", json=body)
            except httpx.TransportError:
                continue
            if response.status_code < 300:
                self.sent += len(body)
                return
            if response.status_code != 503:
                self.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            time.sleep(0.2)
        self.errors.append(f"second {second}: no API node took the readings")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[FleetSite]:
    if not port_open(MQTT_HOST, MQTT_PORT):
        unavailable(f"Mosquitto is not running at {MQTT_HOST}:{MQTT_PORT}")
    with nats_servers(tmp_path / "nats", count=3) as nats, scratch_postgres_database() as url:
        fleet = FleetSite(tmp_path, url, nats.urls, replicas=3, lease_seconds=LEASE_S)
        fleet.nats = nats  # type: ignore[attr-defined]
        try:
            yield fleet
        finally:
            fleet.stop()


def wait_until(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `condition` held, or None when it did not within `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.2)
    return None


@pytest.fixture
def admin(site: FleetSite) -> Iterator[Pitstop]:
    """The test's own view of the fleet's database (closed after, so that no connection outlives it)."""
    pitstop = build(Settings(database={"url": site.database_url}, data_dir=site.directory / "admin"))
    try:
        yield pitstop
    finally:
        pitstop.close()


def test_the_fleet_survives_a_worker_a_nats_node_and_the_scheduler(site: FleetSite, admin: Pitstop) -> None:
    admin.db.upgrade()
    inventory.apply(
        admin.db, inventory.parse(inventory_text(), "fleet.toml", "toml"), actor="test", now=admin.clock.now()
    )
    _, key = admin.keys.create("load", Role.OPERATOR, admin.clock.now())
    t0 = (datetime.now(UTC) + timedelta(seconds=25)).replace(microsecond=0)
    rng = random.Random(1)
    history = []
    for asset in PUMPS:
        for sensor in ("vib_rms", "bearing_temp"):
            for s in range(int(HISTORY.total_seconds())):
                ts = t0 - HISTORY + timedelta(seconds=s)
                history.append(
                    {"ts": ts.isoformat(), "asset": asset, "sensor": sensor, "value": value("", sensor, -1, rng)}
                )
    seeded = admin.ingest.ingest(pd.DataFrame(history), source="test")
    assert seeded.stored == len(history), seeded

    c = site.add("c-worker-scheduler", ["worker", "scheduler"])
    site.start(c)  # first: it leads the scheduler
    a = site.add("a-api-ingest", ["api", "ingest"])
    b = site.add("b-api-ingest-scheduler", ["api", "ingest", "scheduler"])
    d = site.add("d-worker", ["worker"])
    site.start(a, b, d)

    def holders(prefix: str) -> dict[str, str]:
        return admin.jobs.leases(prefix, datetime.now(UTC))

    def holder_node(name: str) -> str | None:
        holder = holders(name).get(name)
        return next((n.name for n in site.nodes if holder and f":{n.process.pid}:" in holder), None)  # type: ignore[union-attr]

    def partitions_of(node: Node) -> int:
        return sum(1 for h in holders(PARTITION_LEASE).values() if f":{node.process.pid}:" in h)  # type: ignore[union-attr]

    assert wait_until(lambda: holder_node(SCHEDULER_LEASE) == c.name, 15) is not None
    assert wait_until(lambda: partitions_of(c) + partitions_of(d) == site.partitions and partitions_of(d) > 0, 20)

    load = Load(site, [a, b], key, t0)
    load.start()
    report: dict[str, float | None] = {}
    try:
        time.sleep(max(0.0, (t0 - datetime.now(UTC)).total_seconds()) + 30)
        d.kill()
        report["worker_takeover_s"] = wait_until(lambda: partitions_of(c) == site.partitions, 3 * LEASE_S + 5)
        d.start(site.settings())
        d.wait_ready()
        time.sleep(10)
        site.nats.nodes[0].kill()  # type: ignore[attr-defined]
        time.sleep(25)
        leader_pid = c.process.pid  # type: ignore[union-attr]
        c.kill()
        report["scheduler_takeover_s"] = wait_until(lambda: holder_node(SCHEDULER_LEASE) == b.name, 3 * LEASE_S + 5)
        report["partitions_takeover_s"] = wait_until(lambda: partitions_of(d) == site.partitions, 3 * LEASE_S + 5)
        assert leader_pid
        load.thread.join(LOAD_S + 60)
    finally:
        load.join()
    end = t0 + timedelta(seconds=LOAD_S - 1)

    # Each pump scored past the end of the load, and nothing left in the stream.
    def scored_to_the_end() -> bool:
        with admin.db.connect() as conn:
            rows = conn.execute(select(scorer_baselines.c.asset, scorer_baselines.c.scored_until)).all()
        return len(rows) == len(PUMPS) and all(r.scored_until is not None and r.scored_until > end for r in rows)

    assert wait_until(scored_to_the_end, 60) is not None, "the scorer's checkpoints did not reach the end of the load"
    bus = JobBus(FleetSettings(**site.settings()["fleet"]), name="cluster-test")
    try:
        assert wait_until(lambda: bus.pending() == 0, 30) is not None, "jobs left in the stream"
        published = bus.call(_published(bus))
    finally:
        bus.close()

    print("cluster report:", report, "sent:", load.sent, "published:", published)
    assert not load.errors, load.errors[:5]
    assert report["worker_takeover_s"] is not None, "C did not take the dead worker's partitions"
    assert report["scheduler_takeover_s"] is not None, "B did not take the scheduler over"
    assert report["partitions_takeover_s"] is not None, "D did not take every partition"

    sensor_ids = [s.id for s in admin.assets.sensors() if s.asset in PUMPS]
    with admin.db.connect() as conn:
        stored = conn.execute(
            select(func.count()).select_from(readings).where(readings.c.sensor_id.in_(sensor_ids))
        ).scalar()
        open_anomalies = {
            r.key for r in conn.execute(select(incidents.c.key).where(incidents.c.key.like("asset.anomaly:%")))
        }
        anomaly_rows = conn.execute(
            select(func.count()).select_from(incidents).where(incidents.c.key.like("asset.anomaly:%"))
        ).scalar()
        runs = conn.execute(select(func.count()).select_from(fleet_job_runs)).scalar()
        workers = {w for (w,) in conn.execute(select(fleet_job_runs.c.worker).distinct())}
        kinds = dict(conn.execute(select(fleet_job_runs.c.kind, func.count()).group_by(fleet_job_runs.c.kind)).all())
        other_incidents = [
            k for (k,) in conn.execute(select(incidents.c.key).where(~incidents.c.key.like("asset.anomaly:%")))
        ]
    assert stored == len(history) + load.sent, "every reading sent is stored, once"
    assert open_anomalies == {f"asset.anomaly:{p}" for p in FAULTS}, "one incident per faulty pump, none else"
    assert anomaly_rows == len(FAULTS)
    assert runs == published, "every job published was done, and recorded once"
    assert len(workers) >= 2, "the jobs fanned out over the workers"
    assert kinds.get("checks", 0) >= len(PUMPS) and kinds.get("scoring", 0) >= len(PUMPS), kinds
    assert other_incidents == [], "the pumps' reading checks found nothing, and no part of pitstop failed"


async def _published(bus: JobBus) -> int:
    """How many jobs the stream ever stored (its last sequence number; duplicates are not stored)."""
    js = await bus.jetstream()
    info = await js.stream_info(bus.settings.stream)
    return int(info.state.last_seq)
