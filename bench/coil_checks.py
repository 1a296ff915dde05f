"""The coil checks (`heat_balance`, `coil_ua`) replayed over simulated plants.

    python bench/coil_checks.py --check heat_balance --seeds 4,5,6,7,8,9 --months 1,3,4,12
    python bench/coil_checks.py --check coil_ua --scenario FILE --seeds 4,5,6 --months 7 --days 10

For each month and seed: a fresh SQLite database with bench/scenarios/all-faults-inventory.toml,
the simulator's readings from the 2nd of the month 00:00 UTC for `--days` (the scenario's times
count from there), then one instance of the check per air-handling unit run every 30 minutes of
simulated time, as the health monitor would keep it. A finding is an *episode*: it opens at the
first warning and closes once the check has been clear for 4 h (the built-in alert rule of both
checks). Prints one JSON line per month and seed: every unit's episodes (hours from the start,
opened and closed), then a summary line. The check itself is the product's; nothing is tuned here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pitstop import inventory
from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Status
from pitstop.health.base import CheckContext, checks
from pitstop.sim import Scenario, Simulator, assets_of_database
from pitstop.sim.live import LiveSimulation
from pitstop.sim.publish import DatabasePublisher
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock

HERE = Path(__file__).parent
UNITS = ("ahu-1", "ahu-2", "ahu-3")
STEP = timedelta(minutes=30)
CLEAR_FOR = timedelta(hours=4)


def episodes(check_name: str, asset: str, ctx_at: Any, start: datetime, days: float) -> list[dict[str, float | None]]:
    check = checks.get(check_name)(asset)
    found: list[dict[str, float | None]] = []
    clear_since: datetime | None = None
    for k in range(1, int(days * 86400 / STEP.total_seconds())):
        now = start + k * STEP
        result = check.run(ctx_at(now))
        hours = (now - start).total_seconds() / 3600
        raised = bool(found) and found[-1]["closed_h"] is None
        if result.status is not Status.HEALTHY and not raised:
            found.append({"opened_h": hours, "closed_h": None})
            clear_since = None
        elif raised and result.is_clear:
            clear_since = clear_since or now
            if now - clear_since >= CLEAR_FOR:
                found[-1]["closed_h"] = hours
        elif raised:
            clear_since = None
    return found


def run(check_name: str, scenario_path: Path, seed: int, month: int, days: float) -> dict[str, Any]:
    start = datetime(2026, month, 2, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        db = Database(f"sqlite:///{data / 'plant.db'}")
        db.upgrade()
        pitstop = build(Settings(data_dir=data), clock=FrozenClock(start), db=db)
        try:
            spec = inventory.read_file(HERE / "scenarios" / "all-faults-inventory.toml")
            inventory.apply(pitstop.db, spec, actor="bench", now=start)
            sim = Simulator(assets_of_database(pitstop.assets), seed=seed, scenario=Scenario.load(scenario_path, start))
            publisher = DatabasePublisher(sim, assets=pitstop.assets, readings=pitstop.readings)
            LiveSimulation(sim, publisher, start).advance(start + timedelta(days=days))

            def ctx_at(now: datetime) -> CheckContext:
                return CheckContext(
                    clock=FrozenClock(now), db=pitstop.db, readings=pitstop.readings, assets=pitstop.assets
                )

            units = {asset: episodes(check_name, asset, ctx_at, start, days) for asset in UNITS}
        finally:
            pitstop.close()
    faults = [
        {"kind": f.kind.value, "asset": f.asset, "onset_h": (f.start - start).total_seconds() / 3600}
        for f in sim.scenario.faults
        if f.asset in UNITS
    ]
    return {"check": check_name, "seed": seed, "month": month, "days": days, "faults": faults, "episodes": units}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", choices=["heat_balance", "coil_ua"], required=True)
    parser.add_argument("--scenario", type=Path, default=HERE / "scenarios" / "all-faults.toml")
    parser.add_argument("--seeds", default="4,5,6,7,8,9")
    parser.add_argument("--months", default="1,3,4,12")
    parser.add_argument("--days", type=float, default=8.0)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    opened = 0
    for month in (int(m) for m in args.months.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            result = run(args.check, args.scenario, seed, month, args.days)
            opened += sum(len(e) for e in result["episodes"].values())
            print(json.dumps(result), flush=True)
    print(json.dumps({"episodes": opened, "wall_s": round(time.perf_counter() - began, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
