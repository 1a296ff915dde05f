"""Fault injection: real processes, files, databases and brokers in a sandbox per test; nothing
that is healed is mocked. Time is a FrozenClock except where a real process must start.

With PITSTOP_HEAL_BENCH=<file>, each test appends what it measured (fault, outcome, seconds from
the fault to the verified repair) as a JSON line; bench/heal.py runs the suite that way."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.server import free_port

SERVICE = """
import http.server, sys
if "--crash" in sys.argv:
    sys.exit(3)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""

# The "script" a restart rule runs: start the service detached, note the start and the pid.
STARTER = """
import os, subprocess, sys
sandbox, port, mode = sys.argv[1:4]
with open(os.path.join(sandbox, "starts.log"), "a") as log:
    log.write("start\\n")
args = [sys.executable, os.path.join(sandbox, "service.py"), port] + (["--crash"] if mode == "crash" else [])
child = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
with open(os.path.join(sandbox, "pid"), "w") as pid:
    pid.write(str(child.pid))
"""


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


class Service:
    """A small HTTP service of the test's own, started through the same script the rule uses."""

    def __init__(self, sandbox: Path, mode: str = "ok") -> None:
        self.sandbox = sandbox
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/health"
        (sandbox / "service.py").write_text(SERVICE)
        (sandbox / "starter.py").write_text(STARTER)
        self.command = [sys.executable, str(sandbox / "starter.py"), str(sandbox), str(self.port), mode]

    @property
    def starts(self) -> int:
        log = self.sandbox / "starts.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def start(self) -> None:
        import subprocess

        subprocess.run(self.command, check=True, timeout=30)

    def kill(self) -> None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.kill(int((self.sandbox / "pid").read_text()), signal.SIGKILL)


def make_pitstop(sandbox: Path, clock: FrozenClock, **settings: Any) -> Pitstop:
    db = Database(f"sqlite:///{sandbox / 'pitstop.db'}")
    db.upgrade()
    base: dict[str, Any] = {"data_dir": sandbox / "data", "health": {"default_checks": False, "interval_s": 2.0}}
    return build(Settings(**(base | settings)), clock=clock, db=db)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    path = tmp_path / "sandbox"
    path.mkdir()
    return path


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def record() -> Iterator[Callable[..., None]]:
    """record(fault=..., outcome=..., seconds=...) for bench/heal.py."""
    target = os.environ.get("PITSTOP_HEAL_BENCH")

    def write(**values: Any) -> None:
        if target:
            with open(target, "a") as out:
                out.write(json.dumps(values) + "\n")

    yield write
