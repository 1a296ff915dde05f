"""The `reading` check on readings stored through the real ReadingRepo (SQLite and PostgreSQL):
each statistic over its window, the levels of each check entry, silence, and the incident a
breach opens through the alert policy like any check's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.config.health import CheckSettings, HealthSettings, ThresholdSettings
from pitstop.core.types import Severity, Status, to_epoch_us
from pitstop.errors import ConfigError
from pitstop.health.base import CheckResult, Threshold
from pitstop.health.checks.readings import ReadingCheck
from pitstop.health.runner import CheckRunner
from pitstop.health.specs import CheckSpec
from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.testing.clock import FrozenClock

PLANT = """\
[[sites]]
name = "north-plant"

[[assets]]
name = "vms-server"
site = "north-plant"
type = "monitoring-server"
sensors = [
  { name = "camera_latency_ms", unit = "ms", period_s = 30 },
  { name = "plc_link_up", unit = "", min = 0, max = 1, period_s = 30 },
  { name = "disk_free_pct", unit = "%", min = 0, max = 100, period_s = 60 },
]
"""
CAMERA = "vms-server/camera_latency_ms"
# 11 readings 30 s apart end at now, inside 5 min; the 9 before them are outside and far off, so a
# statistic that took them in would show it.
IN_WINDOW = [180.0, 220.0, 250.0, 640.0, 210.0, 900.0, 230.0, 260.0, 205.0, 615.0, 240.0]
OUTSIDE = [10_000.0] * 9


def load(pitstop: Pitstop) -> None:
    inventory.apply(pitstop.db, inventory.parse(PLANT, "plant.toml", "toml"), actor="test", now=pitstop.clock.now())


def write(pitstop: Pitstop, sensor: str, values: Sequence[float], *, period_s: float, end_ago_s: float = 0) -> None:
    """`values` one period apart, the last one `end_ago_s` before the clock's now."""
    asset, name = sensor.split("/")
    sid = pitstop.assets.sensor_index()[(asset, name)].id
    end = to_epoch_us(pitstop.clock.now()) - int(end_ago_s * 1e6)
    step = int(period_s * 1e6)
    ts = [end - step * (len(values) - 1 - i) for i in range(len(values))]
    pitstop.readings.write(ReadingBatch.of([sid] * len(values), ts, list(values)))


def run(pitstop: Pitstop, target: str, levels: dict[str, Any] | None = None, **params: Any) -> CheckResult:
    thresholds = {"value": Threshold.of("value", levels)} if levels else {}
    spec = CheckSpec("reading", target, params=params, thresholds=thresholds)
    (result,) = CheckRunner([spec], workers=1).run(pitstop.health.context)
    return result


@pytest.fixture
def plant(pitstop: Pitstop) -> Pitstop:
    load(pitstop)
    write(pitstop, CAMERA, OUTSIDE + IN_WINDOW, period_s=30)
    return pitstop


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        ("latest", 240.0),
        ("mean", float(np.mean(IN_WINDOW))),
        ("max", 900.0),
        ("min", 180.0),
        ("p50", float(np.percentile(IN_WINDOW, 50))),
        ("p90", float(np.percentile(IN_WINDOW, 90))),
        ("p95", float(np.percentile(IN_WINDOW, 95))),
        ("p99", float(np.percentile(IN_WINDOW, 99))),
    ],
)
def test_each_statistic_is_taken_over_the_window_only(plant: Pitstop, stat: str, expected: float) -> None:
    result = run(plant, CAMERA, stat=stat, window_s=300)
    assert result.observed["value"] == pytest.approx(expected)
    assert result.observed["readings"] == (1 if stat == "latest" else 11)
    assert result.status is Status.HEALTHY and result.summary.endswith("(no levels set)")
    assert result.issue_key == "sensor.threshold" and result.incident_key == f"sensor.threshold:{CAMERA}"


