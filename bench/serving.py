"""Serving: `POST /predict/{model}` through the real HTTP stack, and the predictors in-process. Prints JSON.

    python bench/serving.py [--parts in_process,http,peer] [--seconds 5] [--rates 250,500,1000]
                            [--connections 8] [--calls 5000] [--http auto|h11|httptools]
                            [--loop auto|asyncio|uvloop] [--workers 1] [--peer-connections 16]
                            [--peer-seconds 5] [--peer-rounds 5] [--load auto|wrk|httpx]

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
- peer: pitstop's `/predict` against a minimal FastAPI + ONNX Runtime app serving the same ONNX
  model (its graph saved from the champion: one session, 1 thread; a pydantic body of rows, an
  `async def` route, FastAPI's default JSON response; no key, no range marks, no metrics), each
  under the same uvicorn settings (--workers, --http, --loop) in a process of its own, loaded in
  turn for --peer-rounds rounds of --peer-seconds at --peer-connections connections, closed loop.
  The load generator is wrk (Debian's `wrk`, one thread, a Lua script rotating 200 bodies) when
  installed, else an httpx async client (which needs about as much CPU as the server).
  `ratio` is pitstop's median requests/s over the peer's; `cpu_ratio` the peer's median server
  CPU time per request (user + system of the server's processes, psutil) over pitstop's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

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


# Both apps as uvicorn factories (so --workers can start several processes), in modules of their own.
PITSTOP_APP = """
import os
from pathlib import Path
from pitstop.api import create_app
from pitstop.app import build
from pitstop.config import Settings


def create():
    return create_app(build(Settings(data_dir=Path(os.environ["BENCH_DATA_DIR"]))))
"""
PEER_APP = """
import os
import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel


class PredictIn(BaseModel):
    rows: list[list[float]]


def create():
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(os.environ["BENCH_ONNX"], options)
    app = FastAPI()

    @app.post("/predict/{model}")
    async def predict(model: str, body: PredictIn):
        y = session.run(None, {"x": np.asarray(body.rows, dtype=np.float32)})[0]
        return {"model": model, "predictions": y.tolist()}

    return app
"""
UVICORN = """
import sys, uvicorn
uvicorn.run(
    sys.argv[1], factory=True, app_dir=sys.argv[2], host="127.0.0.1", port=int(sys.argv[3]),
    workers=int(sys.argv[4]), http=sys.argv[5], loop=sys.argv[6], log_level="warning", access_log=False,
)
"""
WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "non_2xx": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
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


def start_server(
    module: str, app_dir: Path, workers: int, http: str, loop: str, env: dict[str, str]
) -> tuple[Any, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", UVICORN, f"{module}:create", str(app_dir), str(port), str(workers), http, loop], env=env
    )
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, port
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{module} server exited with {process.returncode}") from None
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"{module} server did not start")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a server process and its workers so far."""
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def wrk_load(url: str, auth: str, bodies: Path, seconds: float, connections: int, script: Path) -> dict[str, Any]:
    env = {**os.environ, "BENCH_BODIES": str(bodies), "BENCH_AUTH": auth}
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + 60,
        check=True,
    )
    line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("{"))
    raw = json.loads(line)
    return {
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6)),
        "errors": raw["socket_errors"] + raw["non_2xx"],
        "latency_ms": {q: round(raw[f"{q}_us"] / 1000, 2) for q in ("p50", "p90", "p99")},
    }


def httpx_load(url: str, auth: str, bodies: list[bytes], seconds: float, connections: int) -> dict[str, Any]:
    """Closed loop: `connections` tasks, each sending one request after another for `seconds`."""

    async def run() -> tuple[list[float], int]:
        latencies: list[float] = []
        errors = 0
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        async with httpx.AsyncClient(limits=limits, headers=headers) as client:
            end = time.perf_counter() + seconds

            async def one(k: int) -> None:
                nonlocal errors
                i = k
                while time.perf_counter() < end:
                    started = time.perf_counter()
                    response = await client.post(url, content=bodies[i % len(bodies)])
                    latencies.append(time.perf_counter() - started)
                    errors += response.status_code != 200
                    i += connections

            await asyncio.gather(*(one(k) for k in range(connections)))
        return latencies, errors

    started = time.perf_counter()
    latencies, errors = asyncio.run(run())
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "requests_per_s": round(len(latencies) / elapsed),
        "errors": errors,
        "latency_ms": {f"p{q}": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 99)},
    }


