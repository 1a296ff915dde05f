"""Maintenance from the command line: procedures, work orders, planning, the log, the knowledge base, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitstop.cli.main import app
from tests.conftest import DEMO_INVENTORY
from tests.e2e.test_cli import pitstop


def test_a_technician_day_on_the_command_line(tmp_path: Path) -> None:
    cli = CliRunner()

    def run(*args: str) -> str:
        done = cli.invoke(app, ["--data-dir", str(tmp_path), *args], env={"COLUMNS": "200"})
        assert done.exit_code == 0, f"{args}: {done.output} {done.exception!r}"
        return done.output

    run("db", "upgrade")
    run("assets", "load", str(DEMO_INVENTORY))
    listing = json.loads(run("procedures", "list", "--json"))
    assert {p["name"] for p in listing} >= {"daily-health-check", "plc-inspection", "camera-lens-inspection"}
    assert "Cabinet temperature" in run("procedures", "show", "plc-inspection")
    run("procedures", "enable", "weekly-drift-review")
    assert "weekly-drift-review" in run("procedures", "schedules")
    # a checklist with one item out of limits opens one work order
    out = run(
        "procedures",
        "run",
        "emergency-restore",
        "--pass",
        "declare",
        "--fail",
        "assess",
        "--pass",
        "restore",
        "--pass",
        "verify",
        "--pass",
        "stand-down",
        "--by",
        "tom",
    )
    assert "failed" in out
    orders = json.loads(run("workorders", "list", "--json"))
    assert [o["key"] for o in orders] == ["procedure.emergency-restore.assess"]
    oid = str(orders[0]["id"])
    assert "updated work order" in run("wo", "open", "--key", "procedure.emergency-restore.assess", "--title", "again")
    run("windows", "add", "night", "site=*", "--days", "daily", "--from", "22:00", "--to", "02:00")
    run("plan", "capacity", "night", "2")
    planned = run("plan", "--horizon", "3d")
    assert "placed 1 order(s)" in planned
    run("wo", "start", oid)
    assert "done" in run("wo", "close", oid, "--hours", "1.5", "--part", "fuse 2A", "--note", "replaced fuse")
    assert "verified" in run("wo", "verify", oid, "--confirm")
    run("log", "add", "backup", "nightly backup", "--result", "ok", "--by", "backup")
    exported = tmp_path / "log.csv"
    run("log", "list", "--format", "csv", "--output", str(exported))
    text = exported.read_text()
    assert text.startswith("id,at,kind") and "replaced fuse" in text and "nightly backup" in text
    assert json.loads(run("log", "list", "--format", "json", "--kind", "backup"))[0]["actor"] == "backup"
    assert "storage-space" in run("kb", "search", "disk full recordings")
    run("kb", "lesson", "disk.low:/data", "Retention stopped after upgrade")
    assert "lesson-1-disk-low" in run("kb", "promote", "1")
    report = tmp_path / "report.html"
    run("report", "monthly", "--site", "north-plant", "--output", str(report))
    page = report.read_text()
    assert "Maintenance report" in page and "north-plant" in page and "<script" not in page


@pytest.mark.slow
def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    assert pitstop("db", "upgrade", cwd=tmp_path).returncode == 0
    for args in (
        ("procedures", "run", "nope"),
        ("plan", "--horizon", "soon"),
        ("report", "monthly", "--month", "March", "--output", str(tmp_path / "x.pdf")),
    ):
        done = pitstop(*args, cwd=tmp_path)
        assert done.returncode != 0, args
        assert done.stderr.startswith("error:") and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
