"""`pitstop ingest` and `pitstop quarantine` as a user meets them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import DEMO_INVENTORY
from tests.e2e.test_cli import pitstop


@pytest.mark.slow  # ten CLI processes
def test_ingest_files_and_replay_the_quarantine(tmp_path: Path) -> None:
    assert pitstop("db", "upgrade", cwd=tmp_path).returncode == 0
    assert pitstop("assets", "load", str(DEMO_INVENTORY), cwd=tmp_path).returncode == 0
    long = tmp_path / "long.csv"
    long.write_text(
        "ts,asset,sensor,value\n"
        "2026-01-05T07:00:00Z,ahu-1,UCAOT,21.5\n"
        "2026-01-05T07:01:00+01:00,ahu-1,UCAOT,21.6\n"
        "2026-01-05T07:02:00,ahu-1,UCAOT,21.7\n"
        "2026-01-05T07:00:00Z,ahu-7,UCAOT,1\n"
    )
    wide = tmp_path / "wide.csv"
    wide.write_text("ts,vib_rms,vib_kurtosis\n1767596400,1.5,3.0\n1767596460,1.6,3.1\n")
    first = pitstop("ingest", str(long), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "2 stored, 0 duplicate, 2 quarantined (bad_timestamp 1, unknown_sensor 1)" in first.stderr
    # Readings from long ago: the import rolled up their plot spans itself (the job looks back an hour only).
    with sqlite3.connect(tmp_path / "pitstop-data" / "pitstop.db") as db:
        rolled = db.execute("SELECT span_s, SUM(n) FROM reading_rollups GROUP BY span_s ORDER BY span_s").fetchall()
    assert rolled == [(300, 2), (3600, 2)]
    again = pitstop("ingest", str(long), "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["total"]["duplicates"] == 2
    refused = pitstop("ingest", str(wide), cwd=tmp_path)
    assert refused.returncode == 2
    assert "--asset" in refused.stderr and "Traceback" not in refused.stderr
    assert (
        json.loads(pitstop("ingest", str(wide), "--asset", "pump-1", "--json", cwd=tmp_path).stdout)["total"]["stored"]
        == 4
    )

    listing = pitstop("quarantine", "list", "--json", "--reason", "unknown_sensor", cwd=tmp_path)
    rows = json.loads(listing.stdout)
    assert len(rows) == 1 and rows[0]["source"] == "file:long.csv"  # imported twice, quarantined once
    inv = tmp_path / "more.toml"
    inv.write_text(
        '[[sites]]\nname = "north-plant"\n[[assets]]\nname = "ahu-7"\nsite = "north-plant"\ntype = "hvac"\n'
        'criticality = 3\nsensors = [{ name = "UCAOT", period_s = 60 }]\n'
    )
    assert pitstop("assets", "load", str(inv), cwd=tmp_path).returncode == 0, "inventory"
    replay = pitstop("quarantine", "replay", cwd=tmp_path)
    assert "replayed 2: 1 stored, 0 duplicate, 1 still quarantined (bad_timestamp 1)" in replay.stdout
    assert "bad_timestamp: 1" in pitstop("quarantine", "list", cwd=tmp_path).stdout
    for command in ("list", "replay"):  # a reason that does not exist is refused, not an empty answer
        wrong = pitstop("quarantine", command, "--reason", "conflicts", cwd=tmp_path)
        assert wrong.returncode == 2 and "not a reason: 'conflicts'" in wrong.stderr and "conflict" in wrong.stderr
