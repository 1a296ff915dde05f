"""Planning speed: 10,000 open work orders into 200 maintenance-window occurrences.

Prints JSON: the pure planner's time (`plan()` over in-memory orders and slots) and the whole
`Planner.plan` on SQLite (read the orders and windows, place, write every order's placement),
with how many orders were placed, placed late, and could not be placed. Aim: under 2 s.

    .venv/bin/python bench/plan.py [--orders 10000] [--windows 200]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from pitstop import inventory
from pitstop.app import build
from pitstop.config import Settings
from pitstop.incidents.windows import MuteStore, Window
from pitstop.maintenance.planning import Job, Slot, plan
from pitstop.storage import Database
from pitstop.storage.schema import work_orders
from pitstop.testing.clock import FrozenClock

START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
SITES = [f"site-{i}" for i in range(4)]
ASSETS = [(f"asset-{i}", SITES[i % len(SITES)]) for i in range(40)]


def inventory_text() -> str:
    lines = [f'[[sites]]\nname = "{s}"\n' for s in SITES]
    for name, site in ASSETS:
        lines.append(f'[[assets]]\nname = "{name}"\nsite = "{site}"\ntype = "pump"\ncriticality = 3\n')
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.upgrade()
        clock = FrozenClock(START)
        pitstop = build(Settings(data_dir=Path(tmp)), clock=clock, db=db)
        inventory.apply(db, inventory.parse(inventory_text(), "bench.toml", "toml"), actor="bench", now=START)
        m = pitstop.maintenance
        store = MuteStore(db)
        for i in range(args.windows):
            begin = START + timedelta(hours=rng.randrange(0, 14 * 24))
            window = Window(
                f"w{i}", {"site": "*"}, "once", timedelta(hours=8), starts_at=begin, ends_at=begin + timedelta(hours=8)
            )
            store.add_window(window, now=START)
            scope = [] if i % 5 == 0 else [SITES[i % len(SITES)]]
            m.capacities.set(f"w{i}", rng.choice([16.0, 24.0, 40.0]), sites=scope)
        rows = []
        for i in range(args.orders):
            asset, _ = rng.choice(ASSETS)
            rows.append(
                {
                    "asset": asset,
                    "key": f"bench.{i}",
                    "title": f"bench order {i}",
                    "source": "manual",
                    "state": "open",
                    "severity": "warning",
                    "priority": rng.randint(1, 20),
                    "due_at": START + timedelta(hours=rng.randrange(1, 30 * 24)),
                    "estimated_h": rng.choice([0.5, 1.0, 2.0, 4.0, 8.0]),
                    "opened_at": START,
                    "updated_at": START,
                }
            )
        with db.begin() as conn:
            conn.execute(insert(work_orders), rows)

        horizon = timedelta(days=14)
        slots = m.planner.slots(START, START + horizon)
        sites = dict(ASSETS)
        jobs = [
            Job(i, r["asset"], sites[r["asset"]], r["priority"], r["due_at"], r["estimated_h"])
            for i, r in enumerate(rows)
        ]
        pure = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = plan(jobs, [Slot(s.window, s.start, s.end, s.capacity_h, s.sites, s.assets) for s in slots])
            pure.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        full = m.planner.plan(horizon)
        full_s = time.perf_counter() - t0
        over = sum(used > s.capacity_h + 1e-9 for s, used in zip(full.slots, full.used_h, strict=True))
        print(
            json.dumps(
                {
                    "bench": "plan",
                    "orders": args.orders,
                    "window_occurrences": len(slots),
                    "capacity_h": sum(s.capacity_h for s in slots),
                    "demand_h": sum(r["estimated_h"] for r in rows),
                    "plan_s": round(min(pure), 4),
                    "plan_with_database_s": round(full_s, 4),
                    "placed": len(full.placements),
                    "placed_late": sum(p.late for p in full.placements),
                    "unplaced": len(full.unplaced),
                    "windows_over_capacity": over,
                    "pure_and_full_agree": len(result.placements) == len(full.placements),
                    "target_s": 2.0,
                },
                indent=1,
            )
        )
        db.dispose()


if __name__ == "__main__":
    main()
