"""The fleet simulator: deterministic, physically plausible, faults change the right signals only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop import inventory
from pitstop.errors import ScenarioError
from pitstop.sim import AFFECTED_SIGNALS, Fault, FaultKind, Scenario, Simulator, assets_of_inventory
from tests.conftest import DEMO_INVENTORY

SPEC = inventory.read_file(DEMO_INVENTORY)
ASSETS = assets_of_inventory(SPEC)
T0 = datetime(2026, 7, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HVAC = ("UCWIT", "UCAIT", "UCWF", "UCAIH", "AMBT", "UCTSP", "UCAOT", "UCWOT", "UCAF")


def sim(*faults: Fault, seed: int = 7) -> Simulator:
    return Simulator(ASSETS, seed=seed, scenario=Scenario(tuple(faults)))


def wide(s: Simulator, asset: str, start: datetime, end: datetime) -> dict[str, np.ndarray]:
    b = s.batch(start, end)
    return {sensor: b.series(asset, sensor).to_numpy() for a, sensor in b.keys if a == asset}


def test_same_seed_same_batches_and_chunking_does_not_matter() -> None:
    a, b = sim(seed=3).batch(T0, T0 + DAY), sim(seed=3).batch(T0, T0 + DAY)
    assert a.keys == b.keys
    assert np.array_equal(a.key, b.key) and np.array_equal(a.ts_us, b.ts_us) and np.array_equal(a.value, b.value)
    pieces = list(sim(seed=3).chunks(T0, T0 + DAY, timedelta(minutes=67)))
    joined = a.frame().sort_values(["asset", "sensor", "ts"]).reset_index(drop=True)
    stitched = (
        __import__("pandas")
        .concat([p.frame() for p in pieces])
        .sort_values(["asset", "sensor", "ts"])
        .reset_index(drop=True)
    )
    assert joined.equals(stitched)
    other = sim(seed=4).batch(T0, T0 + DAY)
    assert not np.array_equal(a.value, other.value)


def test_counts_follow_each_sensors_period() -> None:
    s = sim()
    batch = s.batch(T0, T0 + DAY)
    # 2 AHUs x 9 sensors each minute, pump 4 + fan 3 sensors every 10 s, server 3 every 30 s + 1 every minute
    assert len(batch) == s.count(T0, T0 + DAY) == 2 * 9 * 1440 + 7 * 8640 + 3 * 2880 + 1440
    assert np.all(batch.ts_us >= 0) and np.all(np.isfinite(batch.value))


@pytest.mark.parametrize("month", [1, 4, 7, 10])
def test_hvac_energy_balance_and_ranges(month: int) -> None:
    start = datetime(2026, month, 1, tzinfo=UTC)
    x = wide(sim(), "ahu-1", start, start + 3 * DAY)
    air = x["UCAIT"] - x["UCAOT"]  # > 0: the air gave heat
    water = x["UCWOT"] - x["UCWIT"]  # > 0: the water took heat
    clear = (np.abs(air) > 0.3) & (np.abs(water) > 0.3)
    assert clear.mean() > 0.5
    assert np.all(np.sign(air[clear]) == np.sign(water[clear]))
    # the controller tracks the set point most of the time
    assert np.median(np.abs(x["UCAOT"] - x["UCTSP"])) < 1.0
    for spec in next(a for a in SPEC.assets if a.name == "ahu-1").sensors:
        assert spec.min is not None and spec.max is not None
        assert x[spec.name].min() >= spec.min and x[spec.name].max() <= spec.max, spec.name


def test_seasons_drift_the_inputs() -> None:
    winter = wide(sim(), "ahu-1", datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 1, 22, tzinfo=UTC))
    summer = wide(sim(), "ahu-1", datetime(2026, 7, 15, tzinfo=UTC), datetime(2026, 7, 22, tzinfo=UTC))
    assert summer["AMBT"].mean() > winter["AMBT"].mean() + 10
    assert winter["UCWIT"].mean() > 25 > 10 > summer["UCWIT"].mean()  # hot water in winter, chilled in summer
    day = summer["AMBT"].reshape(7, 1440).mean(axis=0)
    assert day[15 * 60] > day[4 * 60] + 4  # afternoons are warmer than nights


def changed(clean: dict[str, np.ndarray], faulty: dict[str, np.ndarray]) -> set[str]:
    return {name for name in clean if not np.array_equal(clean[name], faulty[name])}


@pytest.mark.parametrize(
    ("fault", "asset"),
    [
        (Fault(FaultKind.FOULING, "ahu-1", T0 + DAY, severity=0.9), "ahu-1"),
        (Fault(FaultKind.VALVE_STUCK, "ahu-1", T0 + DAY + timedelta(hours=3)), "ahu-1"),
        (Fault(FaultKind.SENSOR_DRIFT, "ahu-1", T0 + DAY, severity=2.0, sensor="UCWIT"), "ahu-1"),
        (Fault(FaultKind.SENSOR_FREEZE, "ahu-2", T0 + DAY, sensor="UCAOT"), "ahu-2"),
        (Fault(FaultKind.BEARING_WEAR, "pump-1", T0, end=T0 + 3 * DAY), "pump-1"),
        (Fault(FaultKind.DISK_FILL, "vms-server", T0 + DAY, severity=1.0), "vms-server"),
        (Fault(FaultKind.CAMERA_LATENCY, "vms-server", T0 + DAY, severity=0.5), "vms-server"),
    ],
)
def test_a_fault_changes_its_signals_and_only_those(fault: Fault, asset: str) -> None:
    end = T0 + 3 * DAY
    clean_batch, faulty_batch = sim().batch(T0, end), sim(fault).batch(T0, end)
    # nothing changes on the other assets, nor before the fault starts
    other = clean_batch.asset != asset
    assert np.array_equal(clean_batch.value[other], faulty_batch.value[other])
    before = clean_batch.ts_us < int(fault.start.timestamp() * 1e6)
    assert np.array_equal(clean_batch.value[before], faulty_batch.value[before])
    clean, faulty = wide(sim(), asset, T0, end), wide(sim(fault), asset, T0, end)
    assert changed(clean, faulty) <= fault.signals
    assert changed(clean, faulty), "the fault changed nothing"


def test_fault_effects_point_the_right_way() -> None:
    start = T0 + DAY
    clean = wide(sim(), "ahu-1", T0, T0 + 4 * DAY)
    fouled = wide(sim(Fault(FaultKind.FOULING, "ahu-1", start, severity=0.9)), "ahu-1", T0, T0 + 4 * DAY)
    late = slice(3 * 1440, None)
    assert fouled["UCWF"][late].mean() > 1.1 * clean["UCWF"][late].mean()  # the valve opens wider
    stuck = wide(sim(Fault(FaultKind.VALVE_STUCK, "ahu-1", start)), "ahu-1", T0, T0 + 4 * DAY)
    assert np.std(stuck["UCWF"][1440:]) < 0.2 * np.std(clean["UCWF"][1440:])
    assert np.abs(stuck["UCAOT"] - stuck["UCTSP"])[1440:].mean() > np.abs(clean["UCAOT"] - clean["UCTSP"])[1440:].mean()
    drift = wide(
        sim(Fault(FaultKind.SENSOR_DRIFT, "ahu-1", start, severity=2.0, sensor="UCWIT")), "ahu-1", T0, T0 + 4 * DAY
    )
    assert drift["UCWIT"][-1] - clean["UCWIT"][-1] == pytest.approx(2.0 * 3, abs=0.01)
    frozen = wide(
        sim(Fault(FaultKind.SENSOR_FREEZE, "ahu-1", start, end=start + DAY, sensor="UCAOT")), "ahu-1", T0, T0 + 4 * DAY
    )
    assert np.ptp(frozen["UCAOT"][1440:2880]) == 0 and frozen["UCAOT"][1440] == clean["UCAOT"][1440]
    assert np.array_equal(frozen["UCAOT"][2880:], clean["UCAOT"][2880:])  # unfrozen at the end
    disk = wide(sim(Fault(FaultKind.DISK_FILL, "vms-server", start, severity=1.0)), "vms-server", T0, T0 + 4 * DAY)
    assert disk["disk_free_pct"].min() == 0.0  # the disk fills up within days


def test_fouling_shows_in_winter_only_on_a_unit_cooling_all_year() -> None:
    """On hot water at part load the valve passes a trickle and a fouled coil changes no reading;
    a unit cooling all year (a server room's) runs chilled water through a working coil then too."""
    winter = datetime(2026, 12, 1, tzinfo=UTC)
    fouling = Fault(FaultKind.FOULING, "ahu-2", winter, severity=9.0)  # 30 % of the UA lost a day
    span = (winter + DAY, winter + 2 * DAY)  # 30-60 % lost

    def flow(scenario: Scenario) -> np.ndarray:
        return wide(Simulator(ASSETS, seed=7, scenario=scenario), "ahu-2", *span)["UCWF"]

    seasonal_clean, seasonal_fouled = flow(Scenario()), flow(Scenario((fouling,)))
    assert abs(seasonal_fouled.mean() - seasonal_clean.mean()) < 0.01  # m3/h: nothing to see
    cooling = frozenset({"ahu-2"})
    clean, fouled = flow(Scenario(cooling_all_year=cooling)), flow(Scenario((fouling,), cooling))
    assert clean.mean() > 5 * seasonal_clean.mean()  # chilled water through a working coil
    assert fouled.mean() > 1.2 * clean.mean()  # the valve opens wider for the same cooling
    # the unit's own setting changes nothing on the others
    other = wide(Simulator(ASSETS, seed=7, scenario=Scenario(cooling_all_year=cooling)), "ahu-1", *span)
    assert np.array_equal(other["UCWF"], wide(sim(), "ahu-1", *span)["UCWF"])


def test_bearing_wear_grows_to_failure_at_the_known_time() -> None:
    onset, failure = T0 + DAY, T0 + 11 * DAY
    s = sim(Fault(FaultKind.BEARING_WEAR, "pump-1", onset, end=failure))
    assert s.failure_time("pump-1") == failure and s.failure_time("fan-1") is None
    rms = s.batch(T0, failure).series("pump-1", "vib_rms")
    daily = rms.resample("1D").mean().to_numpy()
    # load swings hide the first days of wear; from the middle of the life on it grows every day
    assert np.all(np.diff(daily[5:]) > 0) and np.corrcoef(np.arange(len(daily) - 1), daily[1:])[0, 1] > 0.85
    healthy = daily[0]
    assert rms.iloc[-360:].mean() > 4 * healthy  # about FAILURE_FACTOR times the healthy level at the end
    kurtosis = s.batch(T0, failure).series("pump-1", "vib_kurtosis").resample("1D").mean().to_numpy()
    assert kurtosis.max() > 8 > 3.3 > kurtosis[0]


def test_waveform_shows_impacts_at_bpfo_once_worn() -> None:
    s = sim(Fault(FaultKind.BEARING_WEAR, "pump-1", T0, end=T0 + 10 * DAY))
    healthy, worn = s.waveform("pump-1", T0 - DAY), s.waveform("pump-1", T0 + 8 * DAY)
    assert len(worn.samples) == 2048 and worn.bpfo_hz == pytest.approx(3.584 * worn.shaft_hz, rel=1e-3)

    def kurt(x: np.ndarray) -> float:
        return float(np.mean((x - x.mean()) ** 4) / np.var(x) ** 2)

    assert kurt(worn.samples) > kurt(healthy.samples) + 1
    with pytest.raises(ScenarioError):
        s.waveform("ahu-1", T0)


def test_bad_scenarios_are_refused() -> None:
    with pytest.raises(ScenarioError, match="happens to hvac"):
        sim(Fault(FaultKind.FOULING, "pump-1", T0))
    with pytest.raises(ScenarioError, match="no simulated asset"):
        sim(Fault(FaultKind.FOULING, "ahu-9", T0))
    with pytest.raises(ScenarioError, match="no simulated sensor"):
        sim(Fault(FaultKind.SENSOR_DRIFT, "ahu-1", T0, sensor="vib_rms"))
    with pytest.raises(ScenarioError, match="needs sensor"):
        Fault(FaultKind.SENSOR_FREEZE, "ahu-1", T0)
    with pytest.raises(ScenarioError, match="end must come after start"):
        Fault(FaultKind.VALVE_STUCK, "ahu-1", T0, end=T0)
    with pytest.raises(ScenarioError, match="not a simulated hvac unit"):
        Simulator(ASSETS, scenario=Scenario(cooling_all_year=frozenset({"pump-1"})))
    with pytest.raises(ScenarioError, match="must be a list of asset names"):
        Scenario.parse('cooling_all_year = "ahu-2"', T0)
    assert Scenario.parse('cooling_all_year = ["ahu-2"]', T0).cooling_all_year == {"ahu-2"}


def test_scenario_toml_with_relative_and_absolute_times() -> None:
    text = """
[[faults]]
kind = "bearing_wear"
asset = "pump-1"
start = "-2d"
end = "+10d"

[[faults]]
kind = "sensor_drift"
asset = "ahu-1"
sensor = "UCWIT"
start = "2026-07-03T00:00:00+00:00"
severity = 0.5
"""
    scenario = Scenario.parse(text, T0)
    assert scenario.failure_time("pump-1") == T0 + 10 * DAY
    assert scenario.faults[0].start == T0 - 2 * DAY
    assert [f.kind for f in scenario.active(T0 + 3 * DAY)] == [FaultKind.BEARING_WEAR, FaultKind.SENSOR_DRIFT]
    for bad, message in [
        ('[[faults]]\nkind = "melt"\nasset = "a"\nstart = "+1h"', "unknown kind"),
        ('[[faults]]\nkind = "fouling"\nasset = "a"\nstart = "2026-01-01T00:00:00"', "UTC offset"),
        ('[[faults]]\nkind = "fouling"\nasset = "a"', "missing 'start'"),
        ("faults = 3", "list of tables"),
        ("[[faults", "not valid TOML"),
    ]:
        with pytest.raises(ScenarioError, match=message):
            Scenario.parse(bad, T0)


def test_affected_signals_cover_every_equipment_fault() -> None:
    assert set(AFFECTED_SIGNALS) | {FaultKind.SENSOR_DRIFT, FaultKind.SENSOR_FREEZE} == set(FaultKind)


faults = st.sampled_from(
    [
        lambda t: Fault(FaultKind.FOULING, "ahu-1", t, severity=10.0),
        lambda t: Fault(FaultKind.VALVE_STUCK, "ahu-2", t),
        lambda t: Fault(FaultKind.SENSOR_DRIFT, "ahu-1", t, severity=10.0, sensor="UCAOT"),
        lambda t: Fault(FaultKind.BEARING_WEAR, "fan-1", t, end=t + timedelta(hours=1)),
        lambda t: Fault(FaultKind.DISK_FILL, "vms-server", t, severity=10.0),
        lambda t: Fault(FaultKind.CAMERA_LATENCY, "vms-server", t, severity=10.0),
    ]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**63),
    start=st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),
    minutes=st.integers(1, 2 * 24 * 60),
    make=st.lists(faults, max_size=3),
    fault_at=st.integers(-3 * 24 * 60, 2 * 24 * 60),
)
def test_any_seed_and_duration_give_finite_values_in_range(
    seed: int, start: datetime, minutes: int, make: list, fault_at: int
) -> None:
    scenario = Scenario(tuple(m(start + timedelta(minutes=fault_at)) for m in make))
    s = Simulator(ASSETS, seed=seed, scenario=scenario)
    batch = s.batch(start, start + timedelta(minutes=minutes))
    assert len(batch) == s.count(start, start + timedelta(minutes=minutes))
    assert np.all(np.isfinite(batch.value))
    lo = np.array([s.sensors[k].min for k in batch.keys], dtype=float)[batch.key]
    hi = np.array([s.sensors[k].max for k in batch.keys], dtype=float)[batch.key]
    assert np.all((batch.value >= lo) & (batch.value <= hi))


toml_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["+1h", "-2d", "+99999999999w", "2026-07-01T00:00:00+00:00", "2026-07-01T00:00:00"]),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
)
fault_tables = st.dictionaries(
    st.sampled_from(["kind", "asset", "start", "end", "severity", "sensor", "other"]),
    st.one_of(toml_values, st.sampled_from([k.value for k in FaultKind] + ["ahu-1", "pump-1", "UCWIT"])),
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(fault_tables, max_size=3).map(lambda faults: {"faults": faults})))
def test_any_scenario_input_is_a_scenario_or_one_clear_error(raw: object) -> None:
    if isinstance(raw, dict):
        try:
            Simulator(ASSETS, seed=1, scenario=Scenario.from_mapping(raw, T0))
        except ScenarioError as exc:
            assert str(exc) and "\n" not in str(exc)
        return
    try:
        Scenario.parse(str(raw), T0)
    except ScenarioError as exc:
        assert str(exc)
