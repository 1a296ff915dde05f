"""The control-loop checks on simulated air-handling units.

`setpoint`: a valve stuck where the controller left it is found within hours of the load moving,
while healthy units (including one cooling near its coil's capacity) stay quiet.
`heat_balance`: a drifting water inlet sensor is found before its error passes 0.8 K, while the
healthy unit stays quiet and the cooling one is not judged.
`coil_ua`: a cooling coil that fouls is found before it has lost 15 % of its UA; a clean one stays
quiet; a heating coil at a trickle is not judged. Assets without a coil are not judged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Status
from pitstop.health.base import CheckContext
from pitstop.health.checks.coil import CoilUaCheck, HeatBalanceCheck
from pitstop.health.checks.control import SetpointCheck
from pitstop.sim import Scenario, Simulator, assets_of_database
from pitstop.sim.live import LiveSimulation
from pitstop.sim.publish import DatabasePublisher
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock

COIL = """
  { name = "UCWIT", unit = "degC", min = 0, max = 40, period_s = 60 },
  { name = "UCAIT", unit = "degC", min = -30, max = 50, period_s = 60 },
  { name = "UCWF", unit = "m3/h", min = 0, max = 50, period_s = 60 },
  { name = "UCAIH", unit = "%", min = 0, max = 100, period_s = 60 },
  { name = "AMBT", unit = "degC", min = -30, max = 50, period_s = 60 },
  { name = "UCTSP", unit = "degC", min = 10, max = 30, period_s = 60 },
  { name = "UCAOT", unit = "degC", min = -10, max = 60, period_s = 60 },
  { name = "UCWOT", unit = "degC", min = 0, max = 60, period_s = 60 },
  { name = "UCAF", unit = "m3/h", min = 0, max = 20000, period_s = 60 },
"""
PLANT = f"""
[[sites]]
name = "north-plant"

[[assets]]
name = "ahu-1"
site = "north-plant"
type = "hvac"
sensors = [{COIL}]

[[assets]]
name = "ahu-2"
site = "north-plant"
type = "hvac"
sensors = [{COIL}]

[[assets]]
name = "pump-1"
site = "north-plant"
type = "pump"
sensors = [{{ name = "vib_rms", unit = "mm/s", min = 0, max = 100, period_s = 10 }}]
"""
STUCK = """
cooling_all_year = ["ahu-2"]

[[faults]]
kind = "valve_stuck"
asset = "ahu-1"
start = "+1d"
end = "+2d"
"""


DRIFT = """
cooling_all_year = ["ahu-2"]

[[faults]]
kind = "sensor_drift"
asset = "ahu-1"
sensor = "UCWIT"
start = "+3d"
severity = 0.5
"""


FOULING = """
cooling_all_year = ["ahu-1", "ahu-2"]

