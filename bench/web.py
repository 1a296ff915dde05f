"""Dashboard page times on the demo with simulated history, and the process's memory.

    python bench/web.py [--days 30] [--repeat 5]

Builds the demo installation (SQLite in a temporary data dir), fills `--days` of simulated readings,
trains the demo's two model versions, runs the health checks once, logs in as the demo operator and
requests every dashboard page `--repeat` times through the ASGI app in this process. Prints JSON: per
page the first, median and max server time (the request's wall time in-process: no network; the first
request of a page finds nothing kept in memory: asset plot buckets, model drift), the readings stored,
and the resident memory now and at its peak (the whole process: pitstop, the app and the simulated data).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psutil
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit
from pitstop import demo
from pitstop.api import create_app
from pitstop.app import build
from pitstop.config import Settings
from pitstop.sim.live import attach

PAGES = [
    "/ui/",
    "/ui/incidents",
    "/ui/health",
    "/ui/assets",
    "/ui/assets/ahu-1?range=24h",
    "/ui/assets/ahu-1?range=30d",
    "/ui/assets/pump-1?range=7d",
    "/ui/maintenance",
    "/ui/procedures",
    "/ui/models",
    "/ui/models/hvac-twin",
    "/ui/backups",
    "/ui/kb",
    "/ui/kb?q=bearing",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pitstop = build(Settings(data_dir=Path(tmp)))
        _, operator = demo.prepare(pitstop)
        start = time.perf_counter()
        _, stored = attach(pitstop, history=timedelta(days=args.days))
        fill_s = time.perf_counter() - start
        start = time.perf_counter()
        trained = demo.train_models(pitstop)
        train_s = time.perf_counter() - start
        pitstop.health.evaluate(pitstop.health.run_checks())
        pages: dict[str, dict[str, float]] = {}
        with TestClient(create_app(pitstop)) as client:
            client.post("/ui/login", data={"key": operator})
            for page in PAGES:
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    response = client.get(page)
                    times.append(time.perf_counter() - t)
                    if response.status_code != 200:
                        raise SystemExit(f"{page}: {response.status_code}")
                pages[page] = {
                    "first_ms": round(times[0] * 1000, 1),  # nothing kept yet (asset plots, model drift)
                    "median_ms": round(statistics.median(times) * 1000, 1),
                    "max_ms": round(max(times) * 1000, 1),
                }
        pitstop.close()
    emit(
        {
            "days": args.days,
            "readings": stored,
            "fill_seconds": round(fill_s, 1),
            "models": trained,
            "train_seconds": round(train_s, 1),
            "repeat": args.repeat,
            "pages": pages,
            "slowest_page_ms": max(p["max_ms"] for p in pages.values()),
            "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


if __name__ == "__main__":
    main()
