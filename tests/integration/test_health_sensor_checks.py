"""The `limits` and `frozen` checks on readings stored in SQLite and PostgreSQL, the sensors'
alarm column (migration, repository, API, inventory round trip), and the incidents they open:
one per sensor (`sensor.limit:<asset>/<sensor>`), so a new breach reaches a person while another
sensor of the same asset is still in breach."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text

from pitstop import inventory
from pitstop.api import create_app
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.config.health import CheckSettings, HealthSettings
from pitstop.core.types import Role, Severity, Status, to_epoch_us
from pitstop.errors import ConfigError
from pitstop.health.base import CheckResult
from pitstop.health.runner import CheckRunner
from pitstop.health.specs import DEFAULT_CHECKS, CheckSpec, resolve
from pitstop.storage import Database
from pitstop.storage.repos.assets import AlarmLimits
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.storage.schema import sensors
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY, auth

PLANT = """\
[[sites]]
name = "north-plant"

[[assets]]
name = "vms-server"
site = "north-plant"
type = "monitoring-server"
sensors = [
  { name = "camera_latency_ms", unit = "ms", period_s = 30, alarm = {above = 500, critical_above = 2000, for_s = 300} },
  { name = "disk_free_pct", unit = "%", max = 100, period_s = 60, alarm = { below = 15, critical_below = 10 } },
  { name = "plc_link_up", unit = "", min = 0, max = 1, period_s = 30, alarm = { critical_below = 1, for_s = 30 } },
  { name = "cpu_pct", unit = "%", min = 0, max = 100, period_s = 30 },
]

[[assets]]
name = "ahu-1"
site = "north-plant"
type = "hvac"
sensors = [
  { name = "UCAOT", unit = "degC", min = -10, max = 60, period_s = 60 },
  { name = "UCTSP", unit = "degC", min = 10, max = 30, period_s = 60 },
]
"""


def load(pitstop: Pitstop, text_: str = PLANT) -> inventory.LoadSummary:
    spec = inventory.parse(text_, "plant.toml", "toml")
    return inventory.apply(pitstop.db, spec, actor="test", now=pitstop.clock.now())


@pytest.fixture
def plant(pitstop: Pitstop) -> Pitstop:
    load(pitstop)
    return pitstop


def sensor_id(pitstop: Pitstop, asset: str, name: str) -> int:
    return pitstop.assets.sensor_index()[(asset, name)].id


def write(pitstop: Pitstop, asset: str, name: str, values: Sequence[float], *, period_s: float) -> None:
    """`values` one sampling period apart, the last one at the clock's now."""
    now = to_epoch_us(pitstop.clock.now())
    step = int(period_s * 1e6)
    ts = [now - step * (len(values) - 1 - i) for i in range(len(values))]
    sid = sensor_id(pitstop, asset, name)
    pitstop.readings.write(ReadingBatch.of([sid] * len(values), ts, list(values)))


def run(pitstop: Pitstop, check: str, target: str, **params: Any) -> CheckResult:
    (result,) = CheckRunner([CheckSpec(check, target, params=params)], workers=1).run(pitstop.health.context)
    return result


# -- storage: the alarm column ------------------------------------------------------------------


def test_limits_are_stored_with_the_sensor_and_reloading_changes_nothing(plant: Pitstop) -> None:
    by_name = {s.name: s for s in plant.assets.sensors("vms-server")}
    assert by_name["camera_latency_ms"].alarm == AlarmLimits(above=500, critical_above=2000, for_s=300)
    assert by_name["disk_free_pct"].alarm == AlarmLimits(below=15, critical_below=10)
    assert by_name["cpu_pct"].alarm is None
    again = load(plant)
    assert not again.changed and again.unchanged == 9  # 1 site, 2 assets, 6 sensors
    changed = load(plant, PLANT.replace("above = 500,", "above = 800,"))
    assert changed.changes == ["updated sensor vms-server/camera_latency_ms"]
    assert plant.assets.sensor_index()[("vms-server", "camera_latency_ms")].alarm == AlarmLimits(
        above=800, critical_above=2000, for_s=300
    )
    removed = load(
        plant, PLANT.replace("above = 500,", "above = 800,").replace(", alarm = { critical_below = 1, for_s = 30 }", "")
    )
    assert removed.changes == ["updated sensor vms-server/plc_link_up"]
    assert plant.assets.sensor_index()[("vms-server", "plc_link_up")].alarm is None


