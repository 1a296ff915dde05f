"""The knowledge base on SQLite and PostgreSQL, lessons learned, emergencies (search: test_kb_search.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop.app import Pitstop
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput
from pitstop.maintenance import Answer
from pitstop.maintenance.kb import parse_entry
from pitstop.testing.clock import FrozenClock

SHIPPED = {
    "storage-space",
    "database-degradation",
    "camera-connection",
    "plc-communication",
    "high-memory",
    "slow-inference",
    "false-drift-alerts",
    "api-not-responding",
    # the faults pitstop detects
    "asset-anomaly",
    "bearing-wear",
    "coil-fouling",
    "stuck-valve",
    "sensor-drift",
    "frozen-sensor",
    "sensor-out-of-limits",
    "readings-stopped",
    "scheduler-stalled",
    "high-cpu",
    "log-errors",
    "pending-updates",
    "network-interface",
    "mqtt-broker",
    "model-accuracy",
    "backup-problems",
}


def test_search_finds_the_shipped_entries(pitstop: Pitstop) -> None:
    kb = pitstop.maintenance.kb
    assert {e.slug for e in kb.entries()} == SHIPPED
    assert kb.search("recordings retention")[0].slug == "storage-space"
    assert kb.search("vacuum bloat")[0].slug == "database-degradation"
    assert kb.search("modbus register")[0].slug == "plc-communication"
    assert kb.search("disk full recordings")[0].slug == "storage-space"
    assert kb.search("rtsp") and kb.search("rtsp")[0].slug == "camera-connection"
    assert kb.search("xyzzy plugh") == []
    assert kb.search("   ") == []


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=st.text(max_size=80))
def test_any_query_is_safe(pitstop: Pitstop, query: str) -> None:
    assert isinstance(pitstop.maintenance.kb.search(query), list)


def test_user_entries_replace_and_join_the_shipped_ones(pitstop: Pitstop) -> None:
    user = pitstop.settings.data_dir / "kb"
    user.mkdir(parents=True)
    (user / "chiller-scaling.md").write_text(
        "---\ntitle: Chiller scaling\nissue_keys: [asset.anomaly]\ntags: [hvac]\n---\nDescale the condenser tubes.\n"
    )
    kb = pitstop.maintenance.kb
    assert kb.sync() == len(SHIPPED) + 1
    assert kb.search("descale condenser")[0].slug == "chiller-scaling"
    assert kb.sync() == 0


def test_recommendations_follow_issue_keys(pitstop: Pitstop) -> None:
    m = pitstop.maintenance
    assert [e.slug for e in m.kb.recommendations_for("disk.low:/var/lib/vms")] == ["storage-space"]
    assert [e.slug for e in m.kb.recommendations_for("postgres.unhealthy")] == ["database-degradation"]
    assert m.kb.recommendations_for("nothing.here") == []
    assert m.recommend("memory.high")[0].startswith("Knowledge base: High memory use")
    # the diagnostics report's hook: built-in advice first, then the knowledge base
    advice = pitstop.health.recommend("disk.low")
    assert len(advice) == 2 and advice[1] == "Knowledge base: Storage space running out (pitstop kb show storage-space)"


def test_lessons_become_entries(pitstop: Pitstop, clock: FrozenClock) -> None:
    kb = pitstop.maintenance.kb
    incident, _ = pitstop.incidents.open_or_update("disk.low:/data", severity=Severity.CRITICAL, title="disk")
    pitstop.incidents.resolve(incident.key, reason="freed", actor="tom")
    lesson = kb.add_lesson(incident.key, "The retention job had stopped after the upgrade.", author="tom")
    entry = kb.lesson_to_entry(lesson.id, slug="storage-space")
    assert "retention job had stopped" in entry.body and "## Lessons learned" in entry.body
    assert kb.lessons(incident.key)[0].kb_slug == "storage-space"
    assert kb.search("stopped upgrade")[0].slug == "storage-space"
    kb.sync()  # a lesson-updated entry is not overwritten by the shipped file
    assert "retention job had stopped" in kb.get("storage-space").body
    clock.advance(timedelta(hours=1))
    other = kb.add_lesson("camera.down:cam-9", "PoE budget of the switch was exceeded.", author="ann")
    new = kb.lesson_to_entry(other.id, title="PoE budget")
    assert new.slug.startswith("lesson-") and new.issue_keys == ["camera.down"]
    assert kb.recommendations_for("camera.down:cam-9")[-1].slug == new.slug


@pytest.mark.parametrize(
    "source",
    [
        "no front matter",
        "---\ntitle: x\n",
        "---\n: [\n---\nbody",
        "---\ntitle: 3\n---\nbody",
        "---\ntitle: x\nwho: 1\n---\nb",
    ],
)
def test_bad_entries_are_rejected(source: str) -> None:
    with pytest.raises(InvalidInput):
        parse_entry(source, "bad")


def test_an_emergency_has_a_timed_runbook_a_timeline_and_a_review(pitstop: Pitstop, clock: FrozenClock) -> None:
    m = pitstop.maintenance
    em = m.emergency.declare("system.down:north-plant", "Monitoring down at the north plant", actor="shift-lead")
    assert em.incident.severity is Severity.EMERGENCY and em.order.source == "emergency"
    assert em.run.procedure == "emergency-restore" and em.run.state == "running"
    for step, minutes in (("declare", 3), ("assess", 12), ("restore", 75), ("verify", 80), ("stand-down", 90)):
        clock.set(em.run.started_at + timedelta(minutes=minutes))
        m.runner.answer(em.run.id, step, Answer(passed=True, note=f"done {step}"), actor="tom")
    run = m.runner.get(em.run.id)
    assert run.state == "passed"
    assert [s.id for s in run.steps if s.overtime] == ["restore"]  # 75 min against 60
    review = m.emergency.review(
        "system.down:north-plant", summary="Disk full on the VMS host.", lessons="Alert earlier.", author="lead"
    )
    assert review.kind == "review" and "emergency-restore.restore" in review.text
    timeline = m.emergency.timeline("system.down:north-plant")
    whats = [t["what"] for t in timeline]
    assert whats[0] == "incident opened" and whats[-1] == "review"
    assert sum(w.startswith("runbook emergency-restore") for w in whats) == 5
    pitstop.feed.deliver()  # the log's entry of the declaration comes from the incident feed
    (declared,) = m.log.entries(kind="emergency")
    assert declared.summary.startswith("system.down:north-plant opened") and declared.actor == "shift-lead"
    assert m.log.entries(kind="review")
    m.tick()  # the emergency already has its order
    assert len(m.orders.list(source="emergency")) == 1
