"""Per-asset jobs over a real NATS JetStream server (its own, on a free port): partitions balanced over
workers by database leases, every job run once, an asset's jobs in order, a stopped worker's
partitions taken over, failures retried, poison dropped without blocking the partition."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pitstop.background import Supervisor
from pitstop.config.fleet import FleetSettings
from pitstop.core.clock import SystemClock
from pitstop.fleet.bus import JobBus
from pitstop.fleet.jobs import AssetJob, JobRuns, partition_of
from pitstop.fleet.worker import Fleet, FleetWorker
from pitstop.observability import Metrics
from pitstop.storage import Database
from pitstop.storage.repos.jobs import JobRepo
from pitstop.testing.nats import NatsCluster, nats_servers

T0 = datetime(2026, 12, 1, tzinfo=SystemClock().now().tzinfo)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsCluster]:
    with nats_servers(tmp_path / "nats") as cluster:
        yield cluster


class Recorder:
    """A job handler that records what ran, per asset in order; `fail` makes chosen jobs raise once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, list[datetime]] = defaultdict(list)
        self.fail: set[str] = set()

    def __call__(self, asset: str, until: datetime) -> None:
        job = AssetJob("probe", asset, until).id
        with self.lock:
            if job in self.fail:
                self.fail.discard(job)
                raise RuntimeError("a transient failure")
            self.runs[asset].append(until)

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.runs.values())


def make_fleet(db: Database, nats: NatsCluster, name: str, handler: Callable[[str, datetime], object]) -> Fleet:
    settings = FleetSettings(servers=nats.urls, partitions=8, lease_seconds=2.0, ack_wait_s=3.0, max_deliver=3)
    from prometheus_client import CollectorRegistry

    return Fleet(
        settings,
        leases=JobRepo(db),
        runs=JobRuns(db),
        clock=SystemClock(),
        metrics=Metrics(CollectorRegistry()),
        instance=name,
        handlers={"probe": handler},
    )


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_jobs_run_once_in_order_across_two_workers(db: Database, nats: NatsCluster) -> None:
    recorder = Recorder()
    fleets = [make_fleet(db, nats, f"w{i}", recorder) for i in range(2)]
    workers = [FleetWorker(f, Supervisor()) for f in fleets]
    assets = [f"pump-{i}" for i in range(20)]
    try:
        for w in workers:
            w.start()
        assert wait_until(lambda: sum(len(w.held) for w in workers) == 8 and all(len(w.held) == 4 for w in workers))
        assert not workers[0].held & workers[1].held
        # 10 rounds of one job per asset; then a scheduler that took over publishes the last round
        # again, a few seconds later in the same minute: the same job ids, dropped by JetStream
        for round_ in range(10):
            fleets[0].fan_out("probe", assets, T0 + timedelta(minutes=round_, seconds=1), MINUTE)
        assert fleets[1].fan_out("probe", assets, T0 + timedelta(minutes=9, seconds=40), MINUTE) == 0
        assert fleets[0].metrics.fleet_jobs_published.labels("probe")._value.get() == 200
        assert wait_until(lambda: recorder.count() == 200)
        time.sleep(1.0)
        assert recorder.count() == 200  # nothing ran twice
        for asset in assets:
            assert recorder.runs[asset] == [T0 + timedelta(minutes=r) for r in range(10)]  # in order
        assert JobRuns(db).count("probe") == 200
    finally:
        for w in workers:
            w.stop()
        for f in fleets:
            f.close()


def test_a_stopped_workers_partitions_are_taken_over(db: Database, nats: NatsCluster) -> None:
    recorder = Recorder()
    fleets = [make_fleet(db, nats, f"w{i}", recorder) for i in range(2)]
    workers = [FleetWorker(f, Supervisor()) for f in fleets]
    try:
        for w in workers:
            w.start()
        assert wait_until(lambda: all(len(w.held) == 4 for w in workers))
        workers[0].stop()
        fleets[0].close()
        # a worker that stops gives its leases back: the survivor takes them at its next balancing
        # (every third of the 2 s lease), not a lease later (a worker that dies: the cluster test)
        assert wait_until(lambda: len(workers[1].held) == 8, timeout=1.5)
        assets = [f"fan-{i}" for i in range(16)]
        fleets[1].fan_out("probe", assets, T0, MINUTE)
        assert wait_until(lambda: recorder.count() == 16)
    finally:
        for w in workers:
            w.stop()
        for f in fleets:
            f.close()


