"""Each shipped profile holds its maintenance guide's KPI table, row for row: the levels below are
the guides' numbers transcribed (README "The guides' KPI tables" shows the same table to users),
and a profile that drifts from them fails here."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from pitstop.config.health import ThresholdSettings
from pitstop.health.base import checks
from pitstop.health.specs import Profile, load_profile


class Row(NamedTuple):
    guide_row: str
    check: str
    metric: str
    direction: str
    warning: float | None
    critical: float | None
    target: str | None = None  # a profile entry's own levels; None: the profile's levels for the check
    params: dict[str, object] | None = None  # what the entry must ask for (a statistic, a window)


VIBRATION = [
    Row("CPU below 70 %", "cpu", "cpu_pct", "above", 70, 90),
    Row("memory below 80 %", "memory", "mem_pct", "above", 80, 95),
    Row("at least 20 % disk free", "disk", "free_pct", "below", 20, 10),
    Row("camera answers within 500 ms", "rtsp", "latency_ms", "above", 500, 2000),
    Row("database queries within 1 s", "postgres", "latency_ms", "above", 1000, 5000),
    Row("no ERROR lines in the last 24 h", "logfile", "errors_window", "above", 1, 100),
    Row(
        "camera feed latency under 500 ms (server's report)",
        "reading",
        "value",
        "above",
        500,
        2000,
        target="monitoring-server/camera_latency_ms",
        params={"stat": "p95", "window_s": 300},
    ),
    Row(
        "at least 15 % disk free on the recording server (its report)",
        "reading",
        "value",
        "below",
        15,
        10,
        target="monitoring-server/disk_free_pct",
    ),
    Row(
        "PLC communication stable (server's report)",
        "reading",
        "value",
        "below",
        None,
        1,
        target="monitoring-server/plc_link_up",
    ),
    # 36 h is 150 % of the daily backup's period: each source is judged against its own schedule
    Row("backup succeeded within 36 h", "backup", "age_pct", "above", 150, 300, target="backups"),
]
HVAC = [
    Row("CPU under 75 %", "cpu", "cpu_pct", "above", 75, 90),
    Row("memory under 80 %", "memory", "mem_pct", "above", 80, 95),
    Row("at least 15 % disk free", "disk", "free_pct", "below", 15, 10),
    Row("database queries within 1 s", "postgres", "latency_ms", "above", 1000, 5000),
    Row("no ERROR lines in the last 24 h", "logfile", "errors_window", "above", 1, 100),
    Row("API process under 500 MB resident", "process_memory", "rss_mb", "above", 500, 1000, target="hvac-twin-api"),
    Row("inference P95 under 100 ms", "predict_latency", "p95_ms", "above", 100, 500),
    Row("backup within 36 h", "backup", "age_pct", "above", 150, 300, target="backups"),
]
GUIDES = {"vibration-monitoring": VIBRATION, "hvac-twin": HVAC}


def levels(profile: Profile, row: Row) -> ThresholdSettings | None:
    if row.target is not None:
        entries = [c for c in profile.checks if c.check == row.check and c.target == row.target]
        assert len(entries) == 1, f"one {row.check} entry for {row.target}"
        for key, value in (row.params or {}).items():
            assert entries[0].params.get(key) == value, (row.guide_row, key)
        return entries[0].thresholds.get(row.metric)
    found = profile.thresholds.get(row.check, {}).get(row.metric)
    if found is not None:
        return found
    default = {t.metric: t for t in checks.get(row.check).default_thresholds}.get(row.metric)
    if default is None:
        return None
    return ThresholdSettings(direction=default.direction, warning=default.warning, critical=default.critical)


@pytest.mark.parametrize(
    ("profile", "row"), [(name, row) for name, rows in GUIDES.items() for row in rows], ids=lambda v: str(v)[:40]
)
def test_the_profile_holds_the_guides_row(profile: str, row: Row) -> None:
    import pitstop.backup.checks
    import pitstop.health.checks  # noqa: F401 - registers the built-ins

    found = levels(load_profile(profile), row)
    assert found is not None, f"{profile}: no levels for {row.guide_row!r}"
    assert (found.direction, found.warning, found.critical) == (row.direction, row.warning, row.critical), (
        f"{profile}: {row.guide_row!r} is {found.direction} {found.warning}/{found.critical}"
    )


def test_every_check_a_profile_names_is_registered() -> None:
    import pitstop.backup.checks
    import pitstop.health.checks  # noqa: F401

    for name in GUIDES:
        profile = load_profile(name)
        for entry in profile.checks:
            assert entry.check in checks.names(), (name, entry.check)
        for check in profile.thresholds:
            assert check in checks.names(), (name, check)
