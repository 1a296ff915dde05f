"""`pitstop db partitions`: the readings' monthly partitions on PostgreSQL as a table or JSON; on
SQLite one plain sentence that there is one table."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitstop.cli.main import app
from pitstop.storage import Database
from pitstop.testing.services import scratch_postgres_database


@pytest.fixture(autouse=True)
def _own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("PITSTOP_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with scratch_postgres_database() as url:
        yield url


def run(*args: str) -> str:
    done = CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})
    assert done.exit_code == 0, (args, done.output, done.exception)
    return done.output


@pytest.mark.postgres
def test_partitions_on_postgresql_as_a_table_and_as_json(pg_url: str) -> None:
    base = ("--database-url", pg_url)
    db = Database(pg_url)  # (not `pitstop db upgrade`: it leaves its pool to the garbage collector)
    db.upgrade()
    db.dispose()
    now = datetime.now(UTC)
    this_month = f"readings_p{now.year:04d}_{now.month:02d}"
    shown = run(*base, "db", "partitions")
    assert "partition" in shown and "rows (est.)" in shown
    assert this_month in shown and f"{now.year:04d}-{now.month:02d}-01" in shown  # a bound as a date, UTC
    assert "readings_default" in shown and "DEFAULT" in shown
    assert "None" not in shown
    listed = json.loads(run(*base, "db", "partitions", "--json"))
    assert listed["dialect"] == "postgresql" and listed["partitioned"] is True
    by_name = {p["name"]: p for p in listed["partitions"]}
    assert by_name["readings_default"]["default"] is True and by_name["readings_default"]["from"] is None
    month = by_name[this_month]
    assert datetime.fromisoformat(month["from"]) == datetime(now.year, now.month, 1, tzinfo=UTC)
    assert month["bytes"] >= 0 and month["rows_estimate"] in (0, None)


def test_partitions_on_sqlite_say_there_is_one_table(tmp_path: Path) -> None:
    base = ("--data-dir", str(tmp_path / "data"))
    run(*base, "db", "upgrade")
    said = run(*base, "db", "partitions").strip()
    assert "SQLite keeps the readings in one table" in said and "┃" not in said
    listed = json.loads(run(*base, "db", "partitions", "--json"))
    assert listed["dialect"] == "sqlite" and listed["partitioned"] is False and listed["partitions"] == []
