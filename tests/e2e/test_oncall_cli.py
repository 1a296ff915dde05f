"""`pitstop oncall now|schedule|contacts|escalations` (issue 17, item 3), and their errors on hostile
arguments: one line, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitstop.cli.main import app
from pitstop.errors import PitstopError

CONFIG = """
data_dir = "{data}"
[oncall]
link_secret = "a-test-secret-of-enough-length"
[oncall.contacts.ana]
name = "Ana Silva"
webhook = "http://127.0.0.1:9/ana"
[oncall.contacts.ben]
name = "Ben Okafor"
webhook = "http://127.0.0.1:9/ben"
webhook_format = "slack"
[oncall.schedules.maintenance]
rotation = ["ana", "ben"]
timezone = "Europe/Lisbon"
start = 2026-03-23
handoff = "08:00"
[[oncall.schedules.maintenance.overrides]]
contact = "ben"
start = 2026-03-28T20:00:00Z
end = 2026-03-29T20:00:00Z
"""


Run = Callable[..., tuple[int, str]]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    data = tmp_path / "data"
    config = tmp_path / "pitstop.toml"
    config.write_text(CONFIG.format(data=data))

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--config", str(config), *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            assert isinstance(result.exception, PitstopError), f"traceback: {result.exception!r}"
            return result.exception.exit_code, str(result.exception)
        return result.exit_code, result.output

    assert invoke("db", "upgrade")[0] == 0
    return invoke


def test_now_schedule_and_contacts(run: Run) -> None:
    code, output = run("oncall", "now", "--at", "2026-03-29T12:00:00+00:00", "--json")
    assert code == 0, output
    (now,) = json.loads(output)["on_call"]
    assert now == {
        "schedule": "maintenance",
        "primary": "ben",
        "secondary": "ana",
        "override": True,
        "until": "2026-03-29T20:00:00+00:00",
    }
    code, output = run("oncall", "now", "--at", "2026-03-29T12:00:00+00:00")
    assert code == 0 and "Ben Okafor (ben)" in output and "(override)" in output
    code, output = run("oncall", "schedule", "maintenance", "--from", "2026-03-23T09:00:00+01:00", "--days", "8")
    assert code == 0, output
    assert "Mon 2026-03-30 08:00" in output  # local hand-off time after the change to summer time
    code, output = run("oncall", "schedule", "maintenance", "--from", "2026-03-23T08:00:00Z", "--days", "7", "--json")
    shifts = json.loads(output)["shifts"]
    assert [s["contact"] for s in shifts] == ["ana", "ben", "ana", "ben"]  # ben from 07:00Z (08:00 summer time)
    assert shifts[-1]["start"] == "2026-03-30T07:00:00+00:00"
    code, output = run("oncall", "schedule", "maintenance", "--from", "2026-03-23T08:00:00Z", "--ical")
    assert code == 0 and output.startswith("BEGIN:VCALENDAR") and "Ben Okafor (override)" in output
    code, output = run("oncall", "contacts", "--json")
    assert json.loads(output) == [
        {"contact": "ana", "name": "Ana Silva", "email": None, "phone": None, "webhook": True},
        {"contact": "ben", "name": "Ben Okafor", "email": None, "phone": None, "webhook": True},
    ]
    assert "127.0.0.1:9" not in output  # webhook URLs are secrets
    code, output = run("oncall", "escalations", "--all", "--json")
    assert (code, json.loads(output)) == (0, [])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("oncall", "schedule", "weekend"), "no on-call schedule named 'weekend'"),
        (("oncall", "schedule", "maintenance", "--from", "yesterday"), "is not ISO 8601"),
        (("oncall", "schedule", "maintenance", "--from", "2026-03-23T08:00"), "needs a UTC offset"),
        (("oncall", "now", "--at", "0001-01-01T00:00:00+00:00"), "from 1970"),
        (("oncall", "schedule", "\x00../etc"), "no on-call schedule named"),
    ],
)
def test_hostile_arguments_get_one_line_errors(run: Run, args: tuple[str, ...], expected: str) -> None:
    code, output = run(*args)
    assert code != 0 and expected in output and "Traceback" not in output


def test_days_out_of_range_is_refused(run: Run) -> None:
    code, output = run("oncall", "schedule", "maintenance", "--days", "100000")
    assert code == 2 and "less than or equal to 366" in output
