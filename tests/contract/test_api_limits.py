"""Hostile requests to the API get a clear 4xx in the standard error shape: month reports out of range,
bodies over `api.max_body_bytes` on every route (declared, streamed, and on the /predict fast path)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pitstop.app import Pitstop
from pitstop.cli.main import app as cli_app
from pitstop.core.types import Role, Severity
from pitstop.errors import InvalidInput
from pitstop.incidents import IncidentState
from tests.conftest import auth
from tests.contract.test_predict_fast_path import NAME, rows  # noqa: F401 - the fixture
from tests.integration.test_web_pages import csrf_of, login

LIMIT = 4096


def too_large(response: object) -> None:
    assert response.status_code == 413, response.text[:300]  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "request.too_large" and str(LIMIT) in error["message"]


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


@pytest.fixture
def small(demo_pitstop: Pitstop) -> Pitstop:
    demo_pitstop.settings.api.max_body_bytes = LIMIT
    return demo_pitstop


def chunks(size: int) -> Iterator[bytes]:
    """A body without Content-Length (chunked)."""
    sent = 0
    while sent < size:
        yield b" " * 1024
        sent += 1024


def test_every_route_limits_the_body(client: TestClient, small: Pitstop, keys: dict[Role, str]) -> None:
    """Issue 15, item 11: a body over api.max_body_bytes is a 413 on any route, declared or streamed, and
    changes nothing."""
    item, _ = small.incidents.open_or_update("disk.low:/data", severity=Severity.WARNING, title="disk low")
    headers = {**auth(keys[Role.OPERATOR]), "Content-Type": "application/json"}
    big = b'{"note": "' + b"x" * (LIMIT * 4) + b'"}'
    too_large(client.post(f"/api/incidents/{item.id}/ack", content=big, headers=headers))
    too_large(client.post(f"/api/incidents/{item.id}/ack", content=chunks(LIMIT * 4), headers=headers))
    too_large(client.post("/api/workorders", content=big, headers=headers))
    too_large(client.request("GET", "/api/assets", content=big, headers=headers))  # a body where none is expected
    too_large(client.post("/api/incidents/1/ack", content=big))  # before the key is even looked at
    assert small.incidents.get(item.id).state is IncidentState.OPEN
    # under the limit nothing changes
    ok = client.post(f"/api/incidents/{item.id}/ack", json={"note": "x" * 100}, headers=auth(keys[Role.OPERATOR]))
    assert ok.status_code == 200, ok.text
    assert small.incidents.get(item.id).state is IncidentState.ACKNOWLEDGED


def test_readings_keep_their_413(client: TestClient, small: Pitstop, keys: dict[Role, str]) -> None:
    """Issue 15, item 11: /api/readings keeps its documented 413, now from the one body limit."""
    headers = {**auth(keys[Role.OPERATOR]), "Content-Type": "text/csv"}
    too_large(client.post("/api/readings", content=b"ts,asset,sensor,value\n" * 1000, headers=headers))
    too_large(client.post("/api/readings", content=chunks(LIMIT * 2), headers=headers))
    assert small.readings.count() == 0


def test_dashboard_forms_are_limited_too(client: TestClient, small: Pitstop, keys: dict[Role, str]) -> None:
    """Issue 15, item 11: the dashboard is behind the same limit."""
    login(client, keys[Role.OPERATOR])
    token = csrf_of(client.get("/ui/").text)
    response = client.post("/ui/health/run", data={"csrf": token, "pad": "x" * LIMIT * 2}, follow_redirects=False)
    too_large(response)


def test_predict_bodies_are_limited_on_the_fast_path(
    client: TestClient,
    small: Pitstop,
    keys: dict[Role, str],
    rows: list[list[float]],  # noqa: F811 - the fixture
) -> None:
    """Issue 15, item 11: /predict, answered ahead of the framework, takes no body over the limit either."""
    headers = auth(keys[Role.VIEWER])
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers).status_code == 200  # key verified
    many = rows * 200
    too_large(client.post(f"/predict/{NAME}", json={"rows": many}, headers=headers))
    body = json.dumps({"rows": many}).encode()
    streamed = client.post(
        f"/predict/{NAME}",
        content=(body[i : i + 1000] for i in range(0, len(body), 1000)),
        headers={**headers, "Content-Type": "application/json"},
    )
    too_large(streamed)
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers).status_code == 200
