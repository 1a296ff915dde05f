"""The simulator running live into pitstop's database (what `pitstop demo` shows): a few days of
history on first start, then a scheduled job that adds what became due since its last run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import files
from typing import TYPE_CHECKING

from pitstop.core.types import from_epoch_us
from pitstop.sim.fleet import Simulator, assets_of_database
from pitstop.sim.publish import DatabasePublisher
from pitstop.sim.scenario import Scenario

if TYPE_CHECKING:
    from pathlib import Path

    from pitstop.core.clock import Clock
    from pitstop.ingest.service import IngestService
    from pitstop.scheduler import Scheduler
    from pitstop.storage.repos.assets import AssetRepo
    from pitstop.storage.repos.readings import ReadingRepo

JOB = "simulator"
STATE_FILE = "simulator.json"  # in the data dir: the seed and the scenario's origin survive restarts


@dataclass
class LiveSimulation:
    simulator: Simulator
    publisher: DatabasePublisher
    cursor: datetime

    def advance(self, now: datetime) -> int:
        """Publish the readings of [cursor, now)."""
        if now <= self.cursor:
            return 0
        stored = sum(self.publisher.publish(b) for b in self.simulator.chunks(self.cursor, now))
        self.cursor = now
        return stored

    def tick(self, now: datetime) -> None:
        """The scheduled job."""
        self.advance(now)


def demo_scenario(origin: datetime) -> Scenario:
    text = (files("pitstop") / "data" / "demo-scenario.toml").read_text(encoding="utf-8")
    return Scenario.parse(text, origin, source="demo-scenario.toml")


def attach(
    *,
    clock: Clock,
    data_dir: Path,
    assets: AssetRepo,
    readings: ReadingRepo,
    ingest: IngestService | None,
    scheduler: Scheduler,
    seed: int = 7,
    history: timedelta = timedelta(days=3),
    every: timedelta = timedelta(seconds=10),
) -> tuple[LiveSimulation, int]:
    """Fill the gap since the last simulated reading (at most `history`), then schedule the rest on
    the scheduler. The seed and the scenario's origin are kept in ``data_dir``; readings go through
    ``ingest`` (`DatabasePublisher`). Returns the live simulation and how many readings the catch-up
    stored."""
    now = clock.now()
    state_path = data_dir / STATE_FILE
    if state_path.exists():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        seed, origin = int(state["seed"]), datetime.fromisoformat(state["origin"])
    else:
        origin = now
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps({"seed": seed, "origin": origin.isoformat()}), encoding="utf-8")
    simulator = Simulator(assets_of_database(assets), seed=seed, scenario=demo_scenario(origin))
    publisher = DatabasePublisher(simulator, assets=assets, readings=readings, ingest=ingest)
    latest = readings.latest()
    newest = [latest.get(int(i)) for i in publisher.sensor_ids]
    cursor = now - history
    if newest and all(t is not None for t in newest):
        cursor = max(cursor, from_epoch_us(min(t for t in newest if t is not None) + 1))
    live = LiveSimulation(simulator, publisher, cursor)
    stored = live.advance(now)
    scheduler.add(JOB, every, live.tick)
    return live, stored


__all__ = ["JOB", "LiveSimulation", "attach", "demo_scenario"]