def test_the_api_shows_and_takes_limits(plant: Pitstop) -> None:
    token = plant.keys.create("t-admin", Role.ADMIN, plant.clock.now())[1]
    with TestClient(create_app(plant)) as client:
        body = client.get("/api/assets/vms-server", headers=auth(token)).json()
        by_name = {s["name"]: s for s in body["sensors"]}
        assert by_name["disk_free_pct"]["alarm"] == {
            "above": None,
            "critical_above": None,
            "below": 15.0,
            "critical_below": 10.0,
            "for_s": None,
        }
        assert by_name["cpu_pct"]["alarm"] is None
        bad = {
            "sites": [],
            "assets": [
                {
                    "name": "p9",
                    "site": "north-plant",
                    "type": "pump",
                    "sensors": [{"name": "rms", "period_s": 1, "alarm": {"above": 5, "critical_above": 2}}],
                }
            ],
        }
        refused = client.post("/api/inventory", json=bad, headers=auth(token))
        assert refused.status_code == 422 and "critical_above (2) must not be under above (5)" in refused.text
        good = {**bad, "assets": [{**bad["assets"][0], "sensors": [{"name": "rms", "alarm": {"above": 5}}]}]}
        assert client.post("/api/inventory", json=good, headers=auth(token)).status_code == 200
    assert plant.assets.sensor_index()[("p9", "rms")].alarm == AlarmLimits(above=5)


def test_the_migration_adds_and_drops_the_alarm_column(db: Database, clock: FrozenClock, tmp_path: Path) -> None:
    pitstop = build(Settings(data_dir=tmp_path), clock=clock, db=db)
    load(pitstop)
    assert "0016" in db.current_revisions()
    with db.connect() as conn:
        cfg = db._alembic_config(conn)
        command.downgrade(cfg, "sensor_alarms@-1")
        conn.commit()
    assert "0016" not in db.current_revisions()
    with db.connect() as conn:
        assert "alarm" not in {c["name"] for c in inspect(conn).get_columns("sensors")}
        assert conn.execute(text("SELECT COUNT(*) FROM sensors")).scalar_one() == 6  # the sensors stay
    db.upgrade()
    assert db.is_current()
    with db.connect() as conn:
        assert list(conn.execute(select(sensors.c.alarm).distinct())) == [(None,)]  # limits come with a reload
    assert load(pitstop).changes == [
        "updated sensor vms-server/camera_latency_ms",
        "updated sensor vms-server/disk_free_pct",
        "updated sensor vms-server/plc_link_up",
    ]


# -- the limits check ---------------------------------------------------------------------------


def test_limits_ok_warning_and_critical_on_stored_readings(plant: Pitstop, clock: FrozenClock) -> None:
    write(plant, "vms-server", "camera_latency_ms", [90, 95, 100, 92, 88, 91, 97, 99, 93, 94], period_s=30)
    write(plant, "vms-server", "disk_free_pct", [33.0] * 5, period_s=60)
    write(plant, "vms-server", "plc_link_up", [1.0] * 3, period_s=30)
    ok = run(plant, "limits", "vms-server")
    assert ok.status is Status.HEALTHY and ok.incident_key == "sensor.limit:vms-server"
    assert ok.observed["breaches"] == 0 and ok.observed["judged"] == 3
    assert ok.observed["median.camera_latency_ms"] == 93.5
    assert ok.summary == "vms-server: 3 of 3 sensors with limits inside them"

    clock.advance(300)
    write(plant, "vms-server", "camera_latency_ms", [700, 812, 790, 812, 900, 812, 820, 805, 812, 830], period_s=30)
    write(plant, "vms-server", "disk_free_pct", [33.0] * 5, period_s=60)
    write(plant, "vms-server", "plc_link_up", [1.0] * 10, period_s=30)
    warning = run(plant, "limits", "vms-server")
    assert warning.status is Status.WARNING and warning.observed["breaches"] == 1
    assert warning.summary == "vms-server: camera_latency_ms median 812 ms above 500 ms for 5 min"
    one = run(plant, "limits", "vms-server/camera_latency_ms")  # the health loop's target: one sensor
    assert one.status is Status.WARNING and one.incident_key == "sensor.limit:vms-server/camera_latency_ms"
    assert one.summary == "vms-server/camera_latency_ms: median 812 ms above 500 ms for 5 min"
    assert one.observed == {"median": 812, "breaches": 1, "critical": 0, "judged": 1, "unjudged": 0}
    disk = run(plant, "limits", "vms-server/disk_free_pct")
    assert disk.status is Status.HEALTHY and disk.summary == "vms-server/disk_free_pct: median 33 % inside its limits"

    clock.advance(300)
    write(plant, "vms-server", "camera_latency_ms", [812] * 10, period_s=30)
    write(plant, "vms-server", "disk_free_pct", [14.0, 13.0, 9.5, 9.0, 9.2], period_s=60)
    write(plant, "vms-server", "plc_link_up", [1.0] * 9 + [0.0], period_s=30)
    critical = run(plant, "limits", "vms-server")
    assert critical.status is Status.CRITICAL
    assert (critical.observed["breaches"], critical.observed["critical"]) == (3, 2)
    assert "disk_free_pct median 9.5 % below 10 % for 5 min" in critical.summary
    assert "plc_link_up median 0 below 1 for 30 s" in critical.summary
    assert "camera_latency_ms median 812 ms above 500 ms" in critical.summary


