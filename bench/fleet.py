"""The fleet's throughput on this machine: readings ingested, assets scored, scoring lag.

    python bench/fleet.py --assets 200 --workers 1,2 [--sensors 2] [--seconds 60] [--every 1]

For each worker count W it starts a fleet of its own (pitstop/testing/fleet.py): one NATS server with
JetStream on a free port, a scratch PostgreSQL database, one `pitstop serve --role api,ingest,scheduler`
and W `pitstop serve --role worker`. The inventory is --assets pumps of --sensors sensors each; each
gets a 12-minute history at one reading a second, so stream scoring (10-minute baselines, 30 s
median) has a baseline from the start. Then two phases:

1. Scoring: live readings, one a second per sensor (HTTP batches), while the scheduler publishes a
   scoring job per asset every --every seconds and the workers run them, for --seconds. Assets
   scored per second (after a 15 s warm-up) = jobs finished in the window / its length (the offered rate is assets /
   every); lag = a job's finish time minus the time it was published for (P50, P95 from
   `fleet_job_runs`); the workers' CPU per job (their processes' user + system time over the
   window); jobs still waiting in the stream at the end.
2. Ingest: two HTTP clients post --ingest-readings in batches of 5,000 (timestamps a month back, so
   no scoring reaches them) to the API node: readings stored per second, and the API process's CPU
   per reading.

Prints JSON, one object per W. Everything runs on this machine: the API node, the workers, NATS,
PostgreSQL and the load share its cores (`os.cpu_count()` in the output).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit
from pitstop import inventory
from pitstop.app import build
from pitstop.config import Settings
from pitstop.config.fleet import FleetSettings
from pitstop.core.types import Role
from pitstop.fleet.bus import JobBus
from pitstop.storage.schema import fleet_job_runs, readings
from pitstop.testing.fleet import FleetSite, Node
from pitstop.testing.nats import nats_servers
from pitstop.testing.services import scratch_postgres_database

HISTORY_S = 12 * 60
WARM_UP_S = 15.0
SENSORS = [("vib_rms", 5.0, 0.2, 0, 100), ("bearing_temp", 60.0, 0.5, -20, 150), ("flow", 30.0, 1.0, 0, 100)]


def inventory_text(assets: int, sensors: int) -> str:
    rows = ", ".join(
        f'{{ name = "{n}", unit = "", min = {lo}, max = {hi}, period_s = 1 }}' for n, _, _, lo, hi in SENSORS[:sensors]
    )
    blocks = [
        f'[[assets]]\nname = "pump-{i:05d}"\nsite = "bench"\ntype = "pump"\nsensors = [{rows}]\n' for i in range(assets)
    ]
    return '[[sites]]\nname = "bench"\n\n' + "\n".join(blocks)


def frame(assets: int, sensors: int, start: datetime, seconds: int, rng: np.random.Generator) -> pd.DataFrame:
    ts = np.repeat(np.arange(seconds, dtype=np.int64) + int(start.timestamp()), assets * sensors)
    names = np.tile(np.repeat([f"pump-{i:05d}" for i in range(assets)], sensors), seconds)
    sensor = np.tile([s[0] for s in SENSORS[:sensors]], assets * seconds)
    mean = np.tile([s[1] for s in SENSORS[:sensors]], assets * seconds)
    sd = np.tile([s[2] for s in SENSORS[:sensors]], assets * seconds)
    return pd.DataFrame(
        {"ts": ts, "asset": names, "sensor": sensor, "value": np.round(mean + rng.normal(0, 1, len(ts)) * sd, 4)}
    )


def body(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"ts": int(t), "asset": a, "sensor": s, "value": float(v)}
        for t, a, s, v in zip(df.ts, df.asset, df.sensor, df.value, strict=True)
    ]


class LiveReadings(threading.Thread):
    """One reading a second per sensor of every asset, at the current time, over HTTP."""

    def __init__(self, url: str, key: str, assets: int, sensors: int, rng: np.random.Generator) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.assets, self.sensors, self.rng = url, key, assets, sensors, rng
        self.stop = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        start, first, second = time.perf_counter(), datetime.now(UTC).replace(microsecond=0), 0
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {self.key}"}) as http:
            while not self.stop.is_set():
                live = frame(self.assets, self.sensors, first + timedelta(seconds=second), 1, self.rng)
                for i in range(0, len(live), 5000):
                    response = http.post(f"{self.url}/api/readings", json=body(live.iloc[i : i + 5000]))
                    if response.status_code >= 300:
                        self.error = f"live readings refused: {response.status_code} {response.text[:300]}"
                        return
                second += 1
                self.stop.wait(max(0.0, second - (time.perf_counter() - start)))

    def join(self, timeout: float | None = None) -> None:
        self.stop.set()
        super().join(timeout)
        if self.error:
            raise SystemExit(self.error)


def cpu_seconds(nodes: list[Node]) -> float:
    """User and system CPU seconds the nodes' processes have used so far."""
    total = 0.0
    for node in nodes:
        assert node.process is not None
        times = psutil.Process(node.process.pid).cpu_times()
        total += times.user + times.system
    return total


