"""Dashboard page times and memory of the `pitstop demo` process with a simulated month behind it.

    python bench/web.py [--days 30] [--repeat 5] [--command demo|serve]

Prepares a demo data directory (SQLite) in this process: the demo inventory, `--days` of simulated
readings, the demo's two model versions and one prognostics pass. Then starts `pitstop demo` (the
simulator keeps running, every scheduled job runs) or `pitstop serve` on it as a subprocess, waits
until its scheduler has run every job once (the roll-ups catch up on the month, drift is computed),
logs in over HTTP and requests every dashboard page `--repeat` times. Prints JSON: per page the first,
median and max server time (the response's `Server-Timing` header; the client's wall time and the page's
size in KiB beside it), the readings stored, how long the server's first round of jobs took, and the
server process's resident memory (VmRSS from /proc/<pid>/status at ready, after the jobs, after the
pages; VmHWM: its peak).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit
from pitstop import demo
from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Role
from pitstop.sim.live import attach
from pitstop.testing.server import ServerDidNotStart, free_port, running_pitstop

PAGES = [
    "/ui/",
    "/ui/incidents",
    "/ui/health",
    "/ui/assets",
    "/ui/assets/ahu-1?range=24h",
    "/ui/assets/ahu-1?range=7d",
    "/ui/assets/ahu-1?range=30d",
    "/ui/assets/ahu-1?range=1y",
    "/ui/assets/pump-1?range=7d",
    "/ui/assets/pump-1?range=30d",
    "/ui/maintenance",
    "/ui/procedures",
    "/ui/models",
    "/ui/models/hvac-twin",
    "/ui/backups",
    "/ui/kb",
    "/ui/kb?q=bearing",
]
# The jobs whose first run the pages wait for: the roll-ups' catch-up on the month, the drift reports (the
# `dashboard-drift` job of old is the model component's `model-drift` now), the stream scoring.
FIRST_JOBS = ("rollups", "model-drift", "scoring")
START_TIMEOUT_S = 180.0  # the server's start; its first round of jobs: --jobs-timeout


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def prepare(data_dir: Path, days: float) -> dict[str, object]:
    pitstop = build(Settings(data_dir=data_dir))
    demo.prepare(pitstop)
    start = time.perf_counter()
    _, stored = attach(
        clock=pitstop.clock,
        data_dir=pitstop.settings.data_dir,
        assets=pitstop.assets,
        readings=pitstop.readings,
        ingest=pitstop.ingest,
        scheduler=pitstop.scheduler,
        history=timedelta(days=days),
    )
    fill_s = time.perf_counter() - start
    start = time.perf_counter()
    trained = demo.train_models(pitstop)
    train_s = time.perf_counter() - start
    pitstop.prognostics.run()
    _, operator = pitstop.keys.create("bench-operator", Role.OPERATOR, pitstop.clock.now())
    pitstop.close()
    return {"readings": stored, "fill_s": fill_s, "models": trained, "train_s": train_s, "operator": operator}


def wait_for_jobs(data_dir: Path, proc: subprocess.Popen[str], since: float, timeout_s: float) -> float:
    """Seconds until the server's scheduler finished each of FIRST_JOBS once (its first round of jobs)."""
    pitstop = build(Settings(data_dir=data_dir))
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            if all(pitstop.jobs.last_finished(job) is not None for job in FIRST_JOBS):
                return time.monotonic() - since
            time.sleep(0.5)
    finally:
        pitstop.close()
    raise SystemExit(f"the server did not finish its first round of jobs in {timeout_s:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--command", choices=["demo", "serve"], default="demo")
    parser.add_argument(
        "--jobs-timeout", type=float, default=900, help="seconds to wait for the server's first round of jobs"
    )
    parser.add_argument("--sqlite-cache-mb", type=int, help="the server's database.sqlite_cache_mb (default: its own)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        prepared = prepare(data_dir, args.days)
        port = free_port()
        command = ["demo", "--port", str(port), "--data-dir", str(data_dir)]
        if args.command == "serve":
            command = ["--data-dir", str(data_dir), "serve", "--port", str(port)]
        env = {} if args.sqlite_cache_mb is None else {"PITSTOP_DATABASE__SQLITE_CACHE_MB": str(args.sqlite_cache_mb)}
        try:
            with running_pitstop(command, port=port, cwd=Path(tmp), timeout_s=START_TIMEOUT_S, env=env) as server:
                started = time.monotonic() - server.ready_s
                at_ready = memory_mb(server.process.pid)
                jobs_s = wait_for_jobs(data_dir, server.process, started, args.jobs_timeout)
                after_jobs = memory_mb(server.process.pid)
                pages = drive(server.url, str(prepared["operator"]), args.repeat)
                after_pages = memory_mb(server.process.pid)
                ready_s, lines = server.ready_s, server.output
        except ServerDidNotStart as exc:
            raise SystemExit(str(exc)) from None
    slowest = max(pages.values(), key=lambda p: p["max_ms"])
    emit(
        {
            "command": f"pitstop {args.command}",
            "sqlite_cache_mb": args.sqlite_cache_mb,
            "days": args.days,
            "readings": prepared["readings"],
            "fill_seconds": round(float(prepared["fill_s"]), 1),  # type: ignore[arg-type]
            "models": prepared["models"],
            "train_seconds": round(float(prepared["train_s"]), 1),  # type: ignore[arg-type]
            "server_ready_seconds": round(ready_s, 1),
            "server_first_jobs_seconds": round(jobs_s, 1),
            "repeat": args.repeat,
            "pages": pages,
            "slowest_page_ms": slowest["max_ms"],
            "server_rss_mb": {"at_ready": at_ready["VmRSS"], "after_jobs": after_jobs["VmRSS"], **after_pages},
            "server_peak_rss_mb": after_pages["VmHWM"],
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "server_start_log": [x.rstrip() for x in lines[:12]],
        }
    )


def drive(url: str, key: str, repeat: int) -> dict[str, dict[str, float]]:
    pages: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.post("/ui/login", data={"key": key})
        if response.status_code != 303:
            raise SystemExit(f"login: {response.status_code}")
        for page in PAGES:
            server, wall = [], []
            for _ in range(repeat):
                t = time.perf_counter()
                response = client.get(page)
                wall.append((time.perf_counter() - t) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{page}: {response.status_code}")
                timing = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
                server.append(float(timing.group(1)) if timing else wall[-1])
            pages[page] = {
                "first_ms": server[0],
                "median_ms": round(statistics.median(server), 1),
                "max_ms": max(server),
                "wall_median_ms": round(statistics.median(wall), 1),
                "kb": round(len(response.content) / 1024, 1),  # what the browser gets (the charts' data too)
            }
    return pages


if __name__ == "__main__":
    main()