def test_one_spike_does_not_breach_but_a_held_rise_does(plant: Pitstop, clock: FrozenClock) -> None:
    write(plant, "vms-server", "disk_free_pct", [40.0] * 20, period_s=60)
    write(plant, "vms-server", "plc_link_up", [1.0] * 40, period_s=30)
    write(plant, "vms-server", "camera_latency_ms", [90] * 9 + [2500], period_s=30)  # the newest reading spikes
    spike = run(plant, "limits", "vms-server")
    assert spike.status is Status.HEALTHY and spike.observed["median.camera_latency_ms"] == 90
    clock.advance(150)  # five more readings, all high: the median of the last 5 min crosses
    write(plant, "vms-server", "camera_latency_ms", [2600] * 5, period_s=30)
    assert run(plant, "limits", "vms-server").status is Status.CRITICAL
    clock.advance(300)  # readings older than for_s no longer count
    write(plant, "vms-server", "camera_latency_ms", [100] * 10, period_s=30)
    assert run(plant, "limits", "vms-server").observed["median.camera_latency_ms"] == 100


def test_assets_without_limits_are_quiet_and_silent_sensors_are_unknown(plant: Pitstop, clock: FrozenClock) -> None:
    write(plant, "ahu-1", "UCAOT", [20.0] * 5, period_s=60)
    quiet = run(plant, "limits", "ahu-1")
    assert quiet.status is Status.HEALTHY and quiet.summary == "ahu-1: no limits set"
    write(plant, "vms-server", "camera_latency_ms", [100] * 10, period_s=30)
    partly = run(plant, "limits", "vms-server")  # disk and PLC link sent nothing: not judged, not healthy
    assert partly.status is Status.UNKNOWN and partly.observed["unjudged"] == 2
    assert "no reading in 3 periods: disk_free_pct, plc_link_up" in partly.summary
    silent = run(plant, "limits", "vms-server/disk_free_pct")
    assert (
        silent.status is Status.UNKNOWN
        and silent.summary == "vms-server/disk_free_pct: no reading in 3 periods, not judged"
    )
    assert run(plant, "limits", "vms-server/cpu_pct").summary == "vms-server/cpu_pct: no limits set"
    write(plant, "vms-server", "disk_free_pct", [5.0] * 5, period_s=60)
    assert run(plant, "limits", "vms-server").status is Status.CRITICAL  # a breach outranks unknown


# -- the frozen check ---------------------------------------------------------------------------


def moving(n: int, start: float = 20.0) -> list[float]:
    return [round(start + 0.1 * ((i * 7) % 13), 2) for i in range(n)]


