"""Per-component schedules and retention (`[backup.sources.<name>]`): the guides' table, database
daily, logs weekly, configuration monthly, models quarterly, run by the real scheduler over
simulated months, and prune keeping exactly what each component's policy says."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pitstop.app import Pitstop, build
from pitstop.backup.retention import Policy, decide, decide_components
from pitstop.backup.sets import list_sets
from pitstop.config import Settings, load_settings
from pitstop.config.models import BackupSettings
from pitstop.core.types import Status
from pitstop.scheduler import Scheduler
from pitstop.storage import Database
from pitstop.storage.repos.jobs import JobRepo
from pitstop.testing.clock import FrozenClock

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _components(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The guide's table: database daily (pitstop's own, the global schedule), logs weekly,
    configuration every 30 days, models every 90 days, each with its own retention."""
    config = _tree(tmp_path / "etc", {"pitstop.toml": "[api]\n", "plant/inventory.toml": "[[sites]]\n"})
    logs = _tree(tmp_path / "logs", {"app.log": "INFO start\n"})
    models = _tree(tmp_path / "models", {"pump-1/twin.onnx": "onnx"})
    return {
        "logs": {"kind": "files", "path": str(logs), "every_hours": 168, "rpo_hours": 336, "retention": {"weekly": 4}},
        "config": {
            "kind": "config",
            "path": str(config),
            "every_hours": 720,
            "rpo_hours": 1440,
            "retention": {"monthly": 3},
        },
        "models": {
            "kind": "models",
            "path": str(models),
            "every_hours": 2160,
            "rpo_hours": 2400,
            "retention": {"keep_days": 100},
        },
    }


def _pitstop(tmp_path: Path, clock: FrozenClock, **backup: Any) -> Pitstop:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    checks = [{"check": name} for name in ("backup", "backup_fresh", "backup_never", "backup_drill", "backup_rto")]
    settings = Settings(
        data_dir=tmp_path,
        backup={"schedule": False, **backup},
        health={"default_checks": False, "checks": checks, "enabled": False},
    )
    return build(settings, clock=clock, db=db)


# -- settings -------------------------------------------------------------------------------------


