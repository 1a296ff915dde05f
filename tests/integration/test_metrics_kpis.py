"""The guides' KPI table in /metrics (`pitstop.observability_kpis`), the alert rules and the Grafana
dashboard shipped for them (`deploy/`).

A pitstop on SQLite and on PostgreSQL with everything the families report: the demo's trained
HVAC twin and its stored drift report, a round of health checks, incidents in several states, a
backup set and a restore drill, readings and quarantined ones through the API. /metrics is
scraped through the API and every family compared with the records it comes from. promtool
(Debian's `prometheus` package) checks the scrape, the rules (and their behaviour, `promtool test
rules`) and the dashboard's queries.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pitstop import demo
from pitstop.api import create_app
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Severity, Status
from pitstop.health.base import CheckResult
from pitstop.incidents.models import IncidentState
from pitstop.observability_kpis import FAMILIES, KpiCollector, _features
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import scratch_postgres_database, unavailable
from tests.conftest import auth

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "pitstop-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "pitstop-dashboard.json"
START = datetime(2026, 3, 5, tzinfo=UTC)
MODEL = "hvac-twin"
STATUS_VALUE = {Status.HEALTHY: 0.0, Status.WARNING: 1.0, Status.CRITICAL: 2.0, Status.UNKNOWN: 3.0}

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]  # sample name -> sorted labels -> value


def scrape(client: TestClient) -> tuple[str, Samples]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return response.text, samples


def series(samples: Samples, name: str, *labels: str) -> dict[Any, float]:
    """A family's values keyed by the given labels' values (a tuple, or the value for one label)."""
    out: dict[Any, float] = {}
    for key, value in samples.get(name, {}).items():
        found = dict(key)
        assert set(found) == set(labels), f"{name} has labels {sorted(found)}, expected {sorted(labels)}"
        values = tuple(found[label] for label in labels)
        out[values[0] if len(values) == 1 else values] = value
    return out


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        unavailable("promtool is not installed (Debian package `prometheus`: apt-get install prometheus)")
        raise AssertionError("unreachable")
    return path


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)


# -- an installation with something in every family -------------------------------------------------


@dataclass
class Installation:
    pitstop: Pitstop
    clock: FrozenClock
    client: TestClient
    text: str
    samples: Samples
    round_results: list[CheckResult]
    backup_at: datetime
    fan_sensor: int


def _settings(tmp: Path) -> Settings:
    for name in ("docs", "archive"):
        (tmp / name).mkdir()
        for i in range(3):
            (tmp / name / f"page-{i}.txt").write_text(f"{name} {i}\n" * 50)
    checks = [
        {"check": "database"},
        {"check": "backup", "target": "docs"},
        {"check": "backup_never", "target": "archive"},
        {"check": "backup_drill", "target": "docs"},
        {"check": "freshness", "target": "hall-a-hvac"},  # a site's asset without sensors: unknown
    ]
    return Settings(
        data_dir=tmp,
        health={"default_checks": False, "checks": checks, "enabled": False},
        backup={
            "schedule": False,
            "include_pitstop_db": False,
            "rto_minutes": 90,
            "sources": {
                "docs": {"kind": "files", "path": str(tmp / "docs")},
                "archive": {"kind": "files", "path": str(tmp / "archive")},
            },
        },
        models={"twins": {MODEL: {"drift_exclude": ["AMBT"]}}, "schedule": False},
    )


def _install(db: Database, tmp: Path) -> Iterator[Installation]:
    clock = FrozenClock(START)
    pitstop = build(_settings(tmp), clock=clock, db=db)
    _, operator = demo.prepare(pitstop)
    demo.simulate(pitstop)
    assert demo.train_models(pitstop, trees=10)[0].startswith(f"{MODEL} v1 (champion")
    assert (MODEL, 1) in pitstop.drift_reports.refresh()

    docs = pitstop.backup.sources()["docs"]
    backup_at = clock.now()
    pitstop.backup.run(only={"docs": docs})  # archive: never backed up
    incidents = pitstop.incidents
    incidents.open_or_update("disk.low:/var/lib/vms", severity=Severity.WARNING, title="disk")
    incidents.open_or_update("asset.anomaly:ahu-1", severity=Severity.CRITICAL, title="anomaly")
    incidents.acknowledge("asset.anomaly:ahu-1", actor="test")
    incidents.open_or_update("camera.down:cam-1", severity=Severity.EMERGENCY, title="camera")
    incidents.suppress("camera.down:cam-1", reason="replaced", actor="test")
    incidents.open_or_update("link.down:plc-1", severity=Severity.CRITICAL, title="plc")
    incidents.resolve("link.down:plc-1", reason="back", actor="test")  # resolved: not counted

    clock.advance(timedelta(hours=2))
    round_results = pitstop.health.run_round().results  # backup_drill: no drill yet, a warning
    pitstop.backup.drill()

    fan = next(s for s in pitstop.assets.sensors("fan-1") if s.name == "vib_rms")
    with TestClient(create_app(pitstop)) as client:
        at = (clock.now() - timedelta(seconds=7)).isoformat()
        good = [{"ts": at, "asset": "fan-1", "sensor": "vib_rms", "value": 3.0}]
        assert client.post("/api/readings", json=good, headers=auth(operator)).json()["stored"] == 1
        bad = [
            {"ts": at, "asset": "fan-1", "sensor": "no-such-sensor", "value": 1.0},
            {"ts": at, "asset": "fan-1", "sensor": "vib_rms", "value": 1e9},  # past its max of 100
            {"ts": at, "asset": "fan-1", "sensor": "vib_crest", "value": 5000.0},
        ]
        assert client.post("/api/readings", json=bad, headers=auth(operator)).status_code == 422
        text, samples = scrape(client)
        yield Installation(pitstop, clock, client, text, samples, round_results, backup_at, fan.id)
    pitstop.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def installation(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    tmp = tmp_path_factory.mktemp(f"kpis-{request.param}")
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp / 'pitstop.db'}")
        yield from _install(db, tmp)
        db.dispose()
        return
    with scratch_postgres_database() as url:
        db = Database(url)
        yield from _install(db, tmp)
        db.dispose()


# -- each family against its records -------------------------------------------------------------


def test_check_status_per_target_is_the_latest_result(installation: Installation) -> None:
    got = series(installation.samples, "pitstop_check_status", "check", "target")
    assert got == {(r.check, r.target): STATUS_VALUE[r.status] for r in installation.round_results}
    assert got[("backup", "docs")] == 0  # backed up 2 h ago, every 24 h
    assert got[("backup_drill", "docs")] == 1  # the round ran before the drill: no drill yet
    assert got[("backup_never", "archive")] == 2
    assert got[("freshness", "hall-a-hvac")] == 3
    assert got[("database", "pitstop")] in (0, 1)  # healthy, or slow on a busy machine


def test_open_incidents_count_by_severity_area_and_state(installation: Installation) -> None:
    got = series(installation.samples, "pitstop_incidents_open", "severity", "area", "state")
    active = installation.pitstop.incidents.list(state=[s for s in IncidentState if s.active], limit=1000)
    assert got == Counter((i.severity.value, i.area, i.state.value) for i in active)
    assert {
        ("warning", "disk", "open"): 1,
        ("critical", "asset", "acknowledged"): 1,
        ("emergency", "camera", "suppressed"): 1,
        ("critical", "backup", "open"): 1,  # backup.never:archive, from the health round
        ("warning", "backup", "open"): 1,  # backup.drill:docs
    }.items() <= got.items()
    assert not [k for k in got if k[1] == "link"]  # resolved: not counted


def test_the_champion_version_and_the_psi_of_its_drift_report(installation: Installation) -> None:
    samples = installation.samples
    assert series(samples, "pitstop_model_champion_version", "model") == {MODEL: 1}
    stored = installation.pitstop.drift_reports.stored(MODEL, 1)
    assert stored is not None and stored["report"] is not None
    features = {f["feature"]: f for f in stored["report"]["features"]}
    assert len(features) >= 5 and "AMBT" in features
    psi = series(samples, "pitstop_model_psi", "model", "feature")
    assert psi == {(MODEL, name): pytest.approx(f["psi"]) for name, f in features.items()}
    excess = series(samples, "pitstop_model_psi_excess", "model", "feature")
    assert features["AMBT"]["excluded"] and (MODEL, "AMBT") not in excess  # drift_exclude: not in the verdict
    assert excess == {(MODEL, n): pytest.approx(f["excess_psi"]) for n, f in features.items() if n != "AMBT"}
    assert any(f["psi"] != f["excess_psi"] for f in features.values())  # two different measures


def test_backup_age_per_source_and_the_last_drill(installation: Installation) -> None:
    samples = installation.samples
    ages = series(samples, "pitstop_backup_age_seconds", "source")
    assert ages == {"docs": (installation.clock.now() - installation.backup_at).total_seconds(), "archive": math.inf}
    assert ages["docs"] == 7200
    drill = installation.pitstop.backup.records.last("drill")
    assert drill is not None and drill.outcome == "ok"
    assert series(samples, "pitstop_backup_drill_rto_seconds") == {(): pytest.approx(drill.seconds)}
    assert 0 < drill.seconds < 60
    assert series(samples, "pitstop_backup_rto_objective_seconds") == {(): 5400}
    assert series(samples, "pitstop_backup_drill_passed") == {(): 1}


def test_ingest_lag_per_asset_and_the_quarantine(installation: Installation) -> None:
    pitstop = installation.pitstop
    lag = series(installation.samples, "pitstop_ingest_lag_seconds", "asset")
    # the oracle: the newest reading per sensor, a GROUP BY over the readings
    newest = pitstop.readings.latest()
    now_us = installation.clock.now().timestamp() * 1e6
    expected: dict[str, float] = {}
    for s in pitstop.assets.sensors():
        if s.id in newest:
            expected[s.asset] = min(expected.get(s.asset, math.inf), (now_us - newest[s.id]) / 1e6)
    assert lag == pytest.approx(expected)
    assert lag["fan-1"] == 7  # the reading pushed through the API 7 s ago
    assert "hall-a-hvac" not in lag  # no sensors, no readings: no series
    assert set(lag) == {"ahu-1", "ahu-2", "pump-1", "fan-1", "vms-server"}

    rows = series(installation.samples, "pitstop_quarantine_rows", "reason")
    assert rows["unknown_sensor"] == 1 and rows["out_of_range"] == 2
    assert {r for r, n in rows.items() if n == 0} >= {"malformed", "bad_timestamp", "conflict"}  # zeros shown
    counted = series(installation.samples, "pitstop_readings_quarantined_total", "source", "reason")
    assert counted == {("http", "unknown_sensor"): 1, ("http", "out_of_range"): 2}


def test_every_part_was_read_and_timed(installation: Installation) -> None:
    parts = {"checks", "incidents", "models", "backups", "drills", "ingest", "quarantine"}
    assert series(installation.samples, "pitstop_kpi_read_ok", "part") == dict.fromkeys(parts, 1)
    seconds = series(installation.samples, "pitstop_kpi_read_seconds", "part")
    assert set(seconds) == parts and all(0 < v < 5 for v in seconds.values())


def test_promtool_accepts_the_scrape(installation: Installation) -> None:
    result = run_promtool("check", "metrics", stdin=installation.text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_kpi_family_is_in_the_scrape(installation: Installation) -> None:
    assert set(FAMILIES) <= set(installation.samples)


# -- the dashboard ---------------------------------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names or values."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values, regular expressions
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors ($__rate_interval)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w$.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if match.group(0) in PROMQL_WORDS or expr[match.end() :].lstrip().startswith("("):
            continue
        names.add(match.group(0))
    return names


def test_metric_names_are_read_out_of_promql() -> None:
    expr = 'sum by (source, reason) (rate(pitstop_x_total{a=~"$x", b="c{d}"}[$__rate_interval])) or vector(0)'
    assert metric_names(expr) == {"pitstop_x_total"}
    assert metric_names("a > on(instance) group_left(x) b * 36e3") == {"a", "b"}
    assert metric_names("max(pitstop_y) by (check)") == {"pitstop_y"}


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["definition"])
            assert match, variable["definition"]
            queries.append((f"variable {variable['name']}", match[1]))
    return queries


def test_every_dashboard_query_reads_families_pitstop_exports(installation: Installation) -> None:
    exported = set(installation.samples)
    shown: set[str] = set()
    for title, expr in _dashboard_queries():
        names = metric_names(expr)
        assert names, f"panel {title!r}: {expr} reads no metric"
        assert names <= exported, f"panel {title!r} reads {sorted(names - exported)}, which /metrics does not have"
        shown |= names
    missing = {f for f in FAMILIES if f not in shown}
    assert not missing, f"KPI families on no panel: {sorted(missing)}"


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses them as recording rules, with Grafana's variables filled in."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$instance", ".*").replace("$__rate_interval", "5m")}
        for i, (_, expr) in enumerate(_dashboard_queries())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # YAML reads JSON
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# -- the alert rules -------------------------------------------------------------------------------


def test_promtool_accepts_the_alert_rules() -> None:
    result = run_promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


P = 'instance="pitstop:8000", job="pitstop"'
L = {"instance": "pitstop:8000", "job": "pitstop"}
NEVER = " ".join(["Inf"] * 21)  # a source never backed up, 20 minutes long (promtool has no "Infx20")


def _alert(at: str, name: str, *expected: tuple[dict[str, str], dict[str, str]]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [{"exp_labels": {**L, **labels}, "exp_annotations": notes} for labels, notes in expected],
    }


def test_the_alert_rules_fire_as_the_guides_say(tmp_path: Path) -> None:
    """`promtool test rules`: each alert fires on its KPI after its `for`, and not before or
    on what stays short of it."""
    check = "pitstop check disk on /var has been critical for 5 minutes"
    check_notes = {
        "summary": check,
        "description": "See `pitstop check --json` or the checks page for the check's summary.",
    }
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'pitstop_check_status{{check="disk", target="/var", {P}}}', "values": "2x10"},
                    # critical every other minute: never 5 minutes in a row
                    {
                        "series": f'pitstop_check_status{{check="cpu", target="localhost", {P}}}',
                        "values": "0 2 0 2 0 2 0 2 0 2 0",
                    },
                    {"series": f'pitstop_backup_age_seconds{{source="docs", {P}}}', "values": "120000+120x20"},
                    {"series": f'pitstop_backup_age_seconds{{source="archive", {P}}}', "values": NEVER},
                    {"series": f"pitstop_backup_drill_rto_seconds{{{P}}}", "values": "5000 6000"},
                    {"series": f"pitstop_backup_rto_objective_seconds{{{P}}}", "values": "5400 5400"},
                    {"series": f'pitstop_model_psi_excess{{model="twin", feature="UCWF", {P}}}', "values": "0.25x20"},
                    {"series": f'pitstop_model_psi_excess{{model="twin", feature="AMBT", {P}}}', "values": "0.15x20"},
                    {
                        "series": f'pitstop_incidents_open{{severity="critical", area="asset", state="open", {P}}}',
                        "values": "1x20",
                    },
                    {
                        "series": 'pitstop_incidents_open{severity="critical", area="disk", '
                        f'state="acknowledged", {P}}}',
                        "values": "1x20",
                    },
                    {"series": f'pitstop_ingest_lag_seconds{{asset="fan-1", {P}}}', "values": "800+60x10"},
                ],
                "alert_rule_test": [
                    _alert("4m", "PitstopCheckCritical"),
                    _alert(
                        "5m",
                        "PitstopCheckCritical",
                        ({"severity": "critical", "check": "disk", "target": "/var"}, check_notes),
                    ),
                    _alert(
                        "9m",
                        "PitstopCheckCritical",
                        ({"severity": "critical", "check": "disk", "target": "/var"}, check_notes),
                    ),
                    # docs crosses 36 h (129,600 s) at 80 min; archive has no good copy at all
                    _alert(
                        "10m",
                        "PitstopBackupTooOld",
                        (
                            {"severity": "warning", "source": "archive"},
                            {"summary": "the newest good backup of archive is older than 36 h"},
                        ),
                    ),
                    _alert("0m", "PitstopBackupDrillOverRto"),
                    _alert(
                        "1m",
                        "PitstopBackupDrillOverRto",
                        (
                            {"severity": "warning"},
                            {
                                "summary": "the last passed restore drill took 1h 40m 0s, "
                                "over the recovery time objective"
                            },
                        ),
                    ),
                    _alert("14m", "PitstopModelDrift"),
                    _alert(
                        "15m",
                        "PitstopModelDrift",
                        (
                            {"severity": "warning", "model": "twin", "feature": "UCWF"},
                            {"summary": "input UCWF of model twin drifted: PSI 0.25 past the noise"},
                        ),
                    ),
                    _alert(
                        "15m",
                        "PitstopCriticalIncidentOpen",
                        (
                            {"severity": "critical", "area": "asset", "instance": "pitstop:8000"},
                            {"summary": "1 critical asset incident(s) open and unacknowledged for 15 minutes"},
                        ),
                    ),
                    # 800 s, past 900 s at 2 min, firing 5 min later
                    _alert("6m", "PitstopIngestLag"),
                    _alert(
                        "7m",
                        "PitstopIngestLag",
                        ({"severity": "warning", "asset": "fan-1"}, {"summary": "no reading from fan-1 for 20m 20s"}),
                    ),
                ],
            }
        ],
    }
    for case in tests["tests"][0]["alert_rule_test"]:  # type: ignore[index]
        if case["alertname"] == "PitstopCriticalIncidentOpen":  # aggregated: only the labels it keeps
            for alert in case["exp_alerts"]:
                alert["exp_labels"].pop("job")
    path = tmp_path / "pitstop-rules.test.yml"
    path.write_text(json.dumps(tests))
    result = run_promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# -- reading: staleness, caching, hostile labels, the database away ----------------------------------


def _small(tmp_path: Path, db: Database, clock: FrozenClock, **health: Any) -> Pitstop:
    checks = [{"check": "database"}, {"check": "heartbeat"}]
    settings = Settings(
        data_dir=tmp_path,
        health={"default_checks": False, "checks": checks, "enabled": False, **health},
        backup={"schedule": False},
    )
    return build(settings, clock=clock, db=db)


def _collector(pitstop: Pitstop) -> KpiCollector:
    (found,) = [c for c in pitstop.metrics.registry._collector_to_names if isinstance(c, KpiCollector)]
    return found


def test_a_result_older_than_three_intervals_or_none_at_all_is_unknown(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(START)
    pitstop = _small(tmp_path, db, clock, interval_s=60)
    with TestClient(create_app(pitstop)) as client:
        statuses = series(scrape(client)[1], "pitstop_check_status", "check", "target")
        assert statuses == {("database", "pitstop"): 3, ("heartbeat", "heartbeat"): 3}  # configured, never run

        results = {(r.check, r.target): r for r in pitstop.health.run_round().results}
        assert results[("heartbeat", "heartbeat")].status is Status.CRITICAL  # no scheduler ran the heartbeat
        clock.advance(175)  # and past the cache of 5 s
        statuses = series(scrape(client)[1], "pitstop_check_status", "check", "target")
        assert statuses == {k: STATUS_VALUE[r.status] for k, r in results.items()}
        assert statuses[("heartbeat", "heartbeat")] == 2

        clock.advance(6)  # 181 s: more than 3 intervals
        statuses = series(scrape(client)[1], "pitstop_check_status", "check", "target")
        assert statuses == {("database", "pitstop"): 3, ("heartbeat", "heartbeat"): 3}
    pitstop.close()


def test_a_scrape_is_reused_for_five_seconds_and_backup_copies_for_a_minute(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    clock = FrozenClock(START)
    pitstop = _small(tmp_path, db, clock)
    with TestClient(create_app(pitstop)) as client:
        assert series(scrape(client)[1], "pitstop_backup_age_seconds", "source") == {"pitstop-db": math.inf}
        assert "pitstop_incidents_open" not in scrape(client)[1]

        pitstop.incidents.open_or_update("disk.low:/", severity=Severity.WARNING, title="disk")
        backup_at = clock.now()
        pitstop.backup.run()
        clock.advance(4.9)
        samples = scrape(client)[1]
        assert "pitstop_incidents_open" not in samples  # the scrape of 4.9 s ago
        clock.advance(0.1)
        samples = scrape(client)[1]
        assert series(samples, "pitstop_incidents_open", "severity", "area", "state") == {
            ("warning", "disk", "open"): 1
        }
        assert series(samples, "pitstop_backup_age_seconds", "source") == {"pitstop-db": math.inf}  # copies: a minute

        clock.advance(60)
        ages = series(scrape(client)[1], "pitstop_backup_age_seconds", "source")
        assert ages == {"pitstop-db": (clock.now() - backup_at).total_seconds()}
        clock.advance(30)  # the copy is kept, its age is not
        ages = series(scrape(client)[1], "pitstop_backup_age_seconds", "source")
        assert ages == {"pitstop-db": (clock.now() - backup_at).total_seconds()} == {"pitstop-db": 95}
    pitstop.close()


def test_hostile_label_values_survive_the_exposition_format(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    clock = FrozenClock(START)
    pitstop = _small(tmp_path, db, clock)
    target = 'C:\\plant "A"\nline two {x="y"} ✓'
    pitstop.health.results.save(
        [CheckResult(check="http", target=target, status=Status.WARNING, summary="slow", checked_at=clock.now())]
    )
    pitstop.incidents.open_or_update('http.failing:a"b\\c', severity=Severity.CRITICAL, title="x")
    with TestClient(create_app(pitstop)) as client:
        text, samples = scrape(client)
    assert series(samples, "pitstop_check_status", "check", "target")[("http", target)] == 1
    assert series(samples, "pitstop_incidents_open", "severity", "area", "state") == {("critical", "http", "open"): 1}
    result = run_promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    pitstop.close()


def test_with_the_database_away_the_parts_say_so_and_the_rest_still_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    clock = FrozenClock(START)
    pitstop = _small(tmp_path, db, clock)
    collector = _collector(pitstop)
    collector.expected_checks = list  # the inventory is in the database too; this part is about the results
    (tmp_path / "pitstop.db").unlink()
    (tmp_path / "pitstop.db").mkdir()  # not a database file any more: every query fails
    pitstop.db.dispose()
    with TestClient(create_app(pitstop)) as client:
        _, samples = scrape(client)
        clock.advance(5)
        scrape(client)
    ok = series(samples, "pitstop_kpi_read_ok", "part")
    assert ok == {
        "checks": 0,
        "incidents": 0,
        "models": 0,
        "backups": 0,
        "drills": 0,
        "ingest": 0,
        "quarantine": 0,
    }
    assert not {"pitstop_check_status", "pitstop_incidents_open", "pitstop_backup_age_seconds"} & set(samples)
    assert "pitstop_mqtt_connected" in samples  # pitstop's own series are still there
    warnings = [r for r in caplog.records if "could not be read for /metrics" in r.getMessage()]
    assert len(warnings) == 7  # once per part, not once per scrape
    pitstop.close()


def test_a_drift_report_that_holds_an_error_gives_no_psi() -> None:
    assert _features(json.dumps({"report": None, "error": "no readings in the last 7 days", "days": 7})) == []
    assert _features(json.dumps({"report": {"features": [{"feature": "a", "psi": 0.1, "excess_psi": 0.0}, 3]}})) == [
        {"feature": "a", "psi": 0.1, "excess_psi": 0.0}
    ]


def test_the_newest_drill_failing_keeps_the_rto_of_the_last_passed_one(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    clock = FrozenClock(START)
    pitstop = _small(tmp_path, db, clock)
    records = pitstop.backup.records
    records.add("drill", set_id="s1", started_at=clock.now(), finished_at=clock.now(), ok=True, seconds=42.5)
    clock.advance(60)
    records.add("drill", set_id="s2", started_at=clock.now(), finished_at=clock.now(), ok=False, seconds=0.3)
    with TestClient(create_app(pitstop)) as client:
        samples = scrape(client)[1]
    assert series(samples, "pitstop_backup_drill_rto_seconds") == {(): 42.5}
    assert series(samples, "pitstop_backup_drill_passed") == {(): 0}
    assert series(samples, "pitstop_backup_rto_objective_seconds") == {(): 7200}
    pitstop.close()


def test_the_ci_installs_promtool() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"command -v promtool.*\n\s*apt_install prometheus ", ci)
