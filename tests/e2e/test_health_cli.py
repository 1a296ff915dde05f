"""`pitstop check` exit codes for cron, and the incidents / silence / windows commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from getpass import getuser
from pathlib import Path

import pytest

from pitstop.app import build
from pitstop.cli.main import main
from pitstop.config import load_settings
from pitstop.core.types import Severity
from tests.e2e.test_cli import pitstop

HEALTHY = """
[health]
default_checks = false
[[health.checks]]
check = "disk"
target = "{dir}"
thresholds = {{ free_pct = {{ direction = "below", warning = 0.0001, critical = 0.00001 }} }}
[[health.checks]]
check = "database"
"""

CRITICAL = """
[health]
default_checks = false
[[health.checks]]
check = "disk"
target = "{dir}"
asset = "vms-server"
thresholds = {{ free_pct = {{ direction = "below", warning = 100.1, critical = 100 }} }}
"""


def test_check_exit_codes_and_json(tmp_path: Path) -> None:
    assert pitstop("db", "upgrade", cwd=tmp_path).returncode == 0
    (tmp_path / "pitstop.toml").write_text(HEALTHY.format(dir=tmp_path))
    ok = pitstop("check", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "installation: healthy" in ok.stdout
    (tmp_path / "pitstop.toml").write_text(CRITICAL.format(dir=tmp_path))
    bad = pitstop("check", "--json", cwd=tmp_path)
    assert bad.returncode == 2, bad.stderr
    report = json.loads(bad.stdout)
    assert report["status"] == "critical"
    (asset,) = report["assets"]
    assert asset["name"] == "vms-server" and asset["status"] == "critical"
    assert any("free_pct" in reason for reason in asset["reasons"])
    assert report["installation"]["recommendations"]
    (tmp_path / "pitstop.toml").write_text('[health]\ninclude = ["no-such-profile"]\n')
    wrong = pitstop("check", cwd=tmp_path)
    assert wrong.returncode == 2 and "no profile 'no-such-profile'" in wrong.stderr


class InProcess:
    """`pitstop ...` through main() in this process (the subprocess start-up dominates otherwise)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.capsys, self.monkeypatch = capsys, monkeypatch

    def __call__(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        self.monkeypatch.chdir(cwd)
        self.monkeypatch.setattr(sys, "argv", ["pitstop", *args])
        self.monkeypatch.setenv("COLUMNS", "200")
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self.capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def test_incidents_silences_and_windows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("PITSTOP_")]:
        monkeypatch.delenv(name)
    pitstop = InProcess(capsys, monkeypatch)
    assert pitstop("db", "upgrade", cwd=tmp_path).returncode == 0
    app = build(load_settings(overrides={"data_dir": tmp_path / "pitstop-data"}))
    app.incidents.open_or_update("disk.low:/data", severity=Severity.CRITICAL, title="disk low on /data")
    app.close()
    listing = pitstop("incidents", "list", "--json", cwd=tmp_path)
    assert [i["key"] for i in json.loads(listing.stdout)] == ["disk.low:/data"]
    assert pitstop("incidents", "ack", "disk.low:/data", "--note", "on it", "--by", "ana", cwd=tmp_path).returncode == 0
    resolved = pitstop("incidents", "resolve", "disk.low:/data", "--reason", "cleaned up", cwd=tmp_path)
    assert resolved.returncode == 0, resolved.stderr
    shown = pitstop("incidents", "show", "disk.low:/data", cwd=tmp_path).stdout
    assert "acknowledged" in shown and "ana" in shown and "resolved" in shown
    timeline = json.loads(pitstop("incidents", "show", "disk.low:/data", "--json", cwd=tmp_path).stdout)["timeline"]
    assert [(e["action"], e["actor"]) for e in timeline][1:] == [
        ("acknowledged", "ana"),
        ("resolved", "cli:" + getuser()),
    ]
    missing = pitstop("incidents", "ack", "disk.low:/nope", cwd=tmp_path)
    assert missing.returncode == 1 and "no unresolved incident" in missing.stderr

    added = pitstop("silence", "add", "asset=pump-1", "--for", "2h", "--reason", "bearing swap", cwd=tmp_path)
    assert added.returncode == 0 and added.stdout.startswith("silence 1 until")
    assert "bearing swap" in pitstop("silence", "list", cwd=tmp_path).stdout
    no_reason = pitstop("silence", "add", "asset=pump-1", "--for", "2h", "--reason", " ", cwd=tmp_path)
    assert no_reason.returncode == 2 and "needs a reason" in no_reason.stderr
    assert pitstop("silence", "expire", "1", cwd=tmp_path).returncode == 0
    assert json.loads(pitstop("silence", "list", "--json", cwd=tmp_path).stdout) == []

    window = pitstop(
        "windows",
        "add",
        "sunday",
        "site=north-plant",
        "--days",
        "sun",
        "--from",
        "02:00",
        "--to",
        "04:00",
        "--tz",
        "Europe/Berlin",
        cwd=tmp_path,
    )
    assert window.returncode == 0, window.stderr
    assert "sun 02:00-04:00 Europe/Berlin" in window.stdout
    (listed,) = json.loads(pitstop("windows", "list", "--json", cwd=tmp_path).stdout)
    assert listed["matchers"] == {"site": "north-plant"} and listed["weekdays"] == ["sun"]
    bad_tz = pitstop("windows", "add", "x", "site=a", "--tz", "Mars/Olympus", cwd=tmp_path)
    assert bad_tz.returncode == 2 and "unknown time zone" in bad_tz.stderr
