"""A PostgreSQL database of the test's own: backed up, drilled (with its RTO recorded), restored."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from pitstop.app import build
from pitstop.config import Settings
from pitstop.errors import BackupError
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import scratch_postgres_database

pytestmark = pytest.mark.postgres


def _fill(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE cameras (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("CREATE SCHEMA vms")
        conn.execute("CREATE TABLE vms.events (id bigint PRIMARY KEY, camera int REFERENCES cameras, note text)")
        conn.execute("INSERT INTO cameras (name) SELECT 'cam-' || g FROM generate_series(1, 40) g")
        conn.execute("INSERT INTO vms.events SELECT g, 1 + g % 40, md5(g::text) FROM generate_series(1, 5000) g")


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_a_drill_of_a_postgres_database_passes_and_records_its_rto(tmp_path: Path) -> None:
    clock = FrozenClock()
    with scratch_postgres_database() as url:
        _fill(url)
        db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
        db.upgrade()
        settings = Settings(
            data_dir=tmp_path,
            backup={
                "schedule": False,
                "include_pitstop_db": False,
                "sources": [{"name": "vms", "kind": "postgres", "url": url}],
                "rto_minutes": 30,
            },
        )
        service = build(settings, clock=clock, db=db).backup
        backup_set = service.run()
        meta = backup_set.manifest.source("vms").meta
        assert meta["tables"] == {"public.cameras": 40, "vms.events": 5000}
        assert "password" not in backup_set.manifest.source("vms").location

        result = service.drill()
        assert result.ok and result.within_rto, result
        assert result.rto_seconds == 1800
        record = service.records.last("drill")
        assert record is not None and record.outcome == "ok"
        assert record.detail["within_rto"] is True and record.detail["rto_seconds"] == 1800
        (source,) = record.detail["sources"]
        assert source["restore_seconds"] > 0 and source["problems"] == []
        assert source["tables"] == meta["tables"]
        scratch = source["scratch"].rsplit("/", 1)[-1]
        assert scratch.startswith("pitstop_drill_")
        with psycopg.connect(url) as conn:  # the scratch database is gone
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname = %s", (scratch,)).fetchall()
        assert rows == []

        # The configuration error: rows deleted. Restore refuses, then restores with a safety backup.
        clock.advance(timedelta(hours=1))
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM vms.events WHERE id > 100")
        with pytest.raises(BackupError, match="--force"):
            service.restore(backup_set.id, "vms")
        safety = service.restore(backup_set.id, "vms", force=True)
        assert safety is not None and safety.manifest.source("vms").meta["tables"]["vms.events"] == 100
        assert _count(url, "vms.events") == 5000 and _count(url, "cameras") == 40

        # The complete failure: into a new database on the server, no force needed.
        with scratch_postgres_database() as other:
            assert service.restore(backup_set.id, "vms", into=other) is None
            assert _count(other, "vms.events") == 5000


def test_a_drill_notices_a_dump_that_no_longer_matches(tmp_path: Path) -> None:
    clock = FrozenClock()
    with scratch_postgres_database() as url:
        _fill(url)
        db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
        db.upgrade()
        settings = Settings(
            data_dir=tmp_path,
            backup={
                "schedule": False,
                "include_pitstop_db": False,
                "sources": [{"name": "vms", "kind": "postgres", "url": url}],
            },
        )
        service = build(settings, clock=clock, db=db).backup
        backup_set = service.run()
        # A manifest that expects other row counts (as if rows were lost from the dump).
        backup_set.manifest.source("vms").meta["tables"]["vms.events"] = 5001
        (backup_set.dir / "manifest.json").write_text(backup_set.manifest.to_json())
        result = service.drill()
        assert not result.ok
        assert result.sources[0].problems == ["table vms.events: 5000 rows, the manifest says 5001"]
