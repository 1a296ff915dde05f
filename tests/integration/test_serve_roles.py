"""`pitstop serve --role`: what a process runs follows its roles; bad roles are refused with the reason."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pitstop.api import create_app
from pitstop.app import Pitstop
from pitstop.cli.main import app


def test_an_unknown_role_is_refused(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "serve", "--role", "api,cook"], env={"COLUMNS": "160"})
    assert done.exit_code == 2
    assert "unknown role cook" in done.output and "api, ingest, worker, scheduler" in done.output


def test_the_worker_role_needs_a_fleet(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "serve", "--role", "worker"], env={"COLUMNS": "160"})
    assert done.exit_code == 2
    assert "[fleet]" in done.output


def test_without_the_api_role_only_the_system_routes_answer(demo_pitstop: Pitstop) -> None:
    with TestClient(create_app(demo_pitstop, roles={"scheduler"})) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/assets").status_code == 404
        assert client.get("/ui/").status_code == 404


def test_background_parts_start_by_role(demo_pitstop: Pitstop) -> None:
    started = set()
    try:
        demo_pitstop.start_background(frozenset({"api"}))
        started = set(demo_pitstop.supervisor.states())
    finally:
        demo_pitstop.stop_background()
    assert "background:ingest-spool" in started  # HTTP readings are spooled where they arrive
    assert "background:incident-feed" not in started  # the feed goes out from the scheduler's process
    try:
        demo_pitstop.start_background(frozenset({"scheduler"}))
        started = set(demo_pitstop.supervisor.states())
    finally:
        demo_pitstop.stop_background()
    assert "background:incident-feed" in started
