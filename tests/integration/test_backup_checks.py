"""Backup health checks judge the sets and the record of backups, never the scheduler's job: no backup
yet, each source on its schedule, the RPO, drills per source, restore time against the RTO."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pitstop.app import Pitstop, build
from pitstop.backup.checks import BackupCheck, BackupDrillCheck, BackupFreshCheck, BackupNeverCheck, BackupRtoCheck
from pitstop.config import Settings
from pitstop.core.types import Severity, Status
from pitstop.health.base import CheckResult
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.health import check_check_class, check_check_result

CLASSES = (BackupCheck, BackupFreshCheck, BackupNeverCheck, BackupDrillCheck, BackupRtoCheck)
CHECKS = [{"check": cls.name} for cls in CLASSES]
KEYS = ("backup.overdue", "backup.never", "backup.rpo", "backup.drill", "backup.rto")


def _pitstop(tmp_path: Path, clock: FrozenClock, checks: list[dict[str, Any]] = CHECKS, **backup: Any) -> Pitstop:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    settings = Settings(
        data_dir=tmp_path,
        backup={"schedule": False, **backup},
        health={"default_checks": False, "checks": checks, "enabled": False},
    )
    return build(settings, clock=clock, db=db)


def _results(pitstop: Pitstop) -> dict[str, CheckResult]:
    return {r.check: r for r in pitstop.health.run_round().results}


def _statuses(pitstop: Pitstop) -> dict[str, Status]:
    return {name: r.status for name, r in _results(pitstop).items()}


def _open(pitstop: Pitstop) -> dict[str, Severity]:
    found = {k: pitstop.incidents.active(f"{k}:backups") for k in KEYS}
    return {k: i.severity for k, i in found.items() if i is not None}


def _models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    (root / "twin.onnx").write_bytes(b"onnx" * 1000)
    return root


def test_a_fresh_installation_says_no_backup_yet_though_the_scheduler_job_succeeded(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """The issue: the `job` check said 'last success 14 s ago' before any set existed."""
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    checks = [{"check": "job", "target": "backup"}, {"check": "backup"}]
    pitstop = build(
        Settings(data_dir=tmp_path, health={"default_checks": False, "checks": checks, "enabled": False}),
        clock=clock,
        db=db,
    )
    assert "backup" in pitstop.scheduler.tick()  # inside the start-up grace: the job backs up nothing, and succeeds
    clock.advance(timedelta(seconds=14))
    results = _results(pitstop)
    assert results["job"].status is Status.HEALTHY and "last success 14 s ago" in results["job"].summary
    assert pitstop.backup.list_sets() == []
    assert results["backup"].status is Status.WARNING
    assert results["backup"].summary.startswith("no backup yet of pitstop-db")
    assert pitstop.incidents.active("backup.overdue:backups") is not None


def test_no_backup_yet_is_critical_when_configured_so(tmp_path: Path, clock: FrozenClock) -> None:
    pitstop = _pitstop(tmp_path, clock, checks=[{"check": "backup", "params": {"missing": "critical"}}])
    result = _results(pitstop)["backup"]
    assert result.status is Status.CRITICAL and "no backup yet" in result.summary
    assert _open(pitstop) == {"backup.overdue": Severity.CRITICAL}


def test_never_then_on_schedule_then_late_then_past_the_rpo(tmp_path: Path, clock: FrozenClock) -> None:
    pitstop = _pitstop(tmp_path, clock, rpo_hours=24, every_hours=24)
    statuses = _statuses(pitstop)
    assert statuses["backup_never"] is Status.CRITICAL and statuses["backup_fresh"] is Status.UNKNOWN
    assert statuses["backup"] is Status.WARNING
    assert _open(pitstop) == {"backup.never": Severity.CRITICAL, "backup.overdue": Severity.WARNING}

    backup_set = pitstop.backup.run()
    clock.advance(timedelta(minutes=1))
    results = _results(pitstop)
    assert {n: r.status for n, r in results.items() if n != "backup_drill"} == dict.fromkeys(
        ("backup", "backup_fresh", "backup_never", "backup_rto"), Status.HEALTHY
    ) | {"backup_rto": Status.UNKNOWN}
    assert results["backup_drill"].status is Status.WARNING  # no drill yet
    assert backup_set.id in results["backup"].summary
    assert _open(pitstop) == {"backup.drill": Severity.WARNING}

    clock.advance(timedelta(hours=30))  # 30 h: past the RPO, within 150 % of the daily period
    statuses = _statuses(pitstop)
    assert statuses["backup"] is Status.HEALTHY and statuses["backup_fresh"] is Status.WARNING
    clock.advance(timedelta(hours=7))  # 37 h: the guide's 36 h
    results = _results(pitstop)
    assert results["backup"].status is Status.WARNING
    assert results["backup"].observed["age_pct"] == pytest.approx(100 * (37 + 1 / 60) / 24, abs=0.01)
    assert "age_pct" in results["backup"].summary
    clock.advance(timedelta(hours=36))
    statuses = _statuses(pitstop)
    assert statuses["backup"] is Status.CRITICAL and statuses["backup_fresh"] is Status.CRITICAL
    assert _open(pitstop)["backup.rpo"] is Severity.CRITICAL


def test_a_set_found_damaged_is_passed_over_for_the_older_good_one(tmp_path: Path, clock: FrozenClock) -> None:
    models = _models(tmp_path)
    sources = {"models": {"kind": "models", "path": str(models)}}
    pitstop = _pitstop(tmp_path, clock, sources=sources, include_pitstop_db=False)
    older = pitstop.backup.run()
    clock.advance(timedelta(hours=20))
    newer = pitstop.backup.run()
    clock.advance(timedelta(hours=1))
    assert newer.id in _results(pitstop)["backup"].summary

    entry = newer.manifest.source("models").files[0]
    stored = newer.dir / entry.stored
    stored.write_bytes(stored.read_bytes()[:-3])  # a stat sees it: no verify needed
    result = _results(pitstop)["backup"]
    assert older.id in result.summary and f"newer set {newer.id} passed over" in result.summary
    assert result.observed["age_hours"] == pytest.approx(21)

    stored.write_bytes(stored.read_bytes() + b"abc")  # the same size, other bytes: only a read finds it
    assert newer.id in _results(pitstop)["backup"].summary
    assert pitstop.backup.verify(newer.id)[1]
    result = _results(pitstop)["backup"]
    assert f"{newer.id} passed over: the last verify or drill of it failed" in result.summary
    assert pitstop.backup.restore_file("models:twin.onnx", into=tmp_path / "back.onnx").copy.set_id == older.id


def test_a_backup_whose_offsite_copy_failed_is_not_a_good_backup(tmp_path: Path, clock: FrozenClock) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the share should be")
    pitstop = _pitstop(tmp_path, clock, offsite=str(blocker / "share"))
    with pytest.raises(Exception, match="off-site copy failed"):
        pitstop.backup.run()
    (local,) = pitstop.backup.list_sets()  # written here, but the 3-2-1 copy is missing
    result = _results(pitstop)["backup"]
    assert result.status is Status.WARNING
    assert f"no backup yet of pitstop-db (set {local.id} is recorded as failed" in result.summary


def test_sets_the_record_does_not_know_still_count_and_say_so(tmp_path: Path, clock: FrozenClock) -> None:
    """After pitstop's own database is restored, the record misses the newer backups; their sets still count."""
    first = _pitstop(tmp_path / "a", clock)
    backup_set = first.backup.run()
    other = tmp_path / "b"
    other.mkdir()
    second = _pitstop(other, clock, destination=str(first.backup.destination))
    assert second.backup.records.recent() == []
    result = _results(second)["backup"]
    assert result.status is Status.HEALTHY
    assert backup_set.id in result.summary and "not in the record of backups" in result.summary


