"""Backup and restore speed of a pitstop database, against the plain tools on the same data in the same run.

    OMP_NUM_THREADS=1 python bench/backup.py [--rows 1000000] [--sensors 500] [--level 1] [--encrypt] [--repeat 5]
    OMP_NUM_THREADS=1 python bench/backup.py --rows 10000000 --only postgresql   # the issue's size; minutes

Prints JSON. For SQLite and PostgreSQL: fill a pitstop database with N readings, then `--repeat`
rounds on the same database, the order of pitstop and the plain tools turned round every round
(a shared machine's load and a warm cache favour neither), and the median of each figure:
- pitstop: `BackupService.run` (consistent dump, gzip / pg_dump at the set's level, sha256 per file,
  manifest, fsync, rename) and `BackupService.drill` (restore into a scratch database, then
  integrity_check / row counts);
- plain: the SQLite online backup API to a file and back (what `sqlite3 .backup` does), and
  `pg_dump -Fc` (its default compression) to a file and `pg_restore` into a new database;
- plain at the set's level (PostgreSQL): `pg_dump -Fc -Z<level>`, the same compression pitstop asks
  pg_dump for, so that overhead is pitstop's own work alone.
MB/s is the database size (SQLite file / pg_database_size) over the time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
    shutil.rmtree(backup_set.dir)  # the next round starts from the same empty destination
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
    for leftover in (copy, back):
        leftover.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with contextlib.closing(sqlite3.connect(path)) as src, contextlib.closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
    backup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with contextlib.closing(sqlite3.connect(copy)) as src, contextlib.closing(sqlite3.connect(back)) as dst:
        src.backup(dst)
    restore_s = time.perf_counter() - t0
    return {
        "backup_s": round(backup_s, 2),
        "backup_mb_s": _rate(mb, backup_s),
        "restore_s": round(restore_s, 2),
        "restore_mb_s": _rate(mb, restore_s),
    }


def pg_plain(url: str, work: Path, mb: float, *, level: int | None = None, restore: bool = True) -> dict[str, Any]:
    """`pg_dump -Fc` (at `level`, else its default) to a file, and `pg_restore` of it into a new database."""
    dump = work / "plain.pgdump"
    t0 = time.perf_counter()
    subprocess.run(
        ["pg_dump", "-Fc", *([f"-Z{level}"] if level is not None else []), "-f", str(dump), "-d", url], check=True
    )
    backup_s = time.perf_counter() - t0
    result = {
        "backup_s": round(backup_s, 2),
        "backup_mb_s": _rate(mb, backup_s),
        "dump_mb": round(dump.stat().st_size / 1e6, 1),
    }
    if restore:
        with scratch_postgres_database() as other:
            t0 = time.perf_counter()
            cmd = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
            subprocess.run([*cmd, "-d", other, str(dump)], check=True)
            restore_s = time.perf_counter() - t0
        result |= {"restore_s": round(restore_s, 2), "restore_mb_s": _rate(mb, restore_s)}
    dump.unlink()
    return result


def rounds(repeat: int, runners: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, Any]:
    """Run every runner `repeat` times, the order turned round each round; the median of each figure
    and every round's."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    names = list(runners)
    for n in range(repeat):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            runs[name].append(runners[name]())
    out: dict[str, Any] = {}
    for name, results in runs.items():
        median = {
            key: round(statistics.median(r[key] for r in results), 2)
            for key, value in results[0].items()
            if isinstance(value, int | float)
        }
        times = [key for key in median if key.endswith("_s") and not key.endswith("_mb_s")]
        out[name] = {**median, "rounds": {key: [r[key] for r in results] for key in times}}
    return out


def overhead(ours: dict[str, Any], plain: dict[str, Any], key: str) -> float:
    return round(100 * (ours[key] / plain[key] - 1), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="readings (the issue asks for 10000000)")
    parser.add_argument("--sensors", type=int, default=500)
    parser.add_argument("--level", type=int, default=1, help="gzip level of the sets (0 stores)")
    parser.add_argument("--encrypt", action="store_true", help="AES-256-GCM encrypt the sets")
    parser.add_argument("--repeat", type=int, default=3, help="rounds on the same database; medians are reported")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    args = parser.parse_args()
    settings = BackupSettings(
        schedule=False, compression_level=args.level, encryption_key="bench passphrase" if args.encrypt else None
    )
    result: dict[str, Any] = {
        "benchmark": "backup.pitstop_database",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "rows": args.rows,
        "compression_level": args.level,
        "encrypted": args.encrypt,
        "repeat": args.repeat,
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
            measured = rounds(
                args.repeat,
                {"pitstop": lambda: pitstop_run(db, work, mb, settings), "plain": lambda: sqlite_plain(path, work, mb)},
            )
            ours, plain = measured["pitstop"], measured["plain"]
            result["sqlite"] = {
                "db_mb": round(mb, 1),
                "pitstop": ours,
                "plain": {"tool": "sqlite3 online backup API (.backup)", **plain},
                "backup_overhead_pct": overhead(ours, plain, "backup_s"),
                "restore_overhead_pct": overhead(ours, plain, "restore_s"),
            }
            db.dispose()
    if args.only in (None, "postgresql"):
        try:
            with scratch_postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                db = Database(url)
                fill(db, args.rows, args.sensors)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")  # not left to autovacuum in the middle of a round
                    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                mb = (row[0] if row else 0) / 1e6
                measured = rounds(
                    args.repeat,
                    {
                        "pitstop": lambda: pitstop_run(db, work, mb, settings),
                        "plain": lambda: pg_plain(url, work, mb),
                        "plain_same_level": lambda: pg_plain(url, work, mb, level=args.level, restore=False),
                    },
                )
                ours, plain, same = measured["pitstop"], measured["plain"], measured["plain_same_level"]
                result["postgresql"] = {
                    "db_mb": round(mb, 1),
                    "pitstop": ours,
                    "plain": {"tool": "pg_dump -Fc + pg_restore --single-transaction", **plain},
                    "plain_same_level": {"tool": f"pg_dump -Fc -Z{args.level}", **same},
                    "backup_overhead_pct": overhead(ours, plain, "backup_s"),
                    "backup_overhead_same_level_pct": overhead(ours, same, "backup_s"),
                    "restore_overhead_pct": overhead(ours, plain, "restore_s"),
                }
                db.dispose()
        except BaseException as exc:  # pytest.skip raises a BaseException subclass
            if isinstance(exc, KeyboardInterrupt):
                raise
            result["postgresql"] = {"skipped": str(exc) or type(exc).__name__}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
