"""The per-asset job stream on NATS JetStream, used from pitstop's threads.

One stream (work-queue retention: a job is deleted once acknowledged) with subjects
`<subject>.<partition>`, and one durable pull consumer per partition. Each consumer lets one job out
at a time (`max_ack_pending = 1`): a partition's jobs, hence each asset's, run in the order they were
published, whichever worker holds the partition, and a job whose worker died is handed out again
(after `ack_wait_s` without an acknowledgement or a "still working" beat) before any later one.
A publish carries the job id as `Nats-Msg-Id`, so a scheduler that publishes again after a failover
adds nothing within the stream's duplicate window.

nats-py is asyncio; the bus runs its own event loop on a daemon thread and offers plain calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pitstop.config.fleet import FleetSettings
from pitstop.fleet.jobs import AssetJob, partition_of

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

log = logging.getLogger("pitstop.fleet")
T = TypeVar("T")
DUPLICATE_WINDOW_S = 300.0  # a job id published again within this is dropped by JetStream
CALL_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0


class BusUnavailable(RuntimeError):
    """NATS could not be reached or did not answer (the caller's job is retried later)."""


class JobBus:
    def __init__(self, settings: FleetSettings, *, name: str) -> None:
        self.settings = settings
        self.name = name  # shown in the NATS server's connection list
        self._loop: asyncio.AbstractEventLoop | None = None  # made when first needed, closed by close()
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._lock = threading.Lock()
        self._last_error_log = 0.0
        self._closing = False  # the disconnection that follows is this bus's own
        self._connecting = asyncio.Lock()

    # -- the loop thread -------------------------------------------------------------------------
    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start a coroutine on the bus's loop from any other thread; its future tells when it ended."""
        return asyncio.run_coroutine_threadsafe(coro, self._start_loop())

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run a coroutine on the bus's loop from any other thread and wait for its result."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise BusUnavailable(f"NATS did not answer within {timeout:g} s") from None

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run a plain callback on the bus's loop (an asyncio.Event's set, say) from another thread."""
        self._start_loop().call_soon_threadsafe(callback)

    def _start_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._connecting = asyncio.Lock()
                self._thread = threading.Thread(target=self._loop.run_forever, name="pitstop-fleet-bus", daemon=True)
                self._thread.start()
            return self._loop

    def close(self) -> None:
        """Close the connection and stop the loop (a later call starts them again)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self.call(self._close(), timeout=5)
        except Exception:
            log.warning("closing the NATS connection failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        with self._lock:
            self._loop = self._thread = None
        if not thread.is_alive():
            # What the client started while closing (a reconnect's reader, say) ends here, not at exit.
            # On a thread of its own: the caller's thread may be running a loop of its own (a test
            # driving a browser), and a loop cannot run inside another.
            finisher = threading.Thread(target=_finish, args=(loop,), name="pitstop-fleet-bus-close", daemon=True)
            finisher.start()
            finisher.join(5)

    async def _close(self) -> None:
        """Close the connection (what was published is acknowledged already) and end what still runs."""
        if self._nc is not None and not self._nc.is_closed:
            self._closing = True
            try:
                await self._nc.close()
            finally:
                self._closing = False
        self._nc = self._js = None
        await _cancel({t for t in asyncio.all_tasks() if t is not asyncio.current_task()})

    # -- connection and stream ---------------------------------------------------------------------
    async def jetstream(self) -> JetStreamContext:
        """The JetStream context, connecting (and creating the stream and consumers) on first use."""
        async with self._connecting:  # the partitions' consumers start together: one connection for all
            if self._js is not None and self._nc is not None and not self._nc.is_closed:
                return self._js
            return await self._connect()

    async def _connect(self) -> JetStreamContext:
        import nats
        from nats.errors import Error as NatsError

        where = ", ".join(self.settings.servers)
        try:
            # Once connected, the client follows the cluster for ever (a node that dies is left for
            # another); the first connection is bounded, so that a worker that cannot reach NATS says so.
            self._nc = await asyncio.wait_for(
                nats.connect(
                    servers=list(self.settings.servers),
                    name=self.name,
                    connect_timeout=3,
                    reconnect_time_wait=0.5,
                    max_reconnect_attempts=-1,
                    allow_reconnect=True,
                    error_cb=self._error,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                ),
                timeout=CONNECT_TIMEOUT_S,
            )
        except TimeoutError:
            raise BusUnavailable(f"cannot reach NATS at {where} within {CONNECT_TIMEOUT_S:g} s") from None
        except (NatsError, OSError) as exc:
            raise BusUnavailable(f"cannot reach NATS at {where}: {exc}") from exc
        js = self._nc.jetstream(timeout=10)
        try:
            await self._ensure_stream(js)
        except BaseException:  # asked again next time, from a new connection (cancelled included)
            nc, self._nc = self._nc, None
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        self._js = js  # only once the stream and its consumers are as the settings say
        return js

    async def probe(self) -> None:
        """Ask JetStream something (its account information): raises when it does not answer."""
        js = await self.jetstream()
        await js.account_info()

    def connected(self) -> bool:
        """Whether the connection to NATS is up now (for /ready and the worker's leases)."""
        nc = self._nc
        return nc is not None and nc.is_connected

    # nats-py reports each failed reconnect; one line a while is enough (the state is in /ready)
    async def _error(self, exc: Exception) -> None:
        now = time.perf_counter()
        if now - self._last_error_log >= 30.0:
            self._last_error_log = now
            log.warning("NATS: %s", exc or type(exc).__name__)

    async def _disconnected(self) -> None:
        if not self._closing:
            log.warning("NATS: disconnected; reconnecting")

    async def _reconnected(self) -> None:
        log.info(
            "NATS: reconnected to %s", self._nc.connected_url.netloc if self._nc and self._nc.connected_url else "?"
        )

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
        from nats.js.errors import NotFoundError

        s = self.settings
        try:
            found = (await js.stream_info(s.stream)).config
        except NotFoundError:
            found = None
        if found is None or found.max_age != s.max_age_s or found.duplicate_window != _duplicate_window(s):
            add = js.add_stream if found is None else js.update_stream
            await add(
                StreamConfig(
                    name=s.stream,
                    subjects=[f"{s.subject}.*"],
                    retention=RetentionPolicy.WORK_QUEUE,
                    num_replicas=s.replicas,
                    duplicate_window=_duplicate_window(s),
                    # Jobs nobody ran for this long are dropped: the next round's job of the asset
                    # supersedes them (scoring continues from its checkpoint), and a backlog of stale
                    # check rounds would only be judged as rounds that never happened.
                    max_age=s.max_age_s,
                )
            )
            log.info(
                "%s JetStream stream %s (%d replicas)", "created" if found is None else "updated", s.stream, s.replicas
            )
        for partition in range(s.partitions):
            durable = consumer_name(partition)
            wanted = ConsumerConfig(
                durable_name=durable,
                filter_subject=f"{s.subject}.{partition}",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=s.ack_wait_s,
                max_deliver=s.max_deliver,
                max_ack_pending=1,  # one job of a partition at a time: an asset's jobs in order
            )
            try:
                found = (await js.consumer_info(s.stream, durable)).config
            except NotFoundError:
                found = None
            if found is None or (found.ack_wait, found.max_deliver) != (s.ack_wait_s, s.max_deliver):
                # created, or updated in place to the settings (a running job's beat follows ack_wait_s)
                await js.add_consumer(s.stream, wanted)
        beyond = [c.name for c in await js.consumers_info(s.stream) if _partition(c.name) >= s.partitions]
        if beyond:
            log.error(
                "JetStream stream %s has consumers of partitions %s beyond `partitions = %d`: jobs published "
                "there before are not run; set partitions back, or delete them once drained",
                s.stream,
                ", ".join(sorted(beyond)),
                s.partitions,
            )

    # -- publishing ---------------------------------------------------------------------------------
    def publish(self, jobs: Sequence[AssetJob]) -> int:
        """Publish jobs and wait until JetStream stored them; returns how many were new (not duplicates)."""
        if not jobs:
            return 0
        return self.call(self._publish(jobs), timeout=CALL_TIMEOUT_S + len(jobs) / 1000)

    async def _publish(self, jobs: Sequence[AssetJob]) -> int:
        from nats.errors import Error as NatsError

        js = await self.jetstream()
        s = self.settings
        try:
            acks = await asyncio.gather(
                *(
                    js.publish(
                        f"{s.subject}.{partition_of(job.asset, s.partitions)}",
                        job.encode(),
                        stream=s.stream,
                        headers={"Nats-Msg-Id": job.id},
                    )
                    for job in jobs
                )
            )
        except (NatsError, OSError) as exc:
            raise BusUnavailable(f"publishing {len(jobs)} jobs failed: {exc}") from exc
        return sum(1 for ack in acks if not ack.duplicate)

    def pending(self) -> int:
        """Jobs in the stream not yet finished (all partitions)."""
        return self.call(self._pending())

    async def _pending(self) -> int:
        js = await self.jetstream()
        info = await js.stream_info(self.settings.stream)
        return int(info.state.messages)


def _duplicate_window(s: FleetSettings) -> float:
    """JetStream refuses a duplicate window longer than the stream's max age."""
    return min(DUPLICATE_WINDOW_S, s.max_age_s)


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """End the tasks left on a stopped loop, then close it."""
    loop.run_until_complete(_cancel(asyncio.all_tasks(loop)))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


async def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def consumer_name(partition: int) -> str:
    return f"partition-{partition}"


def _partition(consumer: str | None) -> int:
    """The partition of one of the stream's consumers (-1: not one of pitstop's)."""
    number = (consumer or "").removeprefix("partition-")
    return int(number) if number.isdigit() else -1