def test_drills_are_judged_per_source_and_the_rto_sums_them(tmp_path: Path, clock: FrozenClock) -> None:
    models = _models(tmp_path)
    sources = {"models": {"kind": "models", "path": str(models)}}
    pitstop = _pitstop(tmp_path, clock, sources=sources, rto_minutes=60)
    both = pitstop.backup.run()
    clock.advance(timedelta(hours=1))
    db_only = pitstop.backup.run(only={"pitstop-db": pitstop.backup.sources()["pitstop-db"]})
    pitstop.backup.drill(db_only.id)
    results = _results(pitstop)
    assert results["backup_drill"].status is Status.WARNING
    assert "never drilled: models" in results["backup_drill"].summary
    db_drill = pitstop.backup.records.last("drill")
    assert db_drill is not None
    db_s = db_drill.detail["sources"][0]["restore_seconds"] + db_drill.detail["sources"][0]["verify_seconds"]
    assert results["backup_rto"].observed["restore_s"] == pytest.approx(db_s, abs=1e-3)
    assert "no passed drill of models" in results["backup_rto"].summary

    clock.advance(timedelta(minutes=5))
    pitstop.backup.drill(both.id)  # both sources, the database again
    results = _results(pitstop)
    assert results["backup_drill"].status is Status.HEALTHY
    both_drill = pitstop.backup.records.last("drill")
    assert both_drill is not None
    expected = sum(s["restore_seconds"] + s["verify_seconds"] for s in both_drill.detail["sources"])
    assert results["backup_rto"].observed["restore_s"] == pytest.approx(expected, abs=1e-3)

    entry = both.manifest.source("models").files[0]
    stored = both.dir / entry.stored
    stored.write_bytes(stored.read_bytes()[:-1])
    clock.advance(timedelta(minutes=5))
    assert not pitstop.backup.drill(both.id).ok
    results = _results(pitstop)
    assert results["backup_drill"].status is Status.CRITICAL
    assert results["backup_drill"].summary.startswith(f"restore drill failed: models (set {both.id})")
    assert results["backup_drill"].observed["failed"] == 1
    assert _open(pitstop)["backup.drill"] is Severity.CRITICAL
    # the models have no good copy left; the database's newest one is the newer set
    assert "no backup yet of models" in results["backup"].summary

    clock.advance(timedelta(days=15))  # past twice the weekly drill period
    pitstop.backup.run()
    assert pitstop.backup.drill().ok
    clock.advance(timedelta(days=15))
    results = _results(pitstop)
    assert results["backup_drill"].status is Status.WARNING
    assert results["backup_drill"].observed["age_pct"] >= 200


