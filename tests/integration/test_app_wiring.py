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