def test_a_moving_sensor_that_flat_lines_is_frozen(plant: Pitstop, clock: FrozenClock) -> None:
    write(plant, "ahu-1", "UCAOT", moving(600), period_s=60)
    assert run(plant, "frozen", "ahu-1").status is Status.HEALTHY
    clock.advance(29 * 60)
    write(plant, "ahu-1", "UCAOT", [21.3] * 29, period_s=60)  # 29 equal readings: not yet
    assert run(plant, "frozen", "ahu-1").observed["frozen"] == 0
    clock.advance(60)
    write(plant, "ahu-1", "UCAOT", [21.3], period_s=60)
    frozen = run(plant, "frozen", "ahu-1")
    assert frozen.status is Status.WARNING and frozen.incident_key == "sensor.frozen:ahu-1"
    assert "UCAOT held at 21.3 degC for the last 30 readings (30 min)" in frozen.summary
    one = run(plant, "frozen", "ahu-1/UCAOT")
    assert one.status is Status.WARNING and one.incident_key == "sensor.frozen:ahu-1/UCAOT"
    assert one.summary.startswith("ahu-1/UCAOT: held at 21.3 degC for the last 30 readings (30 min)")
    assert run(plant, "frozen", "ahu-1/UCTSP").summary == "ahu-1/UCTSP: 0 of 30 readings, not judged yet"
    clock.advance(3 * 3600)  # still reported hours later (the flat run is not its own history)
    write(plant, "ahu-1", "UCAOT", [21.3] * 180, period_s=60)
    assert run(plant, "frozen", "ahu-1").status is Status.WARNING
    clock.advance(60)
    write(plant, "ahu-1", "UCAOT", [21.4], period_s=60)
    assert run(plant, "frozen", "ahu-1").status is Status.HEALTHY
    assert run(plant, "frozen", "ahu-1/UCAOT").summary == "ahu-1/UCAOT: not frozen"
    assert run(plant, "frozen", "ahu-1", periods=10, min_distinct=20).status is Status.HEALTHY  # too few values


def test_sensors_constant_by_nature_never_trip_it(plant: Pitstop, clock: FrozenClock) -> None:
    # A set-point: day and night levels and two operator changes, each held for hours: enough
    # distinct values, but it has held one for 30 readings before, so its flat run is its nature.
    write(plant, "ahu-1", "UCTSP", [15.0] * 300 + [17.0] * 480 + [16.0] * 300 + [15.5] * 120, period_s=60)
    # A link state that dropped once, and a sensor that has always read the same.
    write(plant, "vms-server", "plc_link_up", [1.0] * 1000 + [0.0] * 20 + [1.0] * 1000, period_s=30)
    write(plant, "vms-server", "cpu_pct", [0.0] * 500, period_s=30)
    assert run(plant, "frozen", "ahu-1").observed == {"frozen": 0, "judged": 1}
    assert run(plant, "frozen", "vms-server").observed == {"frozen": 0, "judged": 2}
    assert run(plant, "frozen", "north-plant-nothing").summary == "north-plant-nothing: no sensors"


def test_frozen_parameters_are_checked() -> None:
    from pitstop.errors import ConfigError

    for bad in ({"periods": 1}, {"periods": "30"}, {"min_distinct": True}, {"lookback_s": 0}, {"window": 3}):
        with pytest.raises(ConfigError, match="frozen check"):
            CheckRunner([CheckSpec("frozen", "ahu-1", params=bad)])


# -- through the health loop --------------------------------------------------------------------


def feed(pitstop: Pitstop, *, latency: float, disk: float, link: float) -> None:
    """One alarm window (5 min) of the monitoring server's limited sensors, up to now."""
    write(pitstop, "vms-server", "camera_latency_ms", [latency] * 10, period_s=30)
    write(pitstop, "vms-server", "disk_free_pct", [disk] * 5, period_s=60)
    write(pitstop, "vms-server", "plc_link_up", [link] * 10, period_s=30)


def sensor_keys(pitstop: Pitstop) -> set[str]:
    return {i.key for i in pitstop.incidents.list(area="sensor")}


