"""A fleet installation on one machine, for the cluster test and bench/fleet.py: NATS servers of its
own, a scratch PostgreSQL database, the shared Mosquitto under a topic prefix of its own, and
`pitstop serve --role ...` processes, each with its own settings file and data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from pitstop.testing.server import free_port, kill_process, stop_process
from pitstop.testing.services import MQTT_HOST, MQTT_PORT


@dataclass
class Node:
    """One `pitstop serve` process of the fleet."""

    name: str
    roles: list[str]
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, settings: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "pitstop.toml"
        config.write_text(_toml(settings | {"data_dir": str(self.directory / "data"), "api": {"port": self.port}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PITSTOP_")}
        roles = [arg for role in self.roles for arg in ("--role", role)]
        with (self.directory / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pitstop", "-c", str(config), "serve", *roles],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.directory,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready in {timeout:g} s: {self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL, as a machine that loses power."""
        kill_process(self.process)

    def stop(self) -> None:
        stop_process(self.process, 30)

    def log(self) -> str:
        path = self.directory / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class FleetSite:
    """The settings every node shares, and its nodes."""

    directory: Path
    database_url: str
    nats_urls: list[str]
    replicas: int = 1
    partitions: int = 8
    lease_seconds: float = 3.0
    scoring_every_s: float = 2.0
    baseline_hours: float = 10 / 60
    window_minutes: float = 0.5
    checks_every_s: float = 5.0
    asset_checks: bool = True  # False: health off (bench/fleet.py times scoring alone)
    prefix: str = field(default_factory=lambda: f"fleet-{uuid.uuid4().hex[:8]}")
    nodes: list[Node] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        health = self._health() if self.asset_checks else {"enabled": False}
        return {
            "database": {"url": self.database_url, "pool_size": 4},
            "scheduler": {"tick_seconds": 0.5, "lease_seconds": self.lease_seconds},
            "log": {"level": "INFO"},
            "health": health,
            "models": {"schedule": False},
            "prognostics": {"enabled": False},
            "scoring": {
                "every_s": self.scoring_every_s,
                "baseline_hours": self.baseline_hours,
                "window_minutes": self.window_minutes,
            },
            "mqtt": {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": self.prefix, "share_group": "ingest"},
            "fleet": {
                "servers": self.nats_urls,
                "stream": f"JOBS-{self.prefix}",
                "subject": f"jobs-{self.prefix}",
                "replicas": self.replicas,
                "partitions": self.partitions,
                "lease_seconds": self.lease_seconds,
                "ack_wait_s": self.lease_seconds,
            },
        }

    def _health(self) -> dict[str, Any]:
        """The assets' checks that run on any machine are per-asset jobs too: a `reading` check on
        every sensor, with levels no healthy reading reaches."""
        value = {"warning": 1000.0, "critical": 2000.0}
        reading = {"check": "reading", "target": "*", "params": {"stat": "latest", "window_s": 60}}
        return {
            "interval_s": self.checks_every_s,
            "default_checks": False,
            "checks": [{**reading, "thresholds": {"value": value}}],
        }

    def add(self, name: str, roles: list[str]) -> Node:
        node = Node(name, roles, free_port(), self.directory / name)
        self.nodes.append(node)
        return node

    def start(self, *nodes: Node) -> None:
        for node in nodes or self.nodes:
            node.start(self.settings())
        for node in nodes or self.nodes:
            node.wait_ready()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _toml(settings: dict[str, Any], table: str = "", *, array: bool = False) -> str:
    """Settings as TOML (strings, numbers, booleans, lists of strings, tables, arrays of tables):
    enough for these."""
    lines, tables = [], []
    for key, value in settings.items():
        name = f"{table}.{key}" if table else key
        if isinstance(value, dict):
            tables.append(_toml(value, name))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            tables += [_toml(item, name, array=True) for item in value]
        else:
            lines.append(f"{key} = {json.dumps(value) if not isinstance(value, bool) else str(value).lower()}")
    head = [f"[[{table}]]" if array else f"[{table}]"] if table else []
    return "\n".join([*head, *lines, "", *tables])


def epoch_s(ts: datetime) -> float:
    return ts.timestamp()