[[faults]]
kind = "fouling"
asset = "ahu-1"
start = "+2d"
severity = 3.0
"""


def simulated(tmp_path: Path, start: datetime, days: float, seed: int, scenario: str = STUCK) -> Pitstop:
    clock = FrozenClock(start)
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path), clock=clock, db=db)
    inventory.apply(pitstop.db, inventory.parse(PLANT, "plant.toml", "toml"), actor="test", now=start)
    sim = Simulator(assets_of_database(pitstop.assets), seed=seed, scenario=Scenario.parse(scenario, start))
    LiveSimulation(sim, DatabasePublisher(sim, assets=pitstop.assets, readings=pitstop.readings), start).advance(
        start + timedelta(days=days)
    )
    return pitstop


def at(pitstop: Pitstop, when: datetime) -> CheckContext:
    return CheckContext(clock=FrozenClock(when), db=pitstop.db, readings=pitstop.readings, assets=pitstop.assets)


def statuses(pitstop: Pitstop, asset: str, hours: range, start: datetime) -> dict[int, Status]:
    check = SetpointCheck(asset)
    return {hour: check.run(at(pitstop, start + timedelta(hours=hour))).status for hour in hours}


@pytest.mark.parametrize("seed", [1, 2])
def test_a_stuck_valve_is_found_and_healthy_units_stay_quiet(tmp_path: Path, seed: int) -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    pitstop = simulated(tmp_path, start, 2.0, seed)
    try:
        healthy_day = statuses(pitstop, "ahu-1", range(1, 24), start)
        assert set(healthy_day.values()) == {Status.HEALTHY}
        # the valve sticks at 24 h; on these seeds the supply air leaves its set point within 6 h
        stuck = statuses(pitstop, "ahu-1", range(25, 33), start)
        assert Status.WARNING in stuck.values(), stuck
        first = min(h for h, s in stuck.items() if s is Status.WARNING)
        assert first <= 31
        # the server-room unit cools all day, some of it near the coil's capacity: never off
        assert set(statuses(pitstop, "ahu-2", range(1, 48, 2), start).values()) == {Status.HEALTHY}
        ctx = at(pitstop, start + timedelta(hours=30))
        result = SetpointCheck("ahu-1").run(ctx)
        assert "UCAOT" in result.summary and result.observed["judged"] > 20
        pump = SetpointCheck("pump-1").run(ctx)
        assert pump.status is Status.HEALTHY and "no coil loop" in pump.summary
        late = at(pitstop, start + timedelta(days=5))  # no reading in the window: not judged
        assert SetpointCheck("ahu-1").run(late).status is Status.UNKNOWN
    finally:
        pitstop.close()


def test_the_loop_checks_cover_only_assets_with_their_sensors(tmp_path: Path) -> None:
    """`*` expands to the units that have the sensors a loop check reads (renamed ones too), so a
    pump is not reported as "no water coil" every round; a unit named outright is kept."""
    from pitstop.config.health import CheckSettings, HealthSettings
    from pitstop.health.specs import resolve

    pitstop = simulated(tmp_path, datetime(2026, 3, 2, tzinfo=UTC), 0.01, 1)
    try:
        assets, sensors = pitstop.assets.list_assets(), pitstop.assets.sensors()

        def targets(*items: CheckSettings) -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            for spec in resolve(HealthSettings(checks=list(items)), data_dir=tmp_path, assets=assets, sensors=sensors):
                found.setdefault(spec.check, set()).add(spec.target)
            return found

        units = {a.name for a in assets if a.name.startswith("ahu-")}
        assert units and "pump-1" in {a.name for a in assets}
        found = targets()
        for name in ("setpoint", "heat_balance", "coil_ua"):
            assert found[name] == units, (name, found[name])
        assert "pump-1" in found["freshness"]  # checks without roles still cover every asset
        # a sensor renamed by a parameter: the units lack it, so `*` covers none of them
        renamed = targets(CheckSettings(check="coil_ua", params={"air_flow": "SUPPLY_FLOW"}))
        assert "coil_ua" not in renamed
        named = targets(CheckSettings(check="heat_balance", target="pump-1"))
        assert "pump-1" in named["heat_balance"]
    finally:
        pitstop.close()


def test_setpoint_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        SetpointCheck("ahu-1", params={"tolerance": -1})
    with pytest.raises(ValueError, match="full_share"):
        SetpointCheck("ahu-1", params={"full_share": 1.5})
    with pytest.raises(ValueError, match="unknown"):
        SetpointCheck("ahu-1", params={"tolerence": 1})
    renamed = SetpointCheck("ahu-1", params={"measured": "SAT", "setpoint": "SAT_SP"})
    assert renamed.sensors["measured"] == "SAT" and renamed.sensors["actuator"] == "UCWF"


def test_a_drifting_water_sensor_breaks_the_heat_balance(tmp_path: Path) -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    pitstop = simulated(tmp_path, start, 5.0, 3, DRIFT)
    try:
        check = HeatBalanceCheck("ahu-1")  # one instance, as the monitor keeps it between rounds
        results = {hour: check.run(at(pitstop, start + timedelta(hours=hour))) for hour in range(2, 120, 2)}
        assert "learning" in results[12].summary
        healthy = {h: r for h, r in results.items() if h <= 72}
        assert {r.status for r in healthy.values()} == {Status.HEALTHY}, [r.summary for r in healthy.values()]
        assert max(abs(r.observed.get("offset", 0.0)) for r in healthy.values()) < 0.3
        # the reading drifts 0.5 K a day from hour 72: found before it is 0.8 K off (hour 110)
        found = [h for h, r in results.items() if r.status is Status.WARNING]
        assert found and 72 < found[0] < 110, found
        late = results[found[0]]
        assert late.observed["offset"] > late.observed["limit"] > 0 and "sensor" in late.summary
        # a fresh instance reads the week back from the database and agrees
        again = HeatBalanceCheck("ahu-1").run(at(pitstop, start + timedelta(hours=found[0])))
        assert again.observed == late.observed
        ctx = at(pitstop, start + timedelta(hours=100))
        cooling = HeatBalanceCheck("ahu-2").run(ctx)  # chilled water all year: condensation, not judged
        assert cooling.status is Status.HEALTHY and "not judged" in cooling.summary
        pump = HeatBalanceCheck("pump-1").run(ctx)
        assert pump.status is Status.HEALTHY and "no water coil" in pump.summary
    finally:
        pitstop.close()


def test_heat_balance_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        HeatBalanceCheck("ahu-1", params={"tolerance": 0})
    with pytest.raises(ValueError, match="unknown"):
        HeatBalanceCheck("ahu-1", params={"window": 3600})
    renamed = HeatBalanceCheck("ahu-1", params={"water_in": "CHWST", "window_s": 7200})
    assert renamed.sensors["water_in"] == "CHWST" and renamed.window_us == 7200 * 10**6


def test_a_fouling_cooling_coil_passes_less_heat(tmp_path: Path) -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    pitstop = simulated(tmp_path, start, 3.5, 2, FOULING)
    try:
        check = CoilUaCheck("ahu-1")
        # a tenth of the UA a day from hour 48: 15 % lost at hour 84
        results = {hour: check.run(at(pitstop, start + timedelta(hours=hour))) for hour in range(4, 84, 4)}
        assert "learning" in results[8].summary
        assert {r.status for h, r in results.items() if h <= 48} == {Status.HEALTHY}
        found = [h for h, r in results.items() if r.status is Status.WARNING]
        assert found and 48 < found[0] < 84, found
        assert results[found[0]].observed["ua_loss"] > 0.1 and "foul" in results[found[0]].summary
        clean = CoilUaCheck("ahu-2")  # the same duty, a clean coil
        assert {clean.run(at(pitstop, start + timedelta(hours=h))).status for h in range(4, 84, 4)} == {Status.HEALTHY}
    finally:
        pitstop.close()


def test_a_heating_coil_at_a_trickle_is_not_judged(tmp_path: Path) -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    pitstop = simulated(tmp_path, start, 1.0, 1, DRIFT)
    try:
        result = CoilUaCheck("ahu-1").run(at(pitstop, start + timedelta(hours=20)))
        assert result.status is Status.HEALTHY and "not judged" in result.summary
        with pytest.raises(ValueError, match="spread"):
            CoilUaCheck("ahu-1", params={"spread": "wide"})
    finally:
        pitstop.close()