def test_each_breaching_sensor_opens_notifies_and_resolves_its_own_incident(plant: Pitstop, clock: FrozenClock) -> None:
    assert {"limits", "frozen"} <= set(DEFAULT_CHECKS)
    specs = {(s.check, s.target): s for s in plant.health.specs()}
    assert sorted(t for c, t in specs if c == "limits") == [
        "vms-server/camera_latency_ms",
        "vms-server/disk_free_pct",
        "vms-server/plc_link_up",
    ]
    assert len([t for c, t in specs if c == "frozen"]) == 6 and ("frozen", "ahu-1/UCAOT") in specs
    disk_spec = specs[("limits", "vms-server/disk_free_pct")]
    assert (disk_spec.asset, disk_spec.site) == ("vms-server", "north-plant")
    assert disk_spec.alert_labels()["asset"] == "vms-server" and disk_spec.alert_labels()["scope"] == "asset"
    disk, camera, link = (f"sensor.limit:vms-server/{n}" for n in ("disk_free_pct", "camera_latency_ms", "plc_link_up"))

    def fired(round_: Any) -> set[str]:
        """What the alert service sent as firing after this round (the clock stands still in it)."""
        plant.feed.deliver()
        records = plant.alerts.router.recent(1000)
        return {r.alert_key for r in records if r.event == "firing" and r.outcome == "sent" and r.at == clock.now()}

    feed(plant, latency=100, disk=40, link=1)
    plant.health.run_round()
    assert not plant.incidents.active(disk) and not sensor_keys(plant)

    clock.advance(300)  # the disk fills and stays full
    feed(plant, latency=100, disk=9, link=1)
    first = plant.health.run_round()
    opened = plant.incidents.active(disk)
    assert opened is not None and opened.severity is Severity.CRITICAL
    assert opened.detail == "vms-server/disk_free_pct: median 9 % below 10 % for 5 min"
    assert fired(first) & sensor_keys(plant) == {disk}

    clock.advance(300)  # then the cameras slow down: an incident of its own, and a message
    feed(plant, latency=812, disk=9, link=1)
    second = plant.health.run_round()
    latency = plant.incidents.active(camera)
    assert latency is not None and latency.severity is Severity.WARNING
    assert latency.detail == "vms-server/camera_latency_ms: median 812 ms above 500 ms for 5 min"
    assert fired(second) & sensor_keys(plant) == {camera}  # the disk's open incident is not sent again
    assert {disk, camera} <= {i.key for i in plant.incidents.list(area="sensor") if i.state.active}

    report = plant.health.report(second.results)  # diagnostics attribute both to the asset
    assert report.assets["vms-server"].status is Status.CRITICAL
    reasons = " | ".join(report.assets["vms-server"].reasons)
    assert "limits:vms-server/camera_latency_ms:" in reasons and "limits:vms-server/disk_free_pct:" in reasons

    clock.advance(300)  # the cameras recover while the PLC link drops; the disk stays full
    feed(plant, latency=100, disk=9, link=0)
    third = plant.health.run_round()
    assert plant.incidents.active(camera) is None and plant.incidents.get(camera).resolved_at is not None
    assert plant.incidents.active(disk) is not None and plant.incidents.active(link) is not None
    assert fired(third) & sensor_keys(plant) == {link}


