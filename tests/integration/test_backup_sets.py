"""Backup sets proven by restoring: verify, drill, restore, restore one file, prune, crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.backup import BackupService
from pitstop.backup.sets import list_sets, partial_dirs
from pitstop.config import Settings
from pitstop.core.types import to_epoch_us
from pitstop.errors import BackupError, NotFound
from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.storage.schema import readings
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY


def _service(tmp_path: Path, clock: FrozenClock, **backup: Any) -> BackupService:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    settings = Settings(data_dir=tmp_path, backup={"schedule": False, **backup})
    return build(settings, clock=clock, db=db).backup


def _models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    np.save(root / "pump-1.npy", np.arange(1000, dtype=np.float64))
    (root / "notes.txt").write_text("twin for pump-1\n")
    (root / "cache").mkdir()
    (root / "cache" / "tmp.bin").write_bytes(b"x" * 100)
    return root


def _flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def _load_demo(pitstop: Pitstop, n: int = 500) -> int:
    inventory.apply(pitstop.db, inventory.read_file(DEMO_INVENTORY), actor="test", now=pitstop.clock.now())
    start = to_epoch_us(pitstop.clock.now())
    pitstop.readings.write(ReadingBatch.of(np.full(n, 1), start + np.arange(n) * 1_000_000, np.arange(n) * 0.5))
    with pitstop.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(readings)).scalar_one())


def test_pitstop_database_backs_up_verifies_and_drills(pitstop: Pitstop) -> None:
    rows = _load_demo(pitstop)
    backup_set = pitstop.backup.run()
    source = backup_set.manifest.source("pitstop-db")
    assert source.kind == pitstop.db.dialect.replace("postgresql", "postgres")
    tables = source.meta["tables"]
    assert tables[next(k for k in tables if k.endswith("readings"))] == rows
    assert all(len(f.sha256) == 64 and f.size > 0 for f in source.files)

    assert pitstop.backup.verify()[1] == []
    drill = pitstop.backup.drill()
    assert drill.ok and drill.within_rto, drill
    record = pitstop.backup.records.last("drill")
    assert record is not None and record.outcome == "ok"
    assert record.detail["sources"][0]["tables"] == tables
    assert record.detail["within_rto"] is True


def test_a_flipped_byte_fails_verification_naming_the_file(tmp_path: Path, clock: FrozenClock) -> None:
    models = _models(tmp_path)
    service = _service(tmp_path, clock, sources=[{"name": "models", "kind": "models", "path": str(models)}])
    backup_set = service.run()
    entry = backup_set.manifest.source("models").file("pump-1.npy")
    assert entry is not None
    _flip_byte(backup_set.dir / entry.stored, 40)

    _, problems = service.verify(backup_set.id)
    assert problems == ["models/pump-1.npy: stored checksum differs from the manifest"]
    last = service.records.last("verify")
    assert last is not None and last.outcome == "failed"
    drill = service.drill()
    assert not drill.ok
    assert any("pump-1.npy" in p for s in drill.sources for p in s.problems)


def test_encrypted_sets_restore_with_the_key_and_refuse_another(tmp_path: Path, clock: FrozenClock) -> None:
    models = _models(tmp_path)
    source = [{"name": "models", "kind": "models", "path": str(models)}]
    service = _service(tmp_path, clock, sources=source, encryption_key="correct horse")
    backup_set = service.run()
    stored = (backup_set.dir / backup_set.manifest.source("models").files[0].stored).read_bytes()
    assert b"twin for pump-1" not in stored and b"NUMPY" not in stored
    assert service.verify()[1] == []
    assert service.drill().ok

    other = tmp_path / "other"
    other.mkdir()
    wrong = _service(other, clock, sources=source, encryption_key="wrong", destination=str(service.destination))
    (problem,) = wrong.verify(backup_set.id)[1]
    assert "encrypted with another key" in problem
    with pytest.raises(BackupError, match="another key"):
        wrong.restore_file("models:notes.txt", into=other / "notes.txt")

    entry = backup_set.manifest.source("models").file("notes.txt")
    assert entry is not None
    _flip_byte(backup_set.dir / entry.stored, 30)
    assert service.verify()[1] == ["models/notes.txt: stored checksum differs from the manifest"]


def test_include_and_exclude_patterns_and_the_offsite_copy(tmp_path: Path, clock: FrozenClock) -> None:
    models = _models(tmp_path)
    source = [{"name": "models", "kind": "models", "path": str(models), "exclude": ["cache/*"]}]
    service = _service(tmp_path, clock, sources=source, include_pitstop_db=False, offsite=str(tmp_path / "share"))
    backup_set = service.run()
    assert [f.path for f in backup_set.manifest.source("models").files] == ["notes.txt", "pump-1.npy"]
    copies = service.list_sets(offsite=True)
    assert [s.id for s in copies] == [backup_set.id]
    assert copies[0].verify(None) == []


def test_a_corrupted_model_is_restored_from_the_newest_good_set(tmp_path: Path, clock: FrozenClock) -> None:
    models = _models(tmp_path)
    model = models / "pump-1.npy"
    service = _service(tmp_path, clock, sources=[{"name": "models", "kind": "models", "path": str(models)}])
    older = service.run()
    clock.advance(timedelta(days=1))
    np.save(model, np.arange(2000, dtype=np.float64))  # retrained
    newer = service.run()
    clock.advance(timedelta(days=1))
    # The newest set's copy of the model is damaged, and so is the live file.
    entry = newer.manifest.source("models").file("pump-1.npy")
    assert entry is not None
    _flip_byte(newer.dir / entry.stored, 7)
    model.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError):
        np.load(model)

    copy, skipped = service.locate_file(str(model))
    assert (copy.set_id, skipped) == (older.id, [newer.id])
    restored = service.restore_file(str(model))
    assert restored.changed and restored.copy.set_id == older.id
    assert np.load(model).shape == (1000,)
    assert service.restore_file("models:pump-1.npy").changed is False  # idempotent
    last = service.records.last("restore")
    assert last is not None and last.detail["skipped_sets"] == [newer.id]

    with pytest.raises(NotFound):
        service.restore_file(str(tmp_path / "elsewhere.bin"))
    with pytest.raises(BackupError, match="unsafe path"):
        service.restore_file("models:../pitstop.db")


def test_a_good_copy_that_captured_the_damage_is_passed_over(tmp_path: Path, clock: FrozenClock) -> None:
    models = _models(tmp_path)
    model = models / "pump-1.npy"
    service = _service(tmp_path, clock, sources=[{"name": "models", "kind": "models", "path": str(models)}])
    good = service.run()
    clock.advance(timedelta(days=1))
    model.write_bytes(b"\x00garbage")
    service.run()  # backs up the damaged file faithfully
    from pitstop.backup.codec import sha256_file

    restored = service.restore_file(str(model), known_bad={sha256_file(model)})
    assert restored.copy.set_id == good.id
    assert np.load(model).shape == (1000,)


def test_restore_refuses_a_live_target_and_takes_a_safety_backup_with_force(tmp_path: Path, clock: FrozenClock) -> None:
    monitored = tmp_path / "vms.db"
    import sqlite3

    with sqlite3.connect(monitored) as conn:
        conn.execute("CREATE TABLE cameras (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO cameras (name) VALUES (?)", [(f"cam-{i}",) for i in range(50)])
    conn.close()
    service = _service(
        tmp_path, clock, sources=[{"name": "vms", "kind": "sqlite", "path": str(monitored)}], include_pitstop_db=False
    )
    backup_set = service.run()
    clock.advance(timedelta(hours=1))
    with sqlite3.connect(monitored) as conn:
        conn.execute("DELETE FROM cameras WHERE id > 10")  # the configuration error
    conn.close()

    with pytest.raises(BackupError, match="--force"):
        service.restore(backup_set.id, "vms")
    safety = service.restore(backup_set.id, "vms", force=True)
    assert safety is not None and safety.manifest.reason == "safety"
    assert safety.manifest.source("vms").meta["tables"] == {"cameras": 10}
    with sqlite3.connect(monitored) as conn:
        assert conn.execute("SELECT count(*) FROM cameras").fetchone()[0] == 50
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    # Into a new place no force is needed.
    assert service.restore(backup_set.id, "vms", into=str(tmp_path / "copy.db")) is None
    assert service.get().id == backup_set.id  # the newest set is not the safety copy


def test_prune_dry_run_says_which_tier_keeps_each_set_and_deletes_nothing(tmp_path: Path, clock: FrozenClock) -> None:
    service = _service(
        tmp_path, clock, retention={"keep_last": 1, "daily": 2, "weekly": 0, "monthly": 0, "quarterly": 0}
    )
    ids = []
    for _ in range(4):
        ids.append(service.run().id)
        clock.advance(timedelta(hours=12))
    (result,) = service.prune(dry_run=True)
    reasons = {d.id: d.reasons for d in result.decisions}
    assert reasons[ids[3]] == ("last", "daily")
    assert reasons[ids[1]] == ("daily",)
    assert result.deleted == [ids[2], ids[0]]
    assert len(list_sets(service.destination)) == 4
    service.prune()
    assert [s.id for s in list_sets(service.destination)] == [ids[1], ids[3]]


SLOW_BACKUP = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from pitstop.app import build
    from pitstop.backup.targets import FilesTarget
    from pitstop.config import Settings
    from pitstop.storage import Database
    from pitstop.testing.clock import FrozenClock

    class Slow(FilesTarget):
        name = "slow"
        def dump(self, dest):
            def chunks():
                yield b"x" * 1_000_000
                print("writing", flush=True)
                time.sleep(60)
                yield b"y"
            dest.add_stream("big.bin", chunks())

    data = Path(sys.argv[1])
    db = Database(f"sqlite:///{data / 'pitstop.db'}")
    clock = FrozenClock(datetime(2026, 1, 6, tzinfo=UTC))
    service = build(Settings(data_dir=data, backup={"schedule": False}), db=db, clock=clock).backup
    service.run(only={"pitstop-db": service.sources()["pitstop-db"], "slow": Slow(str(data))})
    """
)


