"""Backup health checks open incidents: never succeeded, RPO, failed drill, restore time above the RTO."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Severity, Status
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock

CHECKS = [{"check": name} for name in ("backup_fresh", "backup_never", "backup_drill", "backup_rto")]


def _pitstop(tmp_path: Path, clock: FrozenClock, **backup: object) -> Pitstop:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    settings = Settings(
        data_dir=tmp_path,
        backup={"schedule": False, **backup},
        health={"default_checks": False, "checks": CHECKS, "enabled": False},
    )
    return build(settings, clock=clock, db=db)


def _statuses(pitstop: Pitstop) -> dict[str, Status]:
    return {r.check: r.status for r in pitstop.health.run_round().results}


def _open(pitstop: Pitstop) -> dict[str, Severity]:
    keys = ("backup.never:backups", "backup.rpo:backups", "backup.drill:backups", "backup.rto:backups")
    found = {k: pitstop.incidents.active(k) for k in keys}
    return {k: i.severity for k, i in found.items() if i is not None}


def test_never_then_fresh_then_past_the_rpo(tmp_path: Path, clock: FrozenClock) -> None:
    pitstop = _pitstop(tmp_path, clock, rpo_hours=24)
    assert _statuses(pitstop)["backup_never"] is Status.CRITICAL
    assert _open(pitstop) == {"backup.never:backups": Severity.CRITICAL}

    pitstop.backup.run()
    clock.advance(timedelta(minutes=1))
    statuses = _statuses(pitstop)
    assert statuses["backup_never"] is Status.HEALTHY and statuses["backup_fresh"] is Status.HEALTHY
    assert statuses["backup_drill"] is Status.WARNING  # no drill yet
    assert "backup.never:backups" not in _open(pitstop)

    clock.advance(timedelta(hours=30))
    assert _statuses(pitstop)["backup_fresh"] is Status.WARNING
    clock.advance(timedelta(hours=20))
    assert _statuses(pitstop)["backup_fresh"] is Status.CRITICAL
    assert _open(pitstop)["backup.rpo:backups"] is Severity.CRITICAL


def test_a_failed_drill_and_a_restore_slower_than_the_rto_open_incidents(tmp_path: Path, clock: FrozenClock) -> None:
    pitstop = _pitstop(tmp_path, clock, rto_minutes=1e-6)  # any real restore is slower than 60 µs
    backup_set = pitstop.backup.run()
    assert pitstop.backup.drill().ok
    statuses = _statuses(pitstop)
    assert statuses["backup_drill"] is Status.HEALTHY and statuses["backup_rto"] is Status.CRITICAL
    assert _open(pitstop) == {"backup.rto:backups": Severity.CRITICAL}

    entry = backup_set.manifest.source("pitstop-db").files[0]
    stored = backup_set.dir / entry.stored
    stored.write_bytes(stored.read_bytes()[:-10])  # the set is damaged
    clock.advance(timedelta(minutes=5))
    assert not pitstop.backup.drill().ok
    results = {r.check: r for r in pitstop.health.run_round().results}
    assert results["backup_drill"].status is Status.CRITICAL
    assert "database.sqlite" in results["backup_drill"].summary
    assert _open(pitstop)["backup.drill:backups"] is Severity.CRITICAL


def test_the_backup_checks_keep_the_check_contract(tmp_path: Path, clock: FrozenClock) -> None:
    from pitstop.backup.checks import BackupDrillCheck, BackupFreshCheck, BackupNeverCheck, BackupRtoCheck
    from pitstop.testing.health import check_check_class, check_check_result

    pitstop = _pitstop(tmp_path, clock)
    for cls in (BackupFreshCheck, BackupNeverCheck, BackupDrillCheck, BackupRtoCheck):
        check_check_class(cls, sample_target="backups")
        check_check_result(cls("backups"), pitstop.health.context)
    pitstop.backup.run()
    pitstop.backup.drill()
    for cls in (BackupFreshCheck, BackupNeverCheck, BackupDrillCheck, BackupRtoCheck):
        assert check_check_result(cls("backups"), pitstop.health.context).status is Status.HEALTHY