def test_the_summary_says_the_statistic_window_unit_and_level(plant: Pitstop) -> None:
    levels = {"warning": 500, "critical": 2000}
    p95 = float(np.percentile(IN_WINDOW, 95))
    result = run(plant, CAMERA, levels, stat="p95", window_s=300)
    assert result.status is Status.WARNING
    assert result.summary == f"{CAMERA}: p95 over 5 min {p95:.4g} ms (warning >= 500 ms)"
    assert result.clear is False

    result = run(plant, CAMERA, {"warning": 500, "critical": 800}, stat="max")
    assert (result.status, result.summary) == (Status.CRITICAL, f"{CAMERA}: max over 5 min 900 ms (critical >= 800 ms)")

    result = run(plant, CAMERA, levels, stat="p50")
    assert result.status is Status.HEALTHY and result.clear is True
    assert result.summary == f"{CAMERA}: p50 over 5 min 240 ms"

    result = run(plant, CAMERA, levels)  # latest by default
    assert result.summary == f"{CAMERA}: latest reading 240 ms (0 s ago)"

    # a clear level above the value's: healthy, but not yet clear (hysteresis)
    result = run(plant, CAMERA, {"warning": 500, "clear": 200}, stat="p50")
    assert result.status is Status.HEALTHY and result.clear is False

    # a window reaching back to the old readings takes them in
    assert run(plant, CAMERA, stat="max", window_s=600).observed["value"] == 10_000.0


def test_below_levels_and_a_link_state(pitstop: Pitstop) -> None:
    load(pitstop)
    write(pitstop, "vms-server/disk_free_pct", [40, 30, 18, 17], period_s=60)
    write(pitstop, "vms-server/plc_link_up", [1, 1, 1, 0], period_s=30)
    disk = run(pitstop, "vms-server/disk_free_pct", {"direction": "below", "warning": 20, "critical": 10}, stat="min")
    assert disk.status is Status.WARNING
    assert disk.summary == "vms-server/disk_free_pct: min over 5 min 17 % (warning < 20 %)"
    link = run(pitstop, "vms-server/plc_link_up", {"direction": "below", "critical": 1}, window_s=60)
    assert link.status is Status.CRITICAL
    assert link.summary == "vms-server/plc_link_up: latest reading 0 (0 s ago) (critical < 1)"


def test_no_readings_in_the_window_is_unknown_or_what_silent_says(pitstop: Pitstop) -> None:
    load(pitstop)
    write(pitstop, CAMERA, [300.0, 310.0], period_s=30, end_ago_s=600)  # ten minutes old
    for stat in ("latest", "p95"):
        result = run(pitstop, CAMERA, {"warning": 500}, stat=stat)
        assert result.status is Status.UNKNOWN and result.clear is False
        assert result.summary == f"{CAMERA}: no readings of camera_latency_ms in the last 5 min"
        assert "value" not in result.observed
    assert run(pitstop, CAMERA, {"warning": 500}, silent="critical").status is Status.CRITICAL
    assert run(pitstop, CAMERA, silent="warning").status is Status.WARNING
    assert run(pitstop, CAMERA, stat="latest", window_s=900).observed["value"] == 310.0


def test_an_asset_target_judges_each_of_its_sensors_in_one_result(plant: Pitstop) -> None:
    write(plant, "vms-server/plc_link_up", [1, 1], period_s=30)
    result = run(plant, "vms-server", {"warning": 500}, stat="max")
    assert result.status is Status.WARNING  # the worst: camera past 500 (disk_free_pct silent: unknown)
    assert result.summary.startswith("vms-server: 2 of 3 sensors: ")
    assert result.observed == {"value.camera_latency_ms": 900.0, "value.plc_link_up": 1.0}
    assert "camera_latency_ms max over 5 min 900 ms (warning >= 500 ms)" in result.summary
    assert "no readings of disk_free_pct" in result.summary
    gone = run(plant, "vms-server/fan_rpm")
    assert (gone.status, gone.summary) == (Status.UNKNOWN, "vms-server/fan_rpm: no such sensor in the inventory")