def test_a_backup_killed_mid_write_leaves_no_complete_looking_set(tmp_path: Path, clock: FrozenClock) -> None:
    service = _service(tmp_path, clock)
    good = service.run()
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_BACKUP, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]

    assert [s.id for s in list_sets(service.destination)] == [good.id]
    (partial,) = partial_dirs(service.destination)
    assert not (partial / "manifest.json").exists()
    assert service.verify()[0].id == good.id
    clock.set(datetime(2026, 1, 6, 23, 0, tzinfo=UTC))  # the partial set began at 2026-01-06 00:00
    assert service.prune(dry_run=True)[0].stale_partials == []  # it might still be running
    clock.set(datetime(2026, 1, 7, 1, 0, tzinfo=UTC))
    (result,) = service.prune(dry_run=True)
    assert result.stale_partials == [partial.name]
    service.prune()
    assert partial_dirs(service.destination) == []


def test_the_manifest_records_what_the_issue_asks_for(tmp_path: Path, clock: FrozenClock) -> None:
    service = _service(tmp_path, clock)
    backup_set = service.run()
    data = json.loads((backup_set.dir / "manifest.json").read_text())
    assert data["pitstop_version"]
    assert data["started_at"] and data["finished_at"]
    (source,) = data["sources"]
    assert source["name"] == "pitstop-db" and source["kind"] == "sqlite"
    assert {"path", "size", "sha256"} <= set(source["files"][0])


def test_scheduled_jobs_back_up_when_due_and_drill(tmp_path: Path, clock: FrozenClock) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path, backup={"every_hours": 24}), clock=clock, db=db)
    pitstop.scheduler.tick()
    assert pitstop.backup.list_sets() == []  # nothing in the first minutes after start
    clock.advance(timedelta(minutes=61))  # both jobs are due again, and past the startup grace
    ran = pitstop.scheduler.tick()
    assert {"backup", "backup.drill"} <= set(ran)
    assert len(pitstop.backup.list_sets()) == 1
    assert pitstop.backup.records.last("drill") is not None
    clock.advance(timedelta(hours=1))
    pitstop.scheduler.tick()
    assert len(pitstop.backup.list_sets()) == 1  # not due yet
    clock.advance(timedelta(hours=24))
    pitstop.scheduler.tick()
    assert len(pitstop.backup.list_sets()) == 2
    time.sleep(0)  # nothing timed here
