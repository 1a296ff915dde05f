"""Alarm limits on a sensor: parsed, stored canonically, and refused with a message that says why."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pitstop import inventory
from pitstop.errors import InventoryError
from pitstop.storage.repos.assets import AlarmLimits

HEAD = """\
[[sites]]
name = "plant"

[[assets]]
name = "vms-server"
site = "plant"
type = "monitoring-server"
"""


def inv(*sensors: str) -> str:
    return HEAD + "sensors = [\n" + "".join(f"  {s},\n" for s in sensors) + "]\n"


LATENCY = '{ name = "camera_latency_ms", unit = "ms", min = 0, max = 60000, period_s = 30, alarm = %s }'
DISK = '{ name = "disk_free_pct", unit = "%%", min = 0, max = 100, period_s = 60, alarm = %s }'


def test_limits_are_parsed_with_their_window() -> None:
    spec = inventory.parse(
        inv(
            LATENCY % "{ above = 500, critical_above = 2000, for_s = 300 }",
            DISK % "{ below = 15, critical_below = 10 }",
            '{ name = "cpu_pct", unit = "%", min = 0, max = 100, period_s = 30 }',
        ),
        "inv.toml",
        "toml",
    )
    latency, disk, cpu = spec.assets[0].sensors
    assert latency.alarm is not None and disk.alarm is not None and cpu.alarm is None
    limits = latency.alarm.limits()
    assert (limits.above, limits.critical_above, limits.for_s) == (500, 2000, 300)
    assert limits.window_s(30) == 300
    assert disk.alarm.limits().window_s(60) == 300  # five periods by default
    stored = disk.alarm.limits().to_json()
    assert json.loads(stored) == {"below": 15, "critical_below": 10}  # no nulls
    assert AlarmLimits.from_json(stored) == disk.alarm.limits() and AlarmLimits.from_json(None) is None


def test_yaml_inventory_carries_limits_too() -> None:
    text = (
        "sites:\n  - name: plant\nassets:\n  - name: s1\n    site: plant\n    type: monitoring-server\n"
        "    sensors:\n      - name: plc_link_up\n        min: 0\n        max: 1\n        period_s: 30\n"
        "        alarm: {critical_below: 1, for_s: 30}\n"
    )
    (sensor,) = inventory.parse(text, "inv.yaml", "yaml").assets[0].sensors
    assert sensor.alarm is not None and sensor.alarm.limits().critical_below == 1


@pytest.mark.parametrize(
    ("alarm", "message"),
    [
        ("{ }", "at least one of above, critical_above, below, critical_below"),
        ("{ for_s = 60 }", "at least one of above"),
        ("{ above = 500, critical_above = 400 }", r"critical_above \(400\) must not be under above \(500\)"),
        ("{ below = 10, critical_below = 15 }", r"critical_below \(15\) must not be over below \(10\)"),
        ("{ below = 600, above = 500 }", r"low limits \(600\) must be under the high limits \(500\)"),
        ("{ critical_below = 500, above = 500 }", "must be under the high limits"),
        ("{ above = 70000 }", r"alarm.above \(70000\) is over the sensor's max \(60000\)"),
        ("{ critical_below = 0 }", r"alarm.critical_below \(0\) is not over the sensor's min \(0\)"),
        ("{ above = 500, for_s = 0 }", r"alarm.for_s: Input should be greater than 0"),
        ("{ above = 500, for_s = 700000 }", r"alarm.for_s: Input should be less than or equal to 604800"),
        ('{ above = "500" }', r"alarm.above: Input should be a valid number"),
        ("{ above = nan }", r"alarm.above: Input should be a finite number"),
        ("{ above = inf }", r"alarm.above: Input should be a finite number"),
        ("{ above = true }", r"alarm.above: Input should be a valid number"),
        ("{ hi = 500 }", r"alarm.hi: Extra inputs are not permitted"),
        ("500", r"alarm: Input should be a valid dictionary"),
    ],
)
def test_bad_limits_are_refused_with_the_reason(alarm: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message) as caught:
        inventory.parse(inv(LATENCY % alarm), "inv.toml", "toml")
    assert str(caught.value).startswith("inv.toml: line 5: assets.0.sensors.0")


LEVEL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.text(max_size=10),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
FIELDS = ("above", "critical_above", "below", "critical_below", "for_s")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from((*FIELDS, "bogus")), LEVEL, max_size=5))
def test_hostile_limits_are_accepted_only_when_they_make_sense(alarm: dict[str, object]) -> None:
    raw = {
        "sites": [{"name": "plant"}],
        "assets": [
            {
                "name": "a",
                "site": "plant",
                "type": "t",
                "sensors": [{"name": "s", "min": -1000.0, "max": 1000.0, "period_s": 10, "alarm": alarm}],
            }
        ],
    }
    try:
        spec = inventory.InventorySpec.model_validate(raw)
    except ValidationError as exc:
        assert exc.errors()[0]["msg"]  # a reason, never a crash
        return
    spec_alarm = spec.assets[0].sensors[0].alarm
    assert spec_alarm is not None
    limits = spec_alarm.limits()
    values = limits.as_dict()
    assert set(alarm) <= set(FIELDS)
    assert all(
        isinstance(alarm[k], int | float) and not isinstance(alarm[k], bool) for k in alarm if alarm[k] is not None
    )
    assert all(math.isfinite(v) for v in values.values())
    highs = [v for v in (limits.above, limits.critical_above) if v is not None]
    lows = [v for v in (limits.below, limits.critical_below) if v is not None]
    assert highs or lows
    assert not (highs and lows) or max(lows) < min(highs)
    assert all(v <= 1000 for v in highs) and all(v > -1000 for v in lows)
    if limits.above is not None and limits.critical_above is not None:
        assert limits.critical_above >= limits.above
    if limits.below is not None and limits.critical_below is not None:
        assert limits.critical_below <= limits.below
    assert limits.for_s is None or 0 < limits.for_s <= 7 * 86400
    assert AlarmLimits.from_json(limits.to_json()) == limits