def test_a_restore_slower_than_the_rto_opens_an_incident(tmp_path: Path, clock: FrozenClock) -> None:
    pitstop = _pitstop(tmp_path, clock, rto_minutes=1e-6)  # any real restore is slower than 60 µs
    pitstop.backup.run()
    assert pitstop.backup.drill().ok
    statuses = _statuses(pitstop)
    assert statuses["backup_drill"] is Status.HEALTHY and statuses["backup_rto"] is Status.CRITICAL
    assert _open(pitstop) == {"backup.rto": Severity.CRITICAL}


def test_a_target_names_one_source(tmp_path: Path, clock: FrozenClock) -> None:
    models = _models(tmp_path)
    sources = {"models": {"kind": "models", "path": str(models), "every_hours": 2160, "rpo_hours": 2400}}
    checks = [{"check": "backup", "target": "models"}, {"check": "backup_fresh", "target": "nosuch"}]
    pitstop = _pitstop(tmp_path, clock, checks=checks, sources=sources)
    pitstop.backup.run()
    clock.advance(timedelta(days=30))
    results = {(r.check, r.target): r for r in pitstop.health.run_round().results}
    models_result = results[("backup", "models")]
    assert models_result.status is Status.HEALTHY and models_result.incident_key == "backup.overdue:models"
    assert "backed up every 90.0 d" in models_result.summary
    nosuch = results[("backup_fresh", "nosuch")]
    assert nosuch.status is Status.UNKNOWN and "no backup source 'nosuch'" in nosuch.summary


@pytest.mark.parametrize(
    ("target", "params", "message"),
    [
        ("backups", {"missing": "sometimes"}, "missing must be"),
        ("backups", {"missing": 1}, "missing must be"),
        ("backups", {"missing": None}, "missing must be"),
        ("backups", {"max_age_s": 129600}, "unknown parameter"),
        ("../etc/passwd", {}, "neither 'backups'"),
        ("Models", {}, "neither 'backups'"),
        ("x" * 5000, {}, "neither 'backups'"),
        ("", {}, "neither 'backups'"),
    ],
)
def test_bad_parameters_and_targets_are_refused(target: str, params: dict[str, Any], message: str) -> None:
    for cls in (BackupCheck, BackupFreshCheck):
        with pytest.raises(ValueError, match=message):
            cls(target, params=params)
    if "missing" not in params:
        for cls in (BackupNeverCheck, BackupDrillCheck, BackupRtoCheck):
            with pytest.raises(ValueError, match=message.replace("missing must be", "unknown parameter")):
                cls(target, params=params)


def test_the_backup_checks_keep_the_check_contract(tmp_path: Path, clock: FrozenClock) -> None:
    pitstop = _pitstop(tmp_path, clock)
    for cls in CLASSES:
        check_check_class(cls, sample_target="backups")
        check_check_result(cls("backups"), pitstop.health.context)
        check_check_result(cls("all"), pitstop.health.context)
    pitstop.backup.run()
    pitstop.backup.drill()
    for cls in CLASSES:
        assert check_check_result(cls("backups"), pitstop.health.context).status is Status.HEALTHY
