"""Serving: `POST /predict/{model}` through the real HTTP stack, and the predictors in-process. Prints JSON.

    python bench/serving.py [--seconds 5] [--rates 250,500,1000] [--connections 8] [--calls 5000]
                            [--http auto|h11|httptools] [--loop auto|asyncio|uvloop]

Set-up: a temporary data dir (SQLite), the HVAC twin (300 trees per output, 6 inputs, 3 outputs)
trained on 14 simulated days of ahu-1 and registered as champion.

- in-process: single-row latency (P50/P95/P99 µs over --calls calls) of the ONNX Runtime session
  (what /predict serves, 1 intra-op thread) against the native LightGBM path on the same model,
  and batch throughput (rows/s) on 1,000-row batches;
- HTTP: a child process runs uvicorn (one worker, no scheduler, access log off; `--http` and
  `--loop` as uvicorn takes them, "auto" being httptools and uvloop when installed, which pitstop
  does not require) on 127.0.0.1; this process sends single-row requests with httpx over
  keep-alive connections.
  * closed loop: one connection, one request after another (latency without queueing);
  * open loop at each of --rates requests/s for --seconds: sends are scheduled at fixed
    intervals on --connections connections (a bounded load generator: at most that many requests
    in flight). Latency is measured from the scheduled send time, so a server that falls behind
    is charged for the queueing it causes (no coordinated omission); `service` is from the actual
    send. Both the load generator and the server run on the same (shared, 2-core) machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, emit
from pitstop import inventory
from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Role
from pitstop.sim import Simulator, assets_of_inventory

NAME = "hvac-twin"
SERVER = """
import sys, uvicorn
from pathlib import Path
from pitstop.api import create_app
from pitstop.app import build
from pitstop.config import Settings
pitstop = build(Settings(data_dir=Path(sys.argv[1])))
uvicorn.run(
    create_app(pitstop), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False,
    http=sys.argv[3], loop=sys.argv[4],
)
"""


def percentiles(samples: list[float] | np.ndarray, scale: float = 1e6) -> dict[str, float]:
    data = np.asarray(samples) * scale
    return {f"p{q}": round(float(np.percentile(data, q)), 1) for q in (50, 95, 99)}


def hvac_frame():  # type: ignore[no-untyped-def]
    spec = inventory.read_file(ROOT / "src" / "pitstop" / "data" / "demo-inventory.toml")
    assets = [a for a in assets_of_inventory(spec) if a.type == "hvac"]
    batch = Simulator(assets, seed=0).batch(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))
    frame = batch.frame()
    return frame[frame.asset == "ahu-1"].pivot_table(index="ts", columns="sensor", values="value").dropna()


def in_process(twin, rows: np.ndarray, calls: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    onnx = twin.to_onnx()
    out: dict[str, object] = {}
    for label, predictor in (("onnxruntime", onnx), ("lightgbm", twin)):
        for i in range(200):
            predictor.predict_array(rows[i % len(rows)][np.newaxis, :])
        samples = []
        for i in range(calls):
            row = rows[i % len(rows)][np.newaxis, :]
            started = time.perf_counter()
            predictor.predict_array(row)
            samples.append(time.perf_counter() - started)
        batch = rows[:1000]
        started = time.perf_counter()
        for _ in range(20):
            predictor.predict_array(batch)
        per_batch = (time.perf_counter() - started) / 20
        out[label] = {
            "single_row_us": percentiles(samples),
            "batch_1000_ms": round(per_batch * 1000, 2),
            "batch_rows_per_s": round(len(batch) / per_batch),
        }
    native = twin.predict_array(rows)
    gap = np.abs(onnx.predict_array(rows) - native)
    out["parity_max_abs_diff"] = float(np.max(gap))
    out["parity_max_rel_diff"] = float(np.max(gap / np.maximum(np.abs(native), 1.0)))  # what the gate checks
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_loop(
    url: str, headers: dict[str, str], bodies: list[dict[str, object]] | None, seconds: float
) -> dict[str, object]:
    """One connection, one request after another; `bodies` None: GET (the /health baseline)."""
    samples = []

    def send(client: httpx.Client, i: int) -> httpx.Response:
        return client.get(url) if bodies is None else client.post(url, json=bodies[i % len(bodies)])

    with httpx.Client(headers=headers) as client:
        for i in range(100):
            send(client, i).raise_for_status()
        end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < end:
            started = time.perf_counter()
            response = send(client, i)
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            i += 1
    return {
        "requests": len(samples),
        "requests_per_s": round(len(samples) / seconds),
        "latency_ms": percentiles(samples, 1e3),
    }


def open_loop(
    url: str, headers: dict[str, str], bodies: list[dict[str, object]], rate: float, seconds: float, connections: int
) -> dict[str, object]:
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    next_index = [0]
    lock = threading.Lock()
    scheduled_lat: list[float] = []
    service_lat: list[float] = []
    errors = [0]

    def worker() -> None:
        with httpx.Client(headers=headers) as client:
            client.post(url, json=bodies[0])  # open the connection before the clock starts
            while True:
                with lock:
                    i = next_index[0]
                    next_index[0] += 1
                if i >= total:
                    return
                due = start + i / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                sent = time.perf_counter()
                response = client.post(url, json=bodies[i % len(bodies)])
                done = time.perf_counter()
                with lock:
                    if response.status_code != 200:
                        errors[0] += 1
                    scheduled_lat.append(done - due)
                    service_lat.append(done - sent)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "target_per_s": rate,
        "requests": total,
        "errors": errors[0],
        "achieved_per_s": round(total / elapsed),
        "latency_ms": percentiles(scheduled_lat, 1e3),
        "service_ms": percentiles(service_lat, 1e3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"])
    parser.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    args = parser.parse_args()

    installed = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m) is not None]
    frame = hvac_frame()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        pitstop = build(Settings(data_dir=data_dir))
        pitstop.db.upgrade()
        started = time.perf_counter()
        result = pitstop.models.retrain(NAME, frame, trigger="bench", params={"n_estimators": 300}, rules=[])
        train_s = time.perf_counter() - started
        version, twin = pitstop.models.registry.serving(NAME)
        inputs = list(twin.inputs)
        rows = frame[inputs].to_numpy(dtype=np.float64)
        _, token = pitstop.keys.create("bench", Role.VIEWER, pitstop.clock.now())
        pitstop.close()
        local = in_process(twin, rows, args.calls)

        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(data_dir), str(port), args.http, args.loop], env=env
        )
        try:
            url = f"http://127.0.0.1:{port}/predict/{NAME}"
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(300):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            bodies = [{"rows": [row.tolist()]} for row in rows[:2000]]
            baseline = closed_loop(f"http://127.0.0.1:{port}/health", headers, None, args.seconds)
            sequential = closed_loop(url, headers, bodies, args.seconds)
            loads = [
                open_loop(url, headers, bodies, float(r), args.seconds, args.connections) for r in args.rates.split(",")
            ]
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers).text
            served = [line for line in metrics.splitlines() if line.startswith("pitstop_model_predict_seconds_")]
            count = next(float(x.split()[-1]) for x in served if x.startswith("pitstop_model_predict_seconds_count"))
            total = next(float(x.split()[-1]) for x in served if x.startswith("pitstop_model_predict_seconds_sum"))
            route = [line for line in metrics.splitlines() if 'route="/predict/{model}"' in line]
            app_count = next(float(x.split()[-1]) for x in route if x.startswith("pitstop_http_request_seconds_count"))
            app_total = next(float(x.split()[-1]) for x in route if x.startswith("pitstop_http_request_seconds_sum"))
        finally:
            server.terminate()
            server.wait(timeout=30)

    emit(
        {
            "model": {
                "name": NAME,
                "version": version,
                "trees_per_output": 300,
                "train_rows": result.version.envelope["training"]["rows"],
                "train_s": round(train_s, 1),
            },
            "in_process": local,
            "http": {
                "transport": "httpx over TCP keep-alive to uvicorn (1 worker, separate process) on 127.0.0.1",
                "uvicorn": {"http": args.http, "loop": args.loop, "installed": installed},
                "closed_loop_1_connection": sequential,
                "closed_loop_get_health": baseline,
                "open_loop": loads,
                "connections": args.connections,
                "server_predict_mean_us": round(total / count * 1e6, 1),
                "server_request_mean_us": round(app_total / app_count * 1e6, 1),
            },
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    )


if __name__ == "__main__":
    main()