def test_one_query_per_round_for_every_sensor_target(plant: Pitstop, monkeypatch: pytest.MonkeyPatch) -> None:
    feed(plant, latency=100, disk=40, link=1)
    calls = {"recent": 0, "tails": 0}
    for name in calls:
        original = getattr(plant.readings, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(plant.readings, name, counted)
    specs = [s for s in plant.health.specs() if s.check in ("limits", "frozen")]
    runner = CheckRunner(specs, workers=8)
    results = runner.run(plant.health.context)
    assert len(results) == 9 and all(r.error is None for r in results)
    assert calls == {"recent": 1, "tails": 1}
    runner.run(plant.health.context)  # the next round reads afresh, once again
    assert calls == {"recent": 2, "tails": 2}


def test_an_explicit_sensor_or_asset_target_and_a_disabled_sensor(plant: Pitstop, tmp_path: Path) -> None:
    def specs(*entries: dict[str, Any], defaults: bool = False) -> dict[str, CheckSpec]:
        cfg = HealthSettings(default_checks=defaults, checks=[CheckSettings(**e) for e in entries])
        found = resolve(cfg, data_dir=tmp_path, assets=plant.assets.list_assets(), sensors=plant.assets.sensors())
        by_id = {s.id: s for s in found}
        assert len(by_id) == len(found), "one spec per target"
        return by_id

    one = specs({"check": "limits", "target": "vms-server/camera_latency_ms"})
    assert list(one) == ["limits:vms-server/camera_latency_ms"]
    assert (one["limits:vms-server/camera_latency_ms"].asset, one["limits:vms-server/camera_latency_ms"].site) == (
        "vms-server",
        "north-plant",
    )
    assert sorted(specs({"check": "limits", "target": "vms-server"})) == [
        "limits:vms-server/camera_latency_ms",
        "limits:vms-server/disk_free_pct",
        "limits:vms-server/plc_link_up",
    ]
    tuned = specs(
        {"check": "frozen", "target": "ahu-1", "params": {"periods": 60}},
        {"check": "frozen", "target": "ahu-1/UCTSP", "enabled": False},  # a set-point: not this one
        defaults=True,
    )
    frozen = {i: s for i, s in tuned.items() if i.startswith("frozen:")}
    assert sorted(frozen) == [
        "frozen:ahu-1/UCAOT",
        "frozen:vms-server/camera_latency_ms",
        "frozen:vms-server/cpu_pct",
        "frozen:vms-server/disk_free_pct",
        "frozen:vms-server/plc_link_up",
    ]
    assert frozen["frozen:ahu-1/UCAOT"].params == {"periods": 60}  # the asset's entry beats `*`
    assert frozen["frozen:vms-server/cpu_pct"].params == {}


@pytest.mark.parametrize(
    ("check", "target", "reason"),
    [
        (
            "limits",
            "vms-server/camera_latncy_ms",
            "asset vms-server has no sensor 'camera_latncy_ms' "
            "(its sensors: camera_latency_ms, cpu_pct, disk_free_pct, plc_link_up)",
        ),
        ("frozen", "vms-srever/cpu_pct", "no asset 'vms-srever' with sensors (assets with sensors: ahu-1, vms-server)"),
        ("limits", "vms-server/cpu_pct", "sensor vms-server/cpu_pct has no alarm limits in the inventory"),
        ("limits", "ahu-1", "no sensor of asset ahu-1 is one the limits check applies to (UCAOT has no alarm"),
    ],
    ids=["misspelt-sensor", "misspelt-asset", "sensor-without-limits", "asset-without-limits"],
)
def test_a_target_naming_no_such_sensor_is_a_clear_error(
    plant: Pitstop, tmp_path: Path, check: str, target: str, reason: str
) -> None:
    cfg = HealthSettings(checks=[CheckSettings(check=check, target=target)])
    with pytest.raises(ConfigError) as caught:
        resolve(cfg, data_dir=tmp_path, assets=plant.assets.list_assets(), sensors=plant.assets.sensors())
    assert str(caught.value).startswith(f"health.checks {check}:{target}: {reason}")


def test_the_asset_page_lists_a_sensor_incident_under_its_asset(plant: Pitstop) -> None:
    title = "sensor.limit on vms-server/disk_free_pct"  # as the health loop titles it
    item, _ = plant.incidents.open_or_update(
        "sensor.limit:vms-server/disk_free_pct", severity=Severity.CRITICAL, title=title
    )
    token = plant.keys.create("t-viewer", Role.VIEWER, plant.clock.now())[1]
    with TestClient(create_app(plant)) as client:
        assert client.post("/ui/login", data={"key": token}, follow_redirects=False).status_code == 303
        page = client.get("/ui/assets/vms-server").text
        assert title in page and f"/incidents/{item.id}" in page
        assert title not in client.get("/ui/assets/ahu-1").text


def test_the_shipped_inventories_give_only_the_monitoring_server_limits(pitstop: Pitstop) -> None:
    root = Path(__file__).resolve().parents[2]
    for path in (DEMO_INVENTORY, root / "bench" / "scenarios" / "all-faults-inventory.toml"):
        spec = inventory.read_file(path)
        limited = {
            (a.name, s.name): s.alarm.limits().as_dict() for a in spec.assets for s in a.sensors if s.alarm is not None
        }
        assert {asset for asset, _ in limited} == {"vms-server"}
        assert limited[("vms-server", "disk_free_pct")] == {"below": 15, "critical_below": 10}
        assert limited[("vms-server", "camera_latency_ms")] == {"above": 500, "critical_above": 2000, "for_s": 300}
        for name in ("plc_link_up", "service_up"):
            if (asset_sensor := ("vms-server", name)) in limited:
                assert limited[asset_sensor] == {"critical_below": 1, "for_s": 30}
    assert ("vms-server", "plc_link_up") in limited  # the all-faults plant has the link and service sensors
