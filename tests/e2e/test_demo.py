"""`pitstop demo` from a clean directory serves /health and /ready."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pitstop.testing.server import free_port, running_pitstop


@pytest.mark.slow
def test_demo_serves_health_and_ready(tmp_path: Path) -> None:
    port = free_port()
    args = ["demo", "--port", str(port), "--data-dir", str(tmp_path / "d")]
    with running_pitstop(args, port=port, cwd=tmp_path, timeout_s=60) as server:
        assert httpx.get(f"{server.url}/ready").status_code == 200
        health = httpx.get(f"{server.url}/health").json()
        assert health["status"] == "ok" and health["version"]
        assert [m["name"] for m in health["models"]] == ["hvac-twin"]  # the demo's champion, v1
        docs = httpx.get(f"{server.url}/docs")
        assert docs.status_code == 200
    output = "".join(server.output)
    viewer = next(line.split()[-1] for line in output.splitlines() if "viewer key" in line)
    assert viewer.startswith("ps_")
    assert f"http://127.0.0.1:{port}" in output