def test_each_entry_has_its_own_levels_and_a_breach_opens_its_own_incident(
    db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    """The guide's levels per sensor, written as one [[health.checks]] entry each, through the
    settings, the monitor and the alert policy (default rule: the first bad round fires)."""
    health = HealthSettings(
        default_checks=False,
        checks=[
            CheckSettings(
                check="reading",
                target=CAMERA,
                params={"stat": "p95", "window_s": 300},
                thresholds={"value": ThresholdSettings(warning=500, critical=2000, clear=400)},
            ),
            CheckSettings(
                check="reading",
                target="vms-server/disk_free_pct",
                params={"stat": "min"},
                thresholds={"value": ThresholdSettings(direction="below", warning=20, critical=10)},
            ),
            CheckSettings(
                check="reading",
                target="vms-server/plc_link_up",
                params={"window_s": 60, "silent": "critical"},
                thresholds={"value": ThresholdSettings(direction="below", critical=1)},
            ),
        ],
    )
    pitstop = build(Settings(data_dir=tmp_path, health=health), clock=clock, db=db)
    load(pitstop)
    write(pitstop, CAMERA, IN_WINDOW, period_s=30)
    write(pitstop, "vms-server/disk_free_pct", [50, 45], period_s=60)
    write(pitstop, "vms-server/plc_link_up", [1, 1], period_s=30)
    levels = {s.target: s.thresholds["value"] for s in pitstop.health.specs()}
    assert levels[CAMERA] == Threshold("value", "above", 500, 2000, None, 400)
    assert levels["vms-server/disk_free_pct"] == Threshold("value", "below", 20, 10)
    labels = pitstop.health.alert_labels("check:reading", f"sensor.threshold:{CAMERA}")
    assert labels["asset"] == "vms-server" and labels["site"] == "north-plant"

    outcome = pitstop.health.run_round()
    by_target = {r.target: r for r in outcome.results}
    assert by_target[CAMERA].status is Status.WARNING
    assert by_target["vms-server/disk_free_pct"].status is Status.HEALTHY
    assert by_target["vms-server/plc_link_up"].status is Status.HEALTHY
    camera = pitstop.incidents.active(f"sensor.threshold:{CAMERA}")
    assert camera is not None and camera.severity is Severity.WARNING
    assert pitstop.incidents.active("sensor.threshold:vms-server/disk_free_pct") is None

    clock.advance(120)  # the link's reports stop: silence is critical for it
    write(pitstop, CAMERA, [300.0] * 10, period_s=10)
    outcome = pitstop.health.run_round()
    by_target = {r.target: r for r in outcome.results}
    assert by_target["vms-server/plc_link_up"].status is Status.CRITICAL
    link = pitstop.incidents.active("sensor.threshold:vms-server/plc_link_up")
    assert link is not None and link.severity is Severity.CRITICAL
    assert by_target[CAMERA].status is Status.WARNING  # 640 and 900 still in the last 5 min: p95 over 500
    assert pitstop.incidents.active(f"sensor.threshold:{CAMERA}") is not None
    pitstop.close()


def test_levels_on_another_metric_or_a_missing_sensor_are_configuration_errors(plant: Pitstop) -> None:
    spec = CheckSpec("reading", CAMERA, thresholds={"camera_latency_ms": Threshold("camera_latency_ms", warning=500)})
    with pytest.raises(ConfigError, match=r"levels go on the metric 'value' \(thresholds.value\), not camera_latency"):
        CheckRunner([spec])
    health = HealthSettings(default_checks=False, checks=[CheckSettings(check="reading", target="vms-server/fan")])
    plant.health.cfg = health
    with pytest.raises(ConfigError, match="asset vms-server has no sensor 'fan'"):
        plant.health.specs()


@pytest.mark.parametrize(
    "params",
    [
        {"stat": "p100"},
        {"stat": "p0"},
        {"stat": "p"},
        {"stat": "p9x"},
        {"stat": "median"},
        {"stat": "LATEST"},
        {"stat": "mean; DROP TABLE readings"},
        {"stat": 95},
        {"stat": None},
        {"stat": ["p95"]},
        {"window_s": 0},
        {"window_s": -300},
        {"window_s": 8 * 86400},
        {"window_s": float("nan")},
        {"window_s": float("inf")},
        {"window_s": "300"},
        {"window_s": True},
        {"silent": "ok"},
        {"silent": None},
        {"silent": "CRITICAL"},
        {"sensor": "camera_latency_ms"},
        {"warning": 500},
    ],
)
def test_malformed_parameters_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="reading check: "):
        ReadingCheck(CAMERA, params=params)


def test_well_formed_parameters_are_taken() -> None:
    check = ReadingCheck(CAMERA, params={"stat": "p99.9", "window_s": 7 * 86400, "silent": "critical"})
    assert (check.percentile, check.window_s, check.silent) == (99.9, 7 * 86400.0, Status.CRITICAL)
