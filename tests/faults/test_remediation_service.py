"""A service of the test's own: killed -> restarted and verified; crashing on every start -> tried
up to its budget, escalated once, never restarted again until a person resets the breaker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from pitstop.incidents import IncidentState
from pitstop.testing.clock import FrozenClock
from tests.faults.conftest import Service, make_pitstop, wait_for

INTERVAL_S = 2.0


def settings(service: Service, **rule: object) -> dict[str, object]:
    return {
        "health": {
            "default_checks": False,
            "interval_s": INTERVAL_S,
            "checks": [{"check": "http", "target": service.url, "params": {"timeout_s": 1}}],
        },
        "remediation": {
            "verify_timeout_s": 3.0,
            "verify_interval_s": 0.05,
            "rules": [
                {
                    "match": "http.failing:*",
                    "action": "restart_service",
                    "params": {"manager": "script", "command": service.command, "grace_s": 0.1},
                    **rule,
                }
            ],
        },
    }


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def test_killed_service_is_restarted_and_verified_within_two_intervals(
    sandbox: Path, clock: FrozenClock, record: Callable[..., None]
) -> None:
    service = Service(sandbox)
    pitstop = make_pitstop(sandbox, clock, **settings(service))
    try:
        service.start()
        assert wait_for(lambda: healthy(service.url))
        service.kill()
        fault = time.perf_counter()
        round_ = pitstop.health.run_round()  # the check that sees it
        [incident] = pitstop.incidents.list(state=IncidentState.OPEN)
        assert incident.key == f"http.failing:{service.url}" and round_.results[0].status.value == "critical"
        [rid] = pitstop.remediation.run_pass()
        took = time.perf_counter() - fault
        done = pitstop.remediation.store.get(rid)
        assert done.state == "healed", done.result
        assert took < 2 * INTERVAL_S, took
        assert healthy(service.url) and service.starts == 2
        assert pitstop.incidents.get(incident.id).state is IncidentState.RESOLVED
        steps = {s.step: s for s in pitstop.remediation.store.steps(rid)}
        assert list(steps) == ["seen", "planned", "applied", "verified", "resolved"]
        assert "check http: healthy" in steps["verified"].detail
        [logged] = pitstop.maintenance.log.entries(kind="remediation")
        assert logged.ref == f"remediation:{rid}" and logged.result == "healed"
        record(fault="service killed", expected="heal", outcome=done.state, seconds=round(took, 3))
    finally:
        service.kill()
        pitstop.close()


def test_crash_looping_service_is_tried_to_its_budget_then_escalated_once(
    sandbox: Path, clock: FrozenClock, record: Callable[..., None]
) -> None:
    service = Service(sandbox, mode="crash")
    pitstop = make_pitstop(
        sandbox, clock, **settings(service, max_attempts=3, cooldown_s=30, verify_timeout_s=0.5, escalate_to="log")
    )
    try:
        service.start()
        pitstop.health.run_round()
        [incident] = pitstop.incidents.list(state=IncidentState.OPEN)
        for _ in range(8):  # the engine keeps running; only three attempts may happen
            pitstop.remediation.run_pass()
            clock.advance(31)
            pitstop.health.run_round()
        rows = pitstop.remediation.store.for_incident(incident.id)
        assert [r.state for r in rows] == ["failed"] * 3
        assert service.starts == 1 + 3  # the first start, then exactly the budget
        escalations = [s for r in rows for s in pitstop.remediation.store.steps(r.id) if s.step == "escalated"]
        assert len(escalations) == 1 and escalations[0].ok
        assert "tried 3 time(s)" in escalations[0].output and "pitstop heal reset" in escalations[0].output
        [breaker] = pitstop.remediation.store.breakers()
        assert (breaker.action, breaker.target) == ("restart_service", service.url)
        assert pitstop.incidents.get(incident.id).state is IncidentState.OPEN  # left for a person
        [preview] = pitstop.remediation.preview()
        assert preview.decision == "blocked"
        record(fault="service crashes on every start", expected="escalate", outcome="escalated", seconds=None)
    finally:
        service.kill()
        pitstop.close()
