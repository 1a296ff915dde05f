"""Backup and restore speed of a pitstop database, against the plain tools on the same data in the same run.

    python bench/backup.py [--rows 1000000] [--sensors 500] [--level 1] [--encrypt]
    python bench/backup.py --rows 10000000      # the issue's size; takes several minutes

Prints JSON. For SQLite and PostgreSQL: fill a pitstop database with N readings, then
- pitstop: `BackupService.run` (consistent dump, gzip, sha256 per file, manifest, fsync, rename) and
  `BackupService.drill` (restore into a scratch database, then integrity_check / row counts);
- plain: the SQLite online backup API to a file and back (what `sqlite3 .backup` does), and
  `pg_dump -Fc` to a file and `pg_restore` into a new database.
MB/s is the database size (SQLite file / pg_database_size) over the time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from pitstop.backup import BackupRecords, BackupService
from pitstop.config.models import BackupSettings
from pitstop.core.clock import SystemClock
from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch, ReadingRepo
from pitstop.testing.services import scratch_postgres_database

BATCH = 500_000


def fill(db: Database, rows: int, sensors: int) -> None:
    db.upgrade()
    repo = ReadingRepo(db)
    steps = rows // sensors
    rng = np.random.default_rng(7)
    for start in range(0, steps, BATCH // sensors):
        n = min(BATCH // sensors, steps - start)
        ts = 1_767_225_600_000_000 + np.repeat(np.arange(start, start + n, dtype=np.int64), sensors) * 1_000_000
        sensor = np.tile(np.arange(1, sensors + 1, dtype=np.int32), n)
        repo.write(ReadingBatch.of(sensor, ts, rng.normal(20, 5, len(ts))))


def _rate(mb: float, seconds: float) -> float:
    return round(mb / seconds, 1) if seconds > 0 else 0.0


def pitstop_run(db: Database, work: Path, mb: float, settings: BackupSettings) -> dict[str, Any]:
    service = BackupService(settings, data_dir=work, db=db, clock=SystemClock(), records=BackupRecords(db))
    t0 = time.perf_counter()
    backup_set = service.run()
    backup_s = time.perf_counter() - t0
    drill = service.drill()
    assert drill.ok, drill
    (source,) = drill.sources
    return {
        "backup_s": round(backup_s, 2),
        "backup_mb_s": _rate(mb, backup_s),
        "stored_mb": round(backup_set.manifest.stored_size / 1e6, 1),
        "restore_s": round(source.restore_seconds, 2),
        "restore_mb_s": _rate(mb, source.restore_seconds),
        "verify_s": round(source.verify_seconds, 2),
        "drill_s": round(drill.seconds, 2),
    }


def sqlite_plain(path: Path, work: Path, mb: float) -> dict[str, Any]:
    copy, back = work / "plain-copy.db", work / "plain-restored.db"
    t0 = time.perf_counter()
    with contextlib.closing(sqlite3.connect(path)) as src, contextlib.closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
    backup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with contextlib.closing(sqlite3.connect(copy)) as src, contextlib.closing(sqlite3.connect(back)) as dst:
        src.backup(dst)
    restore_s = time.perf_counter() - t0
    return {
        "tool": "sqlite3 online backup API (.backup)",
        "backup_s": round(backup_s, 2),
        "backup_mb_s": _rate(mb, backup_s),
        "restore_s": round(restore_s, 2),
        "restore_mb_s": _rate(mb, restore_s),
    }


def pg_plain(url: str, work: Path, mb: float) -> dict[str, Any]:
    dump = work / "plain.pgdump"
    t0 = time.perf_counter()
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), "-d", url], check=True)
    backup_s = time.perf_counter() - t0
    with scratch_postgres_database() as other:
        t0 = time.perf_counter()
        cmd = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        subprocess.run([*cmd, "-d", other, str(dump)], check=True)
        restore_s = time.perf_counter() - t0
    return {
        "tool": "pg_dump -Fc + pg_restore --single-transaction",
        "backup_s": round(backup_s, 2),
        "backup_mb_s": _rate(mb, backup_s),
        "dump_mb": round(dump.stat().st_size / 1e6, 1),
        "restore_s": round(restore_s, 2),
        "restore_mb_s": _rate(mb, restore_s),
    }


def compare(ours: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    return {
        "backup_overhead_pct": round(100 * (ours["backup_s"] / plain["backup_s"] - 1), 1),
        "restore_overhead_pct": round(100 * (ours["restore_s"] / plain["restore_s"] - 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="readings (the issue asks for 10000000)")
    parser.add_argument("--sensors", type=int, default=500)
    parser.add_argument("--level", type=int, default=1, help="gzip level of the sets (0 stores)")
    parser.add_argument("--encrypt", action="store_true", help="AES-256-GCM encrypt the sets")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    args = parser.parse_args()
    settings = BackupSettings(
        schedule=False, compression_level=args.level, encryption_key="bench passphrase" if args.encrypt else None
    )
    result: dict[str, Any] = {
        "benchmark": "backup.pitstop_database",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rows": args.rows,
        "compression_level": args.level,
        "encrypted": args.encrypt,
    }
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            path = work / "pitstop.db"
            db = Database(f"sqlite:///{path}")
            fill(db, args.rows, args.sensors)
            db.dispose()
            with contextlib.closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            mb = path.stat().st_size / 1e6
            ours = pitstop_run(db, work, mb, settings)
            plain = sqlite_plain(path, work, mb)
            result["sqlite"] = {"db_mb": round(mb, 1), "pitstop": ours, "plain": plain, **compare(ours, plain)}
            db.dispose()
    if args.only in (None, "postgresql"):
        try:
            with scratch_postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                db = Database(url)
                fill(db, args.rows, args.sensors)
                with psycopg.connect(url) as conn:
                    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                mb = (row[0] if row else 0) / 1e6
                ours = pitstop_run(db, work, mb, settings)
                plain = pg_plain(url, work, mb)
                result["postgresql"] = {"db_mb": round(mb, 1), "pitstop": ours, "plain": plain, **compare(ours, plain)}
                db.dispose()
        except BaseException as exc:  # pytest.skip raises a BaseException subclass
            if isinstance(exc, KeyboardInterrupt):
                raise
            result["postgresql"] = {"skipped": str(exc) or type(exc).__name__}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
