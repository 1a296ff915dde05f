"""Hostile requests to the API get a clear 4xx in the standard error shape: month reports out of range."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pitstop.cli.main import app as cli_app
from pitstop.core.types import Role
from pitstop.errors import InvalidInput
from tests.conftest import auth


@pytest.mark.parametrize("month", ["9999-12", "0000-01", "2026-13", "2026-00", "10000-01", "0001-01"])
def test_a_month_report_out_of_range_is_a_clear_422(client: TestClient, keys: dict[Role, str], month: str) -> None:
    """Issue 15, item 8: a month the calendar (or the report) cannot hold is a 422 naming the month, not a 500."""
    response = client.get("/api/maintenance/report", params={"month": month}, headers=auth(keys[Role.VIEWER]))
    assert response.status_code == 422, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "request.invalid"
    assert any(d["loc"] == ["query", "month"] for d in error["detail"]), error


@pytest.mark.parametrize("month", ["1970-01", "2026-02", "9998-12"])
def test_the_months_at_the_edges_of_the_range_report(client: TestClient, keys: dict[Role, str], month: str) -> None:
    """Issue 15, item 8: every month inside the accepted range gives its report."""
    response = client.get("/api/maintenance/report", params={"month": month}, headers=auth(keys[Role.VIEWER]))
    assert response.status_code == 200, response.text[:300]
    assert f"Maintenance report {month}" in response.text


def test_the_cli_month_report_takes_the_same_validation(tmp_path: Path) -> None:
    """Issue 15, item 8: `pitstop report monthly --month 9999-12` is refused as bad input, not a crash."""
    cli = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    assert cli.invoke(cli_app, [*base, "db", "upgrade"]).exit_code == 0
    for month in ("9999-12", "2026-13", "0000-01"):
        done = cli.invoke(cli_app, [*base, "report", "monthly", "--month", month, "--output", str(tmp_path / "r.html")])
        assert isinstance(done.exception, InvalidInput), (month, repr(done.exception))
        assert "YYYY-MM" in str(done.exception)
