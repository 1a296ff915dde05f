"""`pitstop demo` from a clean directory serves /health and /ready, and its settings file runs the
guides' checks of the monitored server and of pitstop itself from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pitstop.testing.server import free_port, running_pitstop


@pytest.mark.slow
def test_demo_serves_health_and_ready(tmp_path: Path, pg_url: str) -> None:
    port = free_port()
    args = ["demo", "--port", str(port), "--data-dir", str(tmp_path / "d")]
    with running_pitstop(args, port=port, cwd=tmp_path, timeout_s=60) as server:
        assert httpx.get(f"{server.url}/ready").status_code == 200
        health = httpx.get(f"{server.url}/health").json()
        assert health["status"] == "ok" and health["version"]
        assert [m["name"] for m in health["models"]] == ["hvac-twin"]  # the demo's champion, v1
        docs = httpx.get(f"{server.url}/docs")
        assert docs.status_code == 200
        pid_file = tmp_path / "d" / "pitstop.pid"
        assert pid_file.read_text().strip() == str(server.process.pid)  # the serving process names itself
        # the demo's settings as written, with its PostgreSQL activity example pointed at a real server
        shipped = (tmp_path / "d" / "pitstop.toml").read_text()
        example = 'enabled = false\nsecrets = { url = "postgresql://monitor@127.0.0.1:5432/plant" }'
        assert example in shipped
        settings = tmp_path / "site.toml"
        settings.write_text(shipped.replace(example, f"secrets = {{ url = {json.dumps(pg_url)} }}"))
        done = subprocess.run(
            [sys.executable, "-m", "pitstop", "-c", str(settings), "check", "--json"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert done.returncode in (0, 1, 2), done.stderr
        results = {(r["check"], r["target"]): r for r in json.loads(done.stdout)["checks"]}
        latency = results["reading", "vms-server/camera_latency_ms"]
        assert latency["status"] in ("healthy", "warning", "critical") and "p95" in latency["summary"]
        assert latency["observed"]["readings"] > 0  # the simulator's history of the server's reports
        assert results["process_memory", "pitstop"]["observed"]["count"] == 1  # the demo server, by its pid file
        assert results["process_memory", "pitstop"]["observed"]["rss_mb"] > 50
        assert results["process_memory", "pitstop"]["status"] == "healthy"  # under the guide's 500 MB
        assert ("predict_latency", "*") in results and ("network", "*") in results
        activity = results["postgres_activity", "plant-db"]
        # judged (other sessions on the shared server may be busy), not unknown or unreachable
        assert activity["status"] in ("healthy", "warning") and "lock_waits" in activity["observed"], activity
    output = "".join(server.output)
    viewer = next(line.split()[-1] for line in output.splitlines() if "viewer key" in line)
    assert viewer.startswith("ps_")
    assert f"http://127.0.0.1:{port}" in output