def versus_peer(
    data_dir: Path, onnx_path: Path, token: str, rows: np.ndarray, args: argparse.Namespace
) -> dict[str, object]:
    """pitstop's /predict and the minimal app, loaded in turn; medians over the rounds."""
    work = data_dir.parent / "peer"
    work.mkdir()
    (work / "bench_pitstop_app.py").write_text(PITSTOP_APP)
    (work / "bench_peer_app.py").write_text(PEER_APP)
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    bodies = [json.dumps({"rows": [row.tolist()]}).encode() for row in rows[:200]]
    body_file = work / "bodies.jsonl"
    body_file.write_bytes(b"\n".join(bodies) + b"\n")
    load = args.load if args.load != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "BENCH_DATA_DIR": str(data_dir),
        "BENCH_ONNX": str(onnx_path),
    }
    auth = f"Bearer {token}"
    servers = {
        "pitstop": start_server("bench_pitstop_app", work, args.workers, args.http, args.loop, env),
        "fastapi_onnxruntime": start_server("bench_peer_app", work, args.workers, args.http, args.loop, env),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    try:
        urls = {name: f"http://127.0.0.1:{port}/predict/{NAME}" for name, (_, port) in servers.items()}
        for url in urls.values():  # warm: the model loaded, the key verified, every worker touched
            with httpx.Client(headers={"Authorization": auth}, timeout=120) as client:
                for i in range(300):
                    response = client.post(
                        url, content=bodies[i % len(bodies)], headers={"Content-Type": "application/json"}
                    )
                    assert response.status_code == 200, response.text
        for k in range(args.peer_rounds):
            order = list(urls) if k % 2 == 0 else list(reversed(urls))  # neither always goes first
            for name in order:
                pid = servers[name][0].pid
                cpu = cpu_seconds(pid)
                if load == "wrk":
                    run = wrk_load(urls[name], auth, body_file, args.peer_seconds, args.peer_connections, script)
                else:
                    run = httpx_load(urls[name], auth, bodies, args.peer_seconds, args.peer_connections)
                served = run["requests_per_s"] * args.peer_seconds
                run["server_cpu_us_per_request"] = round((cpu_seconds(pid) - cpu) / served * 1e6, 1)
                runs[name].append(run)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    summary = {
        name: {
            "requests_per_s_median": statistics.median(r["requests_per_s"] for r in rs),
            "requests_per_s_runs": [r["requests_per_s"] for r in rs],
            "server_cpu_us_per_request_median": round(statistics.median(r["server_cpu_us_per_request"] for r in rs), 1),
            "latency_ms_median": {
                q: round(statistics.median(r["latency_ms"][q] for r in rs), 2) for q in ("p50", "p90", "p99")
            },
            "errors": sum(r["errors"] for r in rs),
        }
        for name, rs in runs.items()
    }
    ours, theirs = summary["pitstop"], summary["fastapi_onnxruntime"]
    return {
        "load_generator": "wrk 1 thread" if load == "wrk" else "httpx async",
        "connections": args.peer_connections,
        "seconds": args.peer_seconds,
        "rounds": args.peer_rounds,
        "uvicorn": {"workers": args.workers, "http": args.http, "loop": args.loop},
        **summary,
        "ratio": round(ours["requests_per_s_median"] / theirs["requests_per_s_median"], 3),
        # the peer's server CPU per request over pitstop's: less sensitive to the machine's other load
        "cpu_ratio": round(theirs["server_cpu_us_per_request_median"] / ours["server_cpu_us_per_request_median"], 3),
        "ratios_per_round": [
            round(a["requests_per_s"] / b["requests_per_s"], 3)
            for a, b in zip(runs["pitstop"], runs["fastapi_onnxruntime"], strict=True)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="in_process,http,peer", help="comma-separated: in_process, http, peer")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"])
    parser.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (peer part)")
    parser.add_argument("--peer-connections", type=int, default=16)
    parser.add_argument("--peer-seconds", type=float, default=5.0)
    parser.add_argument("--peer-rounds", type=int, default=5)
    parser.add_argument("--load", default="auto", choices=["auto", "wrk", "httpx"], help="peer part's load generator")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"in_process", "http", "peer"}:
        parser.error(f"--parts takes in_process, http and/or peer, not {args.parts!r}")

    installed = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m) is not None]
    load_before = [round(x, 2) for x in os.getloadavg()]
    frame = hvac_frame()  # type: ignore[no-untyped-call]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
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
        out["model"] = {
            "name": NAME,
            "version": version,
            "trees_per_output": 300,
            "train_rows": result.version.envelope["training"]["rows"],
            "train_s": round(train_s, 1),
        }
        if "in_process" in parts:
            out["in_process"] = in_process(twin, rows, args.calls)
        if "http" in parts:
            out["http"] = {
                "uvicorn": {"http": args.http, "loop": args.loop, "installed": installed},
                **over_http(data_dir, token, rows, args),
            }
        if "peer" in parts:
            onnx_path = Path(tmp) / "twin.onnx"
            onnx_path.write_bytes(twin.to_onnx().model.SerializeToString())
            out["versus_minimal_fastapi_onnxruntime"] = {
                "installed": installed,
                **versus_peer(data_dir, onnx_path, token, rows, args),
            }

    emit(
        {
            **out,
            "cpus": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average_before_after": [load_before, [round(x, 2) for x in os.getloadavg()]],
        }
    )


def over_http(data_dir: Path, token: str, rows: np.ndarray, args: argparse.Namespace) -> dict[str, object]:
    """Closed and open loop against pitstop alone (one worker), with the in-app times from /metrics."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(data_dir), str(port), args.http, args.loop], env=env)
    try:
        url = f"http://127.0.0.1:{port}/predict/{NAME}"
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        bodies: list[dict[str, object]] = [{"rows": [row.tolist()]} for row in rows[:2000]]
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
    return {
        "transport": "httpx over TCP keep-alive to uvicorn (1 worker, separate process) on 127.0.0.1",
        "closed_loop_1_connection": sequential,
        "closed_loop_get_health": baseline,
        "open_loop": loads,
        "connections": args.connections,
        "server_predict_mean_us": round(total / count * 1e6, 1),
        "server_request_mean_us": round(app_total / app_count * 1e6, 1),
    }


if __name__ == "__main__":
    main()