def test_the_table_form_and_the_list_form_say_the_same(tmp_path: Path) -> None:
    toml = tmp_path / "pitstop.toml"
    toml.write_text(
        "[backup]\nevery_hours = 24\n"
        '[backup.sources.vms-db]\nkind = "postgres"\nurl = "postgresql://backup@vms-host/vms"\n'
        '[backup.sources.logs]\nkind = "files"\npath = "/var/log/vms"\nevery_hours = 168\nrpo_hours = 336\n'
        "retention = { weekly = 8 }\n"
    )
    settings = load_settings(toml).backup
    assert list(settings.sources) == ["vms-db", "logs"]
    assert settings.sources["logs"].name == "logs"
    assert settings.source_every_hours("logs") == 168 and settings.source_every_hours("vms-db") == 24
    assert settings.source_rpo_hours("logs") == 336 and settings.source_rpo_hours("pitstop-db") == 24
    retention = settings.source_retention("logs")
    assert retention is not None and (retention.weekly, retention.daily, retention.keep_last) == (8, 0, 0)
    assert settings.source_retention("vms-db") is None

    listed = tomllib.loads(
        '[[sources]]\nname = "vms-db"\nkind = "postgres"\nurl = "postgresql://backup@vms-host/vms"\n'
        '[[sources]]\nname = "logs"\nkind = "files"\npath = "/var/log/vms"\nevery_hours = 168\nrpo_hours = 336\n'
        "retention = { weekly = 8 }\n"
    )
    assert BackupSettings(**listed).sources == settings.sources


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ([{"name": "a", "kind": "files"}, {"name": "a", "kind": "files"}], "configured twice"),
        ([{"kind": "files"}], "needs a name"),
        ({"a": {"kind": "files", "name": "b"}}, "names itself"),
        ({"A": {"kind": "files"}}, "should match pattern"),
        ({"../x": {"kind": "files"}}, "should match pattern"),
        ({"pitstop-db": {"kind": "sqlite", "path": "/x"}}, "pitstop's own database"),
        ({"a": {"kind": "files", "every_hours": 0}}, "greater than 0"),
        ({"a": {"kind": "files", "every_hours": -24}}, "greater than 0"),
        ({"a": {"kind": "files", "every_hours": float("inf")}}, "finite number"),
        ({"a": {"kind": "files", "every_hours": float("nan")}}, "finite number"),
        ({"a": {"kind": "files", "every_hours": 1e12}}, "less than or equal"),
        ({"a": {"kind": "files", "every_hours": "weekly"}}, "valid number"),
        ({"a": {"kind": "files", "every_hours": 168}}, "rpo_hours"),  # a weekly source cannot keep a daily RPO
        ({"a": {"kind": "files", "rpo_hours": 0}}, "greater than 0"),
        ({"a": {"kind": "files", "retention": {"weekly": -1}}}, "greater than or equal"),
        ({"a": {"kind": "files", "retention": {"keep_days": float("inf")}}}, "finite number"),
        ({"a": {"kind": "files", "retention": {"hourly": 3}}}, "Extra inputs"),
        ({"a": {"kind": "files", "retention": "forever"}}, "valid dictionary"),
        ({"a": {"kind": "files", "schedule": "daily"}}, "Extra inputs"),
        ("logs", "valid dictionary"),
    ],
)
def test_malformed_sources_are_refused_naming_what_is_wrong(sources: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BackupSettings(sources=sources)


def test_a_source_retention_keeps_only_the_tiers_it_gives() -> None:
    settings = BackupSettings(sources={"a": {"kind": "files", "retention": {"monthly": 12}}})
    own = settings.source_retention("a")
    assert own is not None and (own.keep_last, own.daily, own.weekly, own.monthly, own.quarterly) == (0, 0, 0, 12, 0)
    assert BackupSettings(sources={"a": {"kind": "files", "retention": {}}}).source_retention("a") is not None


# -- retention over components --------------------------------------------------------------------


def test_a_set_is_kept_while_any_of_its_components_keeps_it() -> None:
    at = [START + n * DAY for n in range(10)]
    items = [(f"s{n}", at[n], ("db", "models") if n in (0, 5) else ("db",)) for n in range(10)]
    decisions = {d.id: d.reasons for d in decide_components(items, Policy(daily=3), {"models": Policy(keep_last=2)})}
    assert {i for i, r in decisions.items() if r} == {"s9", "s8", "s7", "s5", "s0"}
    assert decisions["s0"] == ("models: last",) and decisions["s9"] == ("daily",)
    assert decisions["s5"] == ("models: last",)
    # the same without the models: their sets go under the database's policy alone
    plain = decide_components([(i, t, ("db",)) for i, t, _ in items], Policy(daily=3), {})
    assert {d.id for d in plain if d.keep} == {"s9", "s8", "s7"}


def test_keep_days_counts_from_the_newest_set_as_restic_keep_within() -> None:
    items = [(f"s{n}", START + n * DAY, ("models",)) for n in range(0, 400, 90)]  # days 0, 90, ..., 360
    kept = {d.id for d in decide_components(items, Policy(), {"models": Policy(keep_days=100)}) if d.keep}
    assert kept == {"s360", "s270"}
    exactly = decide([("old", START), ("new", START + 90 * DAY)], Policy(keep_days=90))
    assert [d.keep for d in exactly] == [True, False]  # restic keeps only what is strictly within
    hours = decide([(f"h{h}", START + timedelta(hours=h)) for h in range(0, 25, 6)], Policy(keep_days=0.5))
    assert [d.id for d in hours if d.keep] == ["h24", "h18"]  # within 12 h of the newest, strictly


# -- the schedule over simulated months ------------------------------------------------------------


def _expected_kept(made: list[tuple[str, datetime, set[str]]]) -> set[str]:
    """What each component's policy keeps, by hand for these regular calendars: the database 7
    daily (one set a day: its 7 newest), logs weekly 4 (one a week: its 4 newest), configuration
    monthly 3 (the newest of each of its 3 newest months), models keep_days 100."""
    holding = {name: sorted((at, i) for i, at, names in made if name in names) for name in ("db", "logs", "config")}
    holding["db"] = sorted((at, i) for i, at, names in made if "pitstop-db" in names)
    kept = {i for _, i in holding["db"][-7:]} | {i for _, i in holding["logs"][-4:]}
    newest_of_month: dict[tuple[int, int], str] = {}
    for at, i in holding["config"]:
        newest_of_month[(at.year, at.month)] = i
    kept |= {newest_of_month[m] for m in sorted(newest_of_month)[-3:]}
    models = sorted((at, i) for i, at, names in made if "models" in names)
    kept |= {i for at, i in models if at > models[-1][0] - timedelta(days=100)}
    return kept


def test_the_scheduler_runs_each_component_when_due_and_prune_keeps_each_ones_policy(tmp_path: Path) -> None:
    clock = FrozenClock(START)
    retention = {"keep_last": 0, "daily": 7, "weekly": 0, "monthly": 0, "quarterly": 0}
    pitstop = _pitstop(tmp_path, clock, sources=_components(tmp_path), retention=retention, schedule=True)
    service = pitstop.backup
    # a scheduler of the backup jobs alone (the installation's has every other job too)
    scheduler = Scheduler(JobRepo(pitstop.db), clock, lease_ttl=timedelta(minutes=5))
    service.schedule(scheduler)
    assert scheduler.jobs["backup"].every == timedelta(minutes=15)

    made: list[tuple[str, datetime, set[str]]] = []
    known: set[str] = set()
    for _ in range(100 * 24):  # 100 days, a tick an hour
        scheduler.tick()
        for s in list_sets(service.destination):
            if s.id not in known:
                known.add(s.id)
                made.append((s.id, s.manifest.started_at, set(s.manifest.source_names)))
        clock.advance(timedelta(hours=1))

    first = START + timedelta(hours=1)  # the first tick past the start-up grace
    days = {name: sorted((at - first) / DAY for _, at, names in made if name in names) for name in service.sources()}
    assert days["pitstop-db"] == list(range(100))
    assert days["logs"] == list(range(0, 100, 7))
    assert days["config"] == [0, 30, 60, 90]
    assert days["models"] == [0, 90]
    by_day = {(at - first) / DAY: names for _, at, names in made}
    assert by_day[0] == {"pitstop-db", "logs", "config", "models"}
    assert by_day[1] == {"pitstop-db"} and by_day[7] == {"pitstop-db", "logs"}
    assert by_day[30] == {"pitstop-db", "config"} and by_day[90] == {"pitstop-db", "config", "models"}

    kept = {s.id for s in list_sets(service.destination)}
    assert kept == _expected_kept(made)
    assert len(kept) < len(made)
    reasons = {d.id: d.reasons for d in service.prune(dry_run=True)[0].decisions}
    newest_models = max((at, i) for i, at, names in made if "models" in names)[1]
    assert "models: within" in reasons[newest_models] and "config: monthly" in reasons[newest_models]

    # Drills ran weekly and covered every component's newest good copy.
    results = {r.check: r for r in pitstop.health.run_round().results}
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(results, Status.HEALTHY), {
        n: r.summary for n, r in results.items()
    }
    drilled = {s["source"] for d in service.records.recent("drill", limit=5) for s in d.detail["sources"]}
    assert drilled == {"pitstop-db", "logs", "config", "models"}

    # 'latest' of one source is its newest good copy, though newer sets do not hold it.
    newest = service.list_sets()[0]
    assert "config" not in newest.manifest.source_names
    service.restore("latest", "config", into=str(tmp_path / "config-back"))
    assert (tmp_path / "config-back" / "plant" / "inventory.toml").read_text() == "[[sites]]\n"

    # The scheduler stops: each component goes late by its own period.
    clock.advance(timedelta(days=2))
    result = next(r for r in pitstop.health.run_round().results if r.check == "backup")
    assert result.status is Status.WARNING and result.summary.startswith("4 sources, the latest pitstop-db")
    clock.advance(timedelta(days=10))  # logs are 2 weeks and more behind; the database is worse
    result = next(r for r in pitstop.health.run_round().results if r.check == "backup")
    assert result.status is Status.CRITICAL and "pitstop-db" in result.summary


def test_a_component_alone_is_backed_up_when_it_is_due(tmp_path: Path) -> None:
    clock = FrozenClock(START)
    sources = _components(tmp_path)
    pitstop = _pitstop(tmp_path, clock, sources=sources, every_hours=48, rpo_hours=72)
    service = pitstop.backup
    clock.advance(timedelta(minutes=10))
    assert set(service.due(clock.now())) == {"pitstop-db", "logs", "config", "models"}
    service.backup_if_due(clock.now())
    assert service.due(clock.now()) == {}
    clock.advance(timedelta(hours=47, minutes=59, seconds=30))  # a tick a moment early still counts
    assert set(service.due(clock.now())) == {"pitstop-db"}
    clock.advance(timedelta(days=5))
    assert set(service.due(clock.now())) == {"pitstop-db", "logs"}
    service.backup_if_due(clock.now())
    (newest, _) = service.list_sets()
    assert newest.manifest.source_names == ["pitstop-db", "logs"] and newest.manifest.reason == "scheduled"
