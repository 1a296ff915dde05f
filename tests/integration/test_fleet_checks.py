"""An asset's checks as a fleet worker's job (`HealthMonitor.run_asset`): the alert state carries over
from one worker to the next through the database, and the scheduler's round keeps the installation's
own checks."""

from __future__ import annotations

from pathlib import Path

from pitstop.app import build
from pitstop.config import Settings
from pitstop.config.health import AlertRuleSettings, AlertSettings, CheckSettings, HealthSettings, ThresholdSettings
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from tests.integration.test_reading_check import load, write

DISK = "vms-server/disk_free_pct"


def settings(tmp_path: Path, name: str) -> Settings:
    health = HealthSettings(
        default_checks=False,
        checks=[
            CheckSettings(
                check="reading",
                target=DISK,
                params={"stat": "latest"},
                thresholds={"value": ThresholdSettings(direction="below", warning=20, critical=10)},
            ),
            CheckSettings(check="heartbeat"),  # the installation's own: no asset
            # an asset's, but it judges the machine it runs on: it stays in the scheduler's round
            CheckSettings(check="disk", target=str(tmp_path), asset="vms-server"),
        ],
        # fire on the second bad round in a row: the two rounds run on different workers
        alerts=AlertSettings(rules={"sensor.threshold": AlertRuleSettings(n=2, m=2)}),
    )
    return Settings(data_dir=tmp_path / name, health=health)


def test_an_assets_checks_continue_on_another_worker(db: Database, clock: FrozenClock, tmp_path: Path) -> None:
    first = build(settings(tmp_path, "w1"), clock=clock, db=db)
    second = build(settings(tmp_path, "w2"), clock=clock, db=db)
    load(first)
    assert first.health.assets_checked() == ["vms-server"]
    write(first, DISK, [50, 5], period_s=60)
    key = f"sensor.threshold:{DISK}"

    round1 = first.health.run_asset("vms-server", clock.now())
    assert [r.check for r in round1.results] == ["reading"]  # the asset's checks only
    assert first.incidents.active(key) is None  # one bad round of the two the rule asks for

    clock.advance(60)
    write(second, DISK, [4], period_s=60)
    second.health.run_asset("vms-server", clock.now())
    opened = second.incidents.active(key)
    assert opened is not None, "the second worker judged with the first one's state from the database"

    clock.advance(60)
    write(first, DISK, [60], period_s=60)
    first.health.run_asset("vms-server", clock.now())  # its in-memory state is stale: it reads the table
    assert first.incidents.active(key) is None, "recovered"


def test_the_schedulers_round_without_assets_runs_the_installations_checks(
    db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    pitstop = build(settings(tmp_path, "scheduler"), clock=clock, db=db)
    load(pitstop)
    write(pitstop, DISK, [5], period_s=60)
    outcome = pitstop.health.run_round(of_assets=False)
    assert sorted(r.check for r in outcome.results) == ["disk", "heartbeat"]
    assert {r.check for r in pitstop.health.run_round().results} == {"disk", "heartbeat", "reading"}