def post_all(url: str, key: str, batches: list[list[dict[str, Any]]]) -> int:
    sent = 0
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
        for batch in batches:
            response = http.post(f"{url}/api/readings", json=batch)
            response.raise_for_status()
            sent += len(batch)
    return sent


def run(assets: int, sensors: int, workers: int, seconds: float, every: float, ingest_readings: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    with (
        tempfile.TemporaryDirectory() as tmp,
        nats_servers(Path(tmp) / "nats") as nats,
        scratch_postgres_database() as url,
    ):
        site = FleetSite(Path(tmp), url, nats.urls, partitions=16, scoring_every_s=every, asset_checks=False)
        admin = build(Settings(database={"url": url}, data_dir=Path(tmp) / "admin"))
        admin.db.upgrade()
        inventory.apply(
            admin.db,
            inventory.parse(inventory_text(assets, sensors), "bench", "toml"),
            actor="bench",
            now=admin.clock.now(),
        )
        _, key = admin.keys.create("bench", Role.OPERATOR, admin.clock.now())
        t0 = datetime.now(UTC).replace(microsecond=0)  # the history ends here; live readings come after
        admin.ingest.ingest(frame(assets, sensors, t0 - timedelta(seconds=HISTORY_S), HISTORY_S, rng), source="bench")
        api = site.add("api", ["api", "ingest", "scheduler"])
        nodes = [site.add(f"worker-{i}", ["worker"]) for i in range(workers)]
        try:
            site.start(api, *nodes)
            # 1. scoring under live readings (a warm-up first: each asset's first job fits its baseline)
            live = LiveReadings(api.url, key, assets, sensors, rng)
            live.start()
            time.sleep(WARM_UP_S)
            with admin.db.connect() as conn:
                done_before = conn.execute(select(func.count()).select_from(fleet_job_runs)).scalar_one()
            window_start, since = time.perf_counter(), datetime.now(UTC)
            workers_cpu = cpu_seconds(nodes)
            time.sleep(seconds)
            window_s = time.perf_counter() - window_start
            workers_cpu = cpu_seconds(nodes) - workers_cpu
            with admin.db.connect() as conn:
                done = conn.execute(select(func.count()).select_from(fleet_job_runs)).scalar_one() - done_before
                rows = conn.execute(
                    select(fleet_job_runs.c.until_at, fleet_job_runs.c.finished_at).where(
                        fleet_job_runs.c.until_at >= since
                    )
                ).all()
            live.join()
            # 2. ingest capacity: readings a month back (no scoring reaches them), two clients
            span = -(-ingest_readings // (assets * sensors))  # seconds of readings for the whole fleet
            backfill = frame(assets, sensors, t0 - timedelta(days=30), span, rng)
            batches = [body(backfill.iloc[i : i + 5000]) for i in range(0, len(backfill), 5000)]
            halves = [batches[0::2], batches[1::2]]
            counts = [0, 0]
            start, api_cpu = time.perf_counter(), cpu_seconds([api])
            threads = [
                threading.Thread(target=lambda i=i: counts.__setitem__(i, post_all(api.url, key, halves[i])))
                for i in range(2)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ingest_s, api_cpu = time.perf_counter() - start, cpu_seconds([api]) - api_cpu
            with admin.db.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(readings)).scalar_one()
            bus = JobBus(FleetSettings(**site.settings()["fleet"]), name="bench")
            try:
                waiting = bus.pending()
            finally:
                bus.close()
            lags = np.array([(f - u).total_seconds() for u, f in rows])
        finally:
            site.stop()
            admin.close()
    return {
        "assets": assets,
        "sensors_per_asset": sensors,
        "workers": workers,
        "ingest_readings": sum(counts),
        "ingest_readings_per_s": round(sum(counts) / ingest_s),
        "ingest_api_cpu_us_per_reading": round(api_cpu / sum(counts) * 1e6, 1),
        "scoring_every_s": every,
        "scoring_offered_assets_per_s": round(assets / every, 1),
        "scoring_window_s": round(window_s, 1),
        "assets_scored_per_s": round(done / window_s, 1),
        "worker_cpu_ms_per_job": round(workers_cpu / done * 1000, 1) if done else None,
        "scoring_lag_p50_s": round(float(np.percentile(lags, 50)), 2) if len(lags) else None,
        "scoring_lag_p95_s": round(float(np.percentile(lags, 95)), 2) if len(lags) else None,
        "jobs_waiting_at_end": waiting,
        "readings_stored": stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=200)
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument("--sensors", type=int, default=2, choices=[1, 2, 3])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the scoring phase")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between scoring rounds")
    parser.add_argument("--ingest-readings", type=int, default=400_000, help="readings posted in the ingest phase")
    args = parser.parse_args()
    results = [
        run(args.assets, args.sensors, int(w), args.seconds, args.every, args.ingest_readings)
        for w in args.workers.split(",")
    ]
    emit({"cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()], "runs": results})


if __name__ == "__main__":
    main()
