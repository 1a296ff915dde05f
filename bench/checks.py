"""Cost of one round of 1,000 cheap check targets, and of the alert rules over 100,000 evaluations.

    python bench/checks.py [--targets 1000] [--evaluations 100000] [--repeat 7]

Prints JSON. The check round is 1,000 targets of the cheap built-in checks (disk free of 10
paths, memory, pitstop's own database and the scheduler heartbeat, data freshness of 100 assets)
on SQLite, run by the runner as it was (every check in a pool of 8 threads, and with 1 worker)
and as it is (threads sized by check kind: these are all local, so they run inline), taking
turns for --repeat rounds each, medians reported; then the same results through the whole loop
(stored, judged by the alert rules, incidents). The policy part drives 1,000 alert keys with
random signals (a fifth of them flapping) through the alert rules' judgement, and each start or
end of a problem through the notification policy with a weekly window and a silence in force.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pitstop import inventory
from pitstop.alerts.policy import NotificationPolicy, Subject
from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Severity
from pitstop.health.base import CheckContext, CheckResult
from pitstop.health.runner import ROUND_KEYS, CheckRunner, _collect, _run_one
from pitstop.health.specs import CheckSpec
from pitstop.incidents.policy import AlertPolicy, AlertRule, Observation
from pitstop.incidents.windows import Mutes, Silence, recurring
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock


def measure(func: object) -> tuple[object, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = func()  # type: ignore[operator]
    return out, time.process_time() - cpu, time.perf_counter() - wall


class PoolRunner(CheckRunner):
    """The runner before threads were sized by check kind: every check in a pool of `workers`."""

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        for key in ROUND_KEYS:
            ctx.extra.pop(key, None)
        if self.workers <= 1 or len(self.instances) <= 1:
            return [_run_one(check, ctx) for _, check in self.instances]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(self.instances)), thread_name_prefix="check") as pool:
            futures = [(check, pool.submit(_run_one, check, ctx)) for _, check in self.instances]
            return [_collect(check, future, ctx) for check, future in futures]


def inventory_of(assets: int) -> inventory.InventorySpec:
    return inventory.InventorySpec.model_validate(
        {
            "sites": [{"name": "bench-site"}],
            "assets": [
                {
                    "name": f"a{i:03d}",
                    "site": "bench-site",
                    "type": "pump",
                    "sensors": [{"name": f"s{j}", "period_s": 10} for j in range(4)],
                }
                for i in range(assets)
            ],
        }
    )


def check_round(targets: int, tmp: Path, repeat: int) -> dict[str, object]:
    db = Database(f"sqlite:///{tmp / 'bench.db'}")
    db.upgrade()
    settings = Settings(data_dir=tmp, health={"default_checks": False})
    pitstop = build(settings, clock=FrozenClock(), db=db)
    inventory.apply(db, inventory.validated(inventory_of(100), source="bench"), actor="bench", now=pitstop.clock.now())
    pitstop.scheduler.tick()  # a heartbeat to read
    paths = [tmp / f"d{i}" for i in range(10)]
    for p in paths:
        p.mkdir()
    specs: list[CheckSpec] = []
    kinds = ["disk", "memory", "database", "heartbeat", "freshness"]
    for i in range(targets):
        kind = kinds[i % len(kinds)]
        target = {
            "disk": str(paths[i % 10]),
            "memory": f"host-{i}",
            "database": f"db-{i}",
            "heartbeat": "heartbeat",
            "freshness": f"a{i % 100:03d}",
        }[kind]
        specs.append(CheckSpec(kind, target, asset=target if kind == "freshness" else None))
    out: dict[str, object] = {"targets": targets, "by_check": {k: targets // len(kinds) for k in kinds}}
    runners = {
        "old_pool_8_workers": PoolRunner(specs, workers=8),
        "old_1_worker": PoolRunner(specs, workers=1),
        "new_by_kind_8_workers": CheckRunner(specs, workers=8),
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    for runner in runners.values():
        runner.run(pitstop.health.context)  # warm up
    for _ in range(repeat):  # turns, so that the load on the machine hits each alike
        for name, runner in runners.items():
            results, cpu, wall = measure(lambda runner=runner: runner.run(pitstop.health.context))
            samples[name].append((cpu, wall))
    rounds = {
        name: {
            "cpu_s": round(statistics.median(c for c, _ in runs), 4),
            "wall_s": round(statistics.median(w for _, w in runs), 4),
            "wall_s_min_max": [round(min(w for _, w in runs), 4), round(max(w for _, w in runs), 4)],
        }
        for name, runs in samples.items()
    }
    out["round"] = rounds
    walls = {name: statistics.median(w for _, w in runs) for name, runs in samples.items()}
    out["old_pool_over_new_wall"] = round(walls["old_pool_8_workers"] / walls["new_by_kind_8_workers"], 2)
    out["old_pool_over_old_1_worker_wall"] = round(walls["old_pool_8_workers"] / walls["old_1_worker"], 2)
    runner = runners["new_by_kind_8_workers"]
    pitstop.health._runner, pitstop.health._runner_ids = runner, tuple(s.id for s in specs)
    logging.getLogger("pitstop.alerts").setLevel(logging.ERROR)
    _, cpu, wall = measure(lambda: pitstop.health.results.save(results))  # type: ignore[arg-type]
    out["store_results"] = {"cpu_s": round(cpu, 4), "wall_s": round(wall, 4)}
    _, cpu, wall = measure(lambda: pitstop.health.evaluate(results))  # type: ignore[arg-type]
    out["rules_and_incidents_round"] = {"cpu_s": round(cpu, 4), "wall_s": round(wall, 4)}
    pitstop.close()
    return out


def policy(evaluations: int, keys: int = 1000) -> dict[str, object]:
    rng = random.Random(7)
    start = datetime(2026, 1, 4, tzinfo=UTC)
    window = recurring("sunday", {"site": "s1"}, days="sun", start="02:00", end="04:00")
    silence = Silence({"asset": "a7*"}, "bench", "bench", start, start + timedelta(days=30), id=1)
    mutes = Mutes([silence], [window])
    rounds = evaluations // keys
    labels = [{"site": f"s{k % 5}", "asset": f"a{k}", "scope": "asset", "check": "cpu"} for k in range(keys)]
    level = [rng.uniform(20, 60) for _ in range(keys)]
    batches = []
    for r in range(rounds):
        at = start + timedelta(minutes=r)
        batch = []
        for k in range(keys):
            flapping = k % 5 == 0
            level[k] = min(100.0, max(0.0, level[k] + rng.gauss(0, 12 if flapping else 3)))
            value = level[k]
            batch.append(
                Observation(f"cpu.high:h{k}", at, value >= 70, value < 65, Severity.WARNING, f"cpu {value:.0f}%")
            )
        batches.append((at, batch))
    rule = AlertRule(for_s=120, clear_for_s=60)
    engine, tell = AlertPolicy(rule), NotificationPolicy(lambda key: rule)
    decisions = 0

    def run() -> None:
        nonlocal decisions
        for at, batch in batches:
            steps = [s for s in engine.evaluate_round(batch) if s.started or s.ended]
            subjects = [Subject(s.key, s.problem, s.severity, labels[int(s.key[10:])], s.summary) for s in steps]
            decisions += len(tell.decide(subjects, at, mutes))

    _, cpu, wall = measure(run)
    return {
        "evaluations": rounds * keys,
        "keys": keys,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "per_evaluation_us": round(cpu / (rounds * keys) * 1e6, 2),
        "notifications_decided": decisions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--evaluations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        checks = check_round(args.targets, Path(tmp), args.repeat)
    result = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_before_after": [load_before, [round(x, 2) for x in os.getloadavg()]],
        "check_round": checks,
        "alert_policy": policy(args.evaluations),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
