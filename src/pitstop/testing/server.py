"""A pitstop process of its own (`pitstop demo`, `pitstop serve`) on a free port: for the browser
tests, the end-to-end tests and the benches that drive a real server over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL, as a machine that loses power, and wait for the end."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(10)


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL when it has not ended within `timeout`."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_process(process)


class ServerDidNotStart(RuntimeError):
    """The process exited, or `/ready` did not answer 200 in time; the message ends with its output."""


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    url: str
    ready_s: float
    # Everything the process printed, each line prefixed by the seconds since it started.
    output: list[str] = field(default_factory=list)


@contextmanager
def running_pitstop(
    args: Sequence[str], *, port: int, cwd: Path, timeout_s: float = 90.0, env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """Start `python -m pitstop ARGS` (which must listen on ``port``), wait for `/ready`, stop it after.

    The environment is this one without PITSTOP_* settings (so the test's own do not leak in),
    plus ``env``.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PITSTOP_")} | (env or {})
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "pitstop", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    stdout = process.stdout
    server = RunningServer(process, f"http://127.0.0.1:{port}", 0.0)
    reader = threading.Thread(
        target=lambda: server.output.extend(f"{time.perf_counter() - started:.1f} {line}" for line in stdout),
        daemon=True,
    )
    reader.start()
    try:
        while process.poll() is None and time.perf_counter() - started < timeout_s:
            try:
                if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.2)
        else:
            tail = "".join(server.output[-40:])
            raise ServerDidNotStart(f"pitstop {' '.join(args)} did not become ready in {timeout_s:g} s:\n{tail}")
        server.ready_s = time.perf_counter() - started
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)  # the output is whole once the process is gone
        stdout.close()
