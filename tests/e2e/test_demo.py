"""`pitstop demo` from a clean directory serves /health and /ready."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_demo_serves_health_and_ready(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PITSTOP_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pitstop", "demo", "--port", str(port), "--data-dir", str(tmp_path / "d")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, "demo did not become ready within a minute"
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "ok"}
        docs = httpx.get(f"http://127.0.0.1:{port}/docs")
        assert docs.status_code == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    viewer = next(line.split()[-1] for line in output.splitlines() if "viewer key" in line)
    assert viewer.startswith("ps_")
    assert f"http://127.0.0.1:{port}" in output
