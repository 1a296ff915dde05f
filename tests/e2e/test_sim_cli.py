"""`pitstop sim` as a user meets it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitstop.cli.main import app
from pitstop.errors import ScenarioError
from tests.conftest import DEMO_INVENTORY
from tests.e2e.test_cli import pitstop


@pytest.mark.slow
def test_backfill_then_a_fast_run_into_the_database(tmp_path: Path) -> None:
    assert pitstop("db", "upgrade", cwd=tmp_path).returncode == 0
    assert pitstop("assets", "load", str(DEMO_INVENTORY), cwd=tmp_path).returncode == 0
    backfill = pitstop("sim", "backfill", "--days", "0.5", "--seed", "3", cwd=tmp_path)
    assert backfill.returncode == 0, backfill.stderr
    assert backfill.stdout.startswith("48240 readings of 29 sensors over 0.5 days")
    with sqlite3.connect(tmp_path / "pitstop-data" / "pitstop.db") as db:  # the past is rolled up for the plots
        rolled_sensors, hours = db.execute(
            "SELECT COUNT(DISTINCT sensor_id), COUNT(*) FROM reading_rollups WHERE span_s = 3600"
        ).fetchone()
    assert rolled_sensors == 29 and hours >= 29 * 10
    again = pitstop("sim", "backfill", "--days", "0.5", "--seed", "3", cwd=tmp_path)
    assert again.returncode == 0 and "readings of 29 sensors" in again.stdout
    run = pitstop("sim", "run", "--speed", "7200x", "--duration", "1h", "--publish", "db", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "simulating 29 sensors of 5 assets" in run.stderr
    # the run's first hour overlaps the backfill with other values: those readings are conflicts
    published = int(re.search(r"(\d+) readings published", run.stdout)[1])  # type: ignore[index]
    conflicts = re.search(r"(\d+) readings quarantined: their sensor and time were already stored", run.stdout)
    assert conflicts is not None and published + int(conflicts[1]) == 4020, run.stdout


def test_bad_options_and_scenarios_are_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    assert runner.invoke(app, [*base, "db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, [*base, "assets", "load", str(DEMO_INVENTORY)]).exit_code == 0
    scenario = tmp_path / "faults.toml"
    scenario.write_text('[[faults]]\nkind = "fouling"\nasset = "pump-1"\nstart = "-1d"\n')
    for args, message in [
        (["--speed", "fast"], "not a speed: 'fast'"),
        (["--duration", "forever"], "not a duration: 'forever'"),
        (["--publish", "http"], "needs --api-key"),
        (["--scenario", str(scenario)], "fouling happens to hvac, not to a pump"),
    ]:
        result = runner.invoke(app, [*base, "sim", "run", *args], env={"PITSTOP_API_KEY": ""})
        assert isinstance(result.exception, ScenarioError), (args, result.output)
        assert message in str(result.exception) and result.exception.exit_code == 2
