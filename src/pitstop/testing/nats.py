"""NATS servers with JetStream for tests and benches: one, or a cluster of three on high ports, each in
a temporary directory of its own (never the machine's shared server), stopped and removed afterwards."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pitstop.testing.server import free_port, kill_process, stop_process
from pitstop.testing.services import port_open, unavailable


@dataclass
class NatsNode:
    name: str
    port: int
    route_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, routes: list[int]) -> None:
        cluster = ""
        if routes:
            others = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes if p != self.route_port)
            cluster = f"cluster {{ name: pitstop-test\n  listen: 127.0.0.1:{self.route_port}\n  routes: [{others}] }}"
        config = self.directory / "nats.conf"
        config.write_text(
            f"server_name: {self.name}\nlisten: 127.0.0.1:{self.port}\n"
            f"jetstream {{ store_dir: {self.directory / 'store'} }}\n{cluster}\n"
        )
        with (self.directory / "nats.log").open("ab") as log:
            self.process = subprocess.Popen(["nats-server", "-c", str(config)], stdout=log, stderr=log)
        deadline = time.perf_counter() + 10
        while not port_open("127.0.0.1", self.port, 0.2):
            if self.process.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(
                    f"nats-server {self.name} did not start: {(self.directory / 'nats.log').read_text()}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the node dies as a crashed machine would."""
        kill_process(self.process)

    def stop(self) -> None:
        stop_process(self.process, 10)


@dataclass
class NatsCluster:
    nodes: list[NatsNode] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]


@contextmanager
def nats_servers(directory: Path, count: int = 1) -> Iterator[NatsCluster]:
    """`count` NATS servers with JetStream (3: a cluster whose streams can keep three replicas)."""
    if shutil.which("nats-server") is None:
        unavailable("nats-server is not installed (Debian package nats-server)")
    nodes = [NatsNode(f"n{i + 1}", free_port(), free_port(), directory / f"n{i + 1}") for i in range(count)]
    cluster = NatsCluster(nodes)
    try:
        for node in nodes:
            node.directory.mkdir(parents=True, exist_ok=True)
            node.start([n.route_port for n in nodes] if count > 1 else [])
        if count > 1:
            _wait_for_meta_leader(cluster)
        yield cluster
    finally:
        for node in nodes:
            node.stop()


def _wait_for_meta_leader(cluster: NatsCluster, timeout: float = 30.0) -> None:
    """JetStream in a cluster answers once its nodes elected a meta leader."""
    import asyncio

    import nats

    async def ready() -> bool:
        nc = await nats.connect(servers=cluster.urls, connect_timeout=2, max_reconnect_attempts=1)
        try:
            await nc.jetstream().account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    def ask() -> bool:
        try:
            return asyncio.run(ready())
        except Exception:
            return False

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        # on a thread of its own: the caller's thread may run a loop already (a browser test's)
        with ThreadPoolExecutor(max_workers=1) as pool:
            if pool.submit(ask).result():
                return
        time.sleep(0.5)
    raise RuntimeError("the NATS cluster elected no JetStream leader")
