"""On-call schedules (issue 17, item 3): rotation, hand-offs in a time zone, overrides, iCal; and
readable errors for wrong `[oncall]` settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pitstop.config import load_settings
from pitstop.config.oncall import ScheduleSettings
from pitstop.errors import ConfigError, InvalidInput
from pitstop.oncall.schedule import Schedule, Shift


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def lisbon(overrides: list[dict[str, str]] | None = None) -> Schedule:
    # Lisbon moves from WET (UTC+0) to WEST (UTC+1) at 01:00 UTC on Sunday 2026-03-29.
    cfg = ScheduleSettings(
        rotation=["ana", "ben"],
        timezone="Europe/Lisbon",
        start="2026-03-23",
        handoff="08:00",
        interval_days=7,
        overrides=overrides or [],
    )
    return Schedule("maintenance", cfg)


def test_hand_off_stays_at_local_time_across_the_dst_change() -> None:
    s = lisbon()
    assert s.handoff_at(0) == utc("2026-03-23T08:00")  # 08:00 WET
    assert s.handoff_at(1) == utc("2026-03-30T07:00")  # 08:00 WEST: the shift was 167 hours
    assert s.primary_at(utc("2026-03-30T06:59")) == "ana"
    assert s.primary_at(utc("2026-03-30T07:00")) == "ben"
    assert s.primary_at(utc("2026-04-06T06:59")) == "ben"
    assert s.primary_at(utc("2026-04-06T07:00")) == "ana"
    assert s.primary_at(utc("2026-03-23T07:59")) == "ben"  # before the first hand-off: the one before
    assert s.secondary_at(utc("2026-03-25T12:00")) == "ben"


def test_an_override_takes_the_shift_and_the_schedule_shows_it() -> None:
    s = lisbon([{"contact": "ben", "start": "2026-03-28T20:00:00+00:00", "end": "2026-03-29T20:00:00+00:00"}])
    assert s.primary_at(utc("2026-03-29T12:00")) == "ben"
    assert s.secondary_at(utc("2026-03-29T12:00")) == "ana"  # the next who is not the primary
    assert s.primary_at(utc("2026-03-29T20:00")) == "ana"
    assert s.shifts(utc("2026-03-23T00:00"), utc("2026-04-06T12:00")) == [
        Shift(utc("2026-03-23T00:00"), utc("2026-03-23T08:00"), "ben"),
        Shift(utc("2026-03-23T08:00"), utc("2026-03-28T20:00"), "ana"),
        Shift(utc("2026-03-28T20:00"), utc("2026-03-29T20:00"), "ben", override=True),
        Shift(utc("2026-03-29T20:00"), utc("2026-03-30T07:00"), "ana"),
        Shift(utc("2026-03-30T07:00"), utc("2026-04-06T07:00"), "ben"),
        Shift(utc("2026-04-06T07:00"), utc("2026-04-06T12:00"), "ana"),
    ]


def test_daily_rotation_in_new_york_across_the_autumn_change() -> None:
    # New York leaves EDT (UTC-4) for EST (UTC-5) at 06:00 UTC on Sunday 2026-11-01.
    cfg = ScheduleSettings(
        rotation=["a", "b", "c"],
        timezone="America/New_York",
        start="2026-10-30",
        handoff="09:30",
        interval_days=1,
    )
    s = Schedule("night", cfg)
    starts = [shift.start for shift in s.shifts(utc("2026-10-31T00:00"), utc("2026-11-03T00:00"))][1:]
    assert starts == [utc("2026-10-31T13:30"), utc("2026-11-01T14:30"), utc("2026-11-02T14:30")]
    assert [s.primary_at(t) for t in starts] == ["b", "c", "a"]


def test_ical_export_has_one_event_per_shift() -> None:
    s = lisbon([{"contact": "ben", "start": "2026-03-28T20:00:00+00:00", "end": "2026-03-29T20:00:00+00:00"}])
    text = s.ical(
        utc("2026-03-23T08:00"), utc("2026-04-06T07:00"), {"ana": "Silva, Ana", "ben": "Ben"}, now=utc("2026-03-01")
    )
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert text.count("BEGIN:VEVENT") == 4
    assert "DTSTART:20260330T070000Z" in text and "DTEND:20260406T070000Z" in text
    assert "SUMMARY:On call (maintenance): Silva\\, Ana\r\n" in text
    assert "SUMMARY:On call (maintenance): Ben (override)" in text
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))


def test_a_schedule_span_is_bounded() -> None:
    s = lisbon()
    with pytest.raises(InvalidInput, match="at most 400 days"):
        s.shifts(utc("2026-01-01T00:00"), utc("2030-01-01T00:00"))
    with pytest.raises(InvalidInput):
        s.shifts(utc("2026-01-02T00:00"), utc("2026-01-01T00:00"))


GOOD = """
[health.alerts.channels.team]
type = "webhook"
url = "http://127.0.0.1:9/team"
[oncall.contacts.ana]
name = "Ana"
webhook = "http://127.0.0.1:9/ana"
[oncall.schedules.maintenance]
rotation = ["ana"]
start = 2026-01-05
timezone = "Europe/Lisbon"
[oncall.policies.plant]
schedule = "maintenance"
steps = [{ notify = "primary" }, { notify = "channel:team", after_minutes = 10 }]
"""


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('timezone = "Europe/Lisbon"', 'timezone = "Mars/Olympus"'), "unknown time zone 'Mars/Olympus'"),
        (('rotation = ["ana"]', 'rotation = ["ana", "zoe"]'), "schedule 'maintenance' names unknown contact(s): zoe"),
        (('notify = "primary"', 'notify = "boss"'), "step notify 'boss' is not primary, secondary"),
        (('"channel:team"', '"channel:nobody"'), "oncall policies name unknown alert channel(s): nobody"),
        (('webhook = "http://127.0.0.1:9/ana"', 'phone = "+351910000001"'), "has a phone but [oncall.sms]"),
        (('name = "Ana"', 'name = "Ana"\nemail = "not an address"'), "email 'not an address' is not an address"),
        (("start = 2026-01-05", 'start = 2026-01-05\nhandoff = "25:00"'), "hand-off time '25:00' is not HH:MM"),
        (('schedule = "maintenance"', 'schedule = "weekend"'), "unknown schedule 'weekend'"),
        (("after_minutes = 10", "after_minutes = -1"), "oncall.policies.plant.steps.1.after_minutes"),
    ],
)
def test_wrong_oncall_settings_are_one_readable_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: tuple[str, str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.toml").write_text(GOOD)
    assert load_settings(tmp_path / "good.toml").oncall.policies["plant"].steps[1].after_minutes == 10
    (tmp_path / "bad.toml").write_text(GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "bad.toml")
    message = str(caught.value)
    assert expected in message and "\n" not in message and "Value error" not in message


def test_an_override_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="must end after it starts"):
        lisbon([{"contact": "ben", "start": "2026-03-29T20:00:00+00:00", "end": "2026-03-29T20:00:00+00:00"}])


def test_shift_lengths_follow_the_wall_clock() -> None:
    s = lisbon()
    assert s.handoff_at(1) - s.handoff_at(0) == timedelta(hours=167)
    assert s.handoff_at(2) - s.handoff_at(1) == timedelta(hours=168)