def test_a_failed_job_runs_again_and_poison_is_dropped(db: Database, nats: NatsCluster) -> None:
    recorder = Recorder()
    fleet = make_fleet(db, nats, "w0", recorder)
    worker = FleetWorker(fleet, Supervisor())
    recorder.fail.add(AssetJob("probe", "ahu-1", T0).id)
    try:
        worker.start()
        assert wait_until(lambda: len(worker.held) == 8)
        partition = partition_of("ahu-1", 8)
        # a message that is no job, on ahu-1's partition, ahead of its jobs
        fleet.bus.call(_raw_publish(fleet, f"pitstop-jobs.{partition}", b"{not json"))
        fleet.fan_out("probe", ["ahu-1"], T0, MINUTE)
        fleet.fan_out("probe", ["ahu-1"], T0 + timedelta(minutes=1), MINUTE)
        assert wait_until(lambda: recorder.count() == 2)
        assert recorder.runs["ahu-1"] == [T0, T0 + timedelta(minutes=1)]  # the retried one first: order kept
        assert JobRuns(db).count("probe") == 2
        assert fleet.metrics.fleet_jobs.labels("probe", "failed")._value.get() == 1
    finally:
        worker.stop()
        fleet.close()


async def _raw_publish(fleet: Fleet, subject: str, data: bytes) -> None:
    js = await fleet.bus.jetstream()
    await js.publish(subject, data, stream=fleet.settings.stream)


def test_fan_out_refuses_a_kind_no_worker_runs(db: Database, nats: NatsCluster) -> None:
    fleet = make_fleet(db, nats, "w0", Recorder())
    try:
        with pytest.raises(ValueError, match="no worker handles"):
            fleet.fan_out("twin-fit", ["ahu-1"], T0, MINUTE)
    finally:
        fleet.close()


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b'{"kind": "probe"}', b'{"kind": "", "asset": "a", "until_us": 1}', b'{"kind": 1, "asset": "a"}'],
)
def test_a_message_that_is_not_a_job_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a pitstop job"):
        AssetJob.decode(data)


def test_settings_refuse_bad_servers_and_names() -> None:
    with pytest.raises(ValueError, match="NATS server URL"):
        FleetSettings(servers=["http://x"])
    with pytest.raises(ValueError, match="letters, digits"):
        FleetSettings(stream="a.b")
    assert partition_of("ahu-1", 16) == partition_of("ahu-1", 16) < 16


def test_a_worker_cut_off_from_nats_gives_its_partitions_back(db: Database, nats: NatsCluster) -> None:
    fleet = make_fleet(db, nats, "w0", Recorder())
    worker = FleetWorker(fleet, Supervisor())
    try:
        worker.start()
        assert wait_until(lambda: len(worker.held) == 8)
        assert worker.state() == "ok"
        nats.nodes[0].kill()
        # after a lease (2 s) without NATS its partitions are free for the workers that reach it
        assert wait_until(lambda: not worker.held, timeout=10.0)
        assert worker.state() != "ok"
        assert not JobRepo(db).leases("fleet-partition:", SystemClock().now())
    finally:
        worker.stop()
        fleet.close()


def test_a_worker_that_never_reaches_nats_holds_nothing_and_says_why(db: Database, nats: NatsCluster) -> None:
    from pitstop.testing.server import free_port

    settings = FleetSettings(servers=[f"nats://127.0.0.1:{free_port()}"], partitions=8, lease_seconds=1.0)
    fleet = make_fleet(db, nats, "w0", Recorder())
    fleet.settings = settings
    fleet.bus.settings = settings
    worker = FleetWorker(fleet, Supervisor())
    try:
        worker.balance()
        assert worker.held == set()
        assert worker.state().startswith("cannot reach NATS")
    finally:
        worker.stop()
        fleet.close()


def test_changed_settings_update_the_partitions_consumers(db: Database, nats: NatsCluster) -> None:
    fleet = make_fleet(db, nats, "w0", Recorder())
    try:
        fleet.bus.pending()  # connects: creates the stream and its consumers with ack_wait_s = 3
        changed = fleet.settings.model_copy(update={"ack_wait_s": 7.0, "max_deliver": 9})
        other = JobBus(changed, name="other")
        try:
            other.pending()
            config = other.call(_consumer_config(other, "partition-3"))
        finally:
            other.close()
        assert (config.ack_wait, config.max_deliver) == (7.0, 9)
    finally:
        fleet.close()


async def _consumer_config(bus: JobBus, name: str) -> Any:
    js = await bus.jetstream()
    return (await js.consumer_info(bus.settings.stream, name)).config
