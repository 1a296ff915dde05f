"""The composition root schedules the loops that make pitstop run by itself."""

from __future__ import annotations

from pitstop.app import Pitstop


def test_serve_runs_health_scoring_and_heartbeat_jobs(demo_pitstop: Pitstop) -> None:
    jobs = demo_pitstop.scheduler.jobs
    assert {"heartbeat", "health", "scoring"} <= set(jobs)
    ran = demo_pitstop.scheduler.tick()
    assert "scoring" in ran
    outcomes = {r.job: r.outcome for r in demo_pitstop.jobs.recent()}
    assert outcomes["scoring"] == "ok"
    assert outcomes["heartbeat"] == "ok"


def test_serve_runs_its_background_threads_supervised(demo_pitstop: Pitstop) -> None:
    """Issue 15, item 2: the spool flusher, the incident feed and the scheduler (ticks and lease) run on
    supervised threads in `pitstop serve`; /ready lists each, and the scheduler's first tick runs the jobs."""
    import time

    from fastapi.testclient import TestClient

    from pitstop.api import create_app

    with TestClient(create_app(demo_pitstop, run_background=True)) as client:
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline and not any(r.job == "heartbeat" for r in demo_pitstop.jobs.recent()):
            time.sleep(0.1)
        checks = client.get("/ready").json()["checks"]
    assert {k: v for k, v in checks.items() if k.startswith("background:")} == {
        "background:incident-feed": "ok",
        "background:ingest-spool": "ok",
        "background:scheduler": "ok",
        "background:scheduler-lease": "ok",
    }
    assert any(r.job == "heartbeat" and r.outcome == "ok" for r in demo_pitstop.jobs.recent())
    assert not demo_pitstop.scheduler.is_leader  # stopping released the lease for a standby
