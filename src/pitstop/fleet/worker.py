"""The fleet: publishing per-asset jobs (the scheduler's side) and running them (a worker's).

A worker holds partitions by leases in the database (`fleet-partition:<k>`, beside the scheduler's
lease) and announces itself by one more (`fleet-worker:<instance>`). Every third of `lease_seconds`
it renews them and balances: with W live workers each holds at most ceil(P / W) partitions, gives
back what is above that and takes free ones up to it. A worker that dies stops renewing, so within
`lease_seconds` its partitions are free and the others take them; the job it was running is handed
out again by JetStream `ack_wait_s` after its last "still working" beat, and runs from the asset's
checkpoint in the database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pitstop.background import SupervisedThread, Supervisor
from pitstop.config.fleet import FleetSettings
from pitstop.core.clock import Clock
from pitstop.core.types import from_epoch_us, to_epoch_us
from pitstop.fleet.bus import JobBus, consumer_name
from pitstop.fleet.jobs import AssetJob, Handler, JobRuns
from pitstop.observability import Metrics
from pitstop.storage.repos.jobs import JobRepo

if TYPE_CHECKING:
    from nats.aio.msg import Msg

log = logging.getLogger("pitstop.fleet")
WORKER_LEASE = "fleet-worker:"
PARTITION_LEASE = "fleet-partition:"


class Fleet:
    """Per-asset jobs over NATS JetStream: `fan_out` publishes them, `worker()` runs them."""

    def __init__(
        self,
        settings: FleetSettings,
        *,
        leases: JobRepo,
        runs: JobRuns,
        clock: Clock,
        metrics: Metrics,
        instance: str,
        handlers: Mapping[str, Handler],
    ) -> None:
        self.settings = settings
        self.leases = leases
        self.runs = runs
        self.clock = clock
        self.metrics = metrics
        self.instance = instance
        self.handlers = dict(handlers)
        self.bus = JobBus(settings, name=f"pitstop {instance}")
        self.links: dict[str, Callable[[], str]] = {}  # the started parts' states, for /ready

    def fan_out(self, kind: str, assets: Iterable[str], now: datetime, every: timedelta) -> int:
        """Publish one `kind` job per asset (the scheduler's job); returns how many were new. Each job runs up
        to `now` rounded down to the job's period, so a scheduler that takes over and publishes the
        same round again gives the same job ids, which JetStream drops."""
        if kind not in self.handlers:
            raise ValueError(f"no worker handles {kind!r} jobs")
        step = max(1, int(every.total_seconds() * 1_000_000))
        until = from_epoch_us(to_epoch_us(now) // step * step)
        new = self.bus.publish([AssetJob(kind, asset, until) for asset in assets])
        self.metrics.fleet_jobs_published.labels(kind).inc(new)
        return new

    def worker(self, supervisor: Supervisor) -> FleetWorker:
        return FleetWorker(self, supervisor)

    def close(self) -> None:
        self.bus.close()


class FleetWorker:
    """The worker role's background part: partition leases on a supervised thread, and a consumer
    task per held partition on the bus's event loop; jobs themselves run on a thread pool."""

    name = "fleet-worker"

    def __init__(self, fleet: Fleet, supervisor: Supervisor) -> None:
        self.fleet = fleet
        self.settings = fleet.settings
        self.supervisor = supervisor
        self.held: set[int] = set()
        self._consumers: dict[int, asyncio.Event] = {}  # partition -> its consumer's stop signal
        self._running: dict[int, concurrent.futures.Future[None]] = {}  # partition -> its consumer's end
        self._pool = ThreadPoolExecutor(max_workers=self.settings.threads, thread_name_prefix="pitstop-fleet-job")
        self._thread: SupervisedThread | None = None
        self._problem: str | None = None  # why the worker cannot work now (None: it can)
        self._cut_off_since: float | None = None  # since when NATS has been out of reach
        # Each worker starts its search for free partitions elsewhere, so that they do not all race for 0.
        self._offset = zlib.crc32(fleet.instance.encode()) % self.settings.partitions

    def start(self) -> None:
        every = self.settings.lease_seconds / 3
        self._thread = self.supervisor.thread(self.name, self.balance, every_s=every)
        self._thread.start()
        self.fleet.links[self.name] = self.state

    def state(self) -> str:
        """ "ok" while the worker reaches NATS, else why it holds no partitions (for /ready)."""
        return self._problem or "ok"

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
        held = sorted(self.held)
        self._set_held(set())
        deadline = time.perf_counter() + self.settings.ack_wait_s  # each ends after its current job
        for k in list(self._running):
            with contextlib.suppress(Exception):
                self._running.pop(k).result(timeout=max(0.0, deadline - time.perf_counter()))
        leases = self.fleet.leases
        # given back at once: the others take them at their next balancing, not a lease later
        for name in [WORKER_LEASE + self.fleet.instance, *(_lease(k) for k in held)]:
            try:
                leases.release_lease(name, self.fleet.instance)
            except Exception:
                log.warning("could not release lease %s; it expires by itself", name, exc_info=True)
        self.held = set()
        # jobs still running past the deadline are left to end with the process: JetStream hands
        # them out again, and their effects are idempotent
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- leases -------------------------------------------------------------------------------------
    def balance(self) -> None:
        """Renew this worker's leases, then hold its share of the partitions (module docstring)."""
        fleet, s = self.fleet, self.settings
        if not self._reaches_nats():
            return
        now = fleet.clock.now()
        ttl = timedelta(seconds=s.lease_seconds)
        fleet.leases.acquire_lease(WORKER_LEASE + fleet.instance, fleet.instance, now, ttl)
        live = max(1, len(fleet.leases.leases(WORKER_LEASE, now)))
        share = math.ceil(s.partitions / live)
        held = {k for k in sorted(self.held) if fleet.leases.acquire_lease(_lease(k), fleet.instance, now, ttl)}
        for k in sorted(held)[share:]:  # more than the share: give the rest back for the newcomers
            held.discard(k)
            fleet.leases.release_lease(_lease(k), fleet.instance)
        if len(held) < share:
            taken = fleet.leases.leases(PARTITION_LEASE, now)
            for i in range(s.partitions):
                k = (self._offset + i) % s.partitions
                if len(held) >= share:
                    break
                if (
                    k not in held
                    and _lease(k) not in taken
                    and fleet.leases.acquire_lease(_lease(k), fleet.instance, now, ttl)
                ):
                    held.add(k)
        if held != self.held:
            log.info(
                "worker %s holds partitions %s (of %d, %d workers)", fleet.instance, sorted(held), s.partitions, live
            )
        self._set_held(held)
        fleet.metrics.fleet_partitions_held.set(len(held))

    def _reaches_nats(self) -> bool:
        """Connect if need be. A worker cut off from NATS for a lease gives its partitions and its
        membership back, so that the others run its assets' jobs; it takes its share again once back."""
        bus, s = self.fleet.bus, self.settings
        try:
            # a JetStream answer, not only a connection: a node cut off from its cluster's
            # majority keeps the connection up and answers nothing
            bus.call(bus.probe(), timeout=s.lease_seconds)
        except Exception as exc:  # BusUnavailable, or JetStream not answering
            self._problem = f"cannot reach NATS: {exc}"[:300]
        else:
            if bus.connected():
                self._problem, self._cut_off_since = None, None
                return True
            self._problem = "NATS connection lost; reconnecting"
        now = time.perf_counter()
        self._cut_off_since = self._cut_off_since or now
        if now - self._cut_off_since >= s.lease_seconds and self.held:
            log.warning("worker %s gives its partitions back: %s", self.fleet.instance, self._problem)
            held = sorted(self.held)
            self._set_held(set())
            for name in [WORKER_LEASE + self.fleet.instance, *(_lease(k) for k in held)]:
                self.fleet.leases.release_lease(name, self.fleet.instance)
            self.fleet.metrics.fleet_partitions_held.set(0)
        return False

    def _set_held(self, held: set[int]) -> None:
        """Start consumers of newly held partitions and stop those of partitions given up."""
        self.held = set(held)
        bus = self.fleet.bus
        for k in [k for k in self._consumers if k not in held]:
            bus.call_soon(self._consumers.pop(k).set)
        for k in held - set(self._consumers):
            stop = asyncio.Event()
            self._consumers[k] = stop
            self._running[k] = bus.submit(self._consume(k, stop))

    # -- consuming ----------------------------------------------------------------------------------
    async def _consume(self, partition: int, stop: asyncio.Event) -> None:
        from nats.errors import TimeoutError as NatsTimeout

        bus, failures = self.fleet.bus, 0
        while not stop.is_set():
            try:
                js = await bus.jetstream()
                durable = consumer_name(partition)
                sub = await js.pull_subscribe_bind(durable=durable, stream=self.settings.stream)
                # the consumer's own ack_wait (another process may have set it), a third of it between beats
                beat_every = (await js.consumer_info(self.settings.stream, durable)).config.ack_wait or 3.0
                beat_every /= 3
            except Exception as exc:  # NATS down or the cluster electing: try again, less and less often
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.warning("partition %d: cannot subscribe (%s); retrying", partition, exc)
                await _wait(stop, min(2.0**failures / 4, 30.0))
                continue
            failures = 0
            try:
                while not stop.is_set():
                    try:
                        messages = await sub.fetch(1, timeout=1.0)
                    except (TimeoutError, NatsTimeout):
                        continue
                    for message in messages:
                        await self._handle(message, beat_every)
            except Exception as exc:
                log.warning("partition %d: consuming failed (%s); retrying", partition, exc)
                await _wait(stop, 1.0)
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _handle(self, message: Msg, beat_every: float) -> None:
        fleet, loop = self.fleet, asyncio.get_running_loop()
        try:
            job = AssetJob.decode(message.data)
        except ValueError as exc:
            log.error("dropping a message that is not a job on %s: %s", message.subject, exc)
            await message.term()
            return
        handler = fleet.handlers.get(job.kind)
        if handler is None:
            log.error("dropping job %s: this worker has no %r handler", job.id, job.kind)
            await message.term()
            return
        deliveries = message.metadata.num_delivered
        beat = asyncio.create_task(self._beat(message, beat_every))  # waiting for a pool thread counts too
        try:
            if await loop.run_in_executor(self._pool, fleet.runs.done, job.id):
                await message.ack()  # finished before; its acknowledgement was lost
                fleet.metrics.fleet_jobs.labels(job.kind, "repeat").inc()
                return
            started = fleet.clock.now()
            try:
                with fleet.metrics.fleet_job_seconds.labels(job.kind).time():
                    await loop.run_in_executor(self._pool, handler, job.asset, job.until)
            except Exception as exc:
                fleet.metrics.fleet_jobs.labels(job.kind, "failed").inc()
                if deliveries >= self.settings.max_deliver:
                    log.error("job %s failed %d times; given up: %s", job.id, deliveries, exc, exc_info=True)
                    await message.term()
                else:
                    log.warning("job %s failed (try %d); it runs again: %s", job.id, deliveries, exc, exc_info=True)
                    await message.nak(delay=min(2.0**deliveries, 30.0))
                return
            finished = fleet.clock.now()
            await loop.run_in_executor(
                self._pool,
                lambda: fleet.runs.record(
                    job, worker=fleet.instance, deliveries=deliveries, started=started, finished=finished
                ),
            )
            await message.ack()
            fleet.metrics.fleet_jobs.labels(job.kind, "ok").inc()
        finally:
            beat.cancel()  # whatever ended the job (the database failing too): no beat outlives it

    async def _beat(self, message: Msg, every: float) -> None:
        """Tell JetStream the job is still running, so a long one is not handed to another worker."""
        while True:
            await asyncio.sleep(every)
            try:
                await message.in_progress()
            except Exception:
                log.warning("could not extend a running job's acknowledgement time", exc_info=True)


def _lease(partition: int) -> str:
    return f"{PARTITION_LEASE}{partition}"


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
