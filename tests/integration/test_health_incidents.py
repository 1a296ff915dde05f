"""The incident registry on SQLite and PostgreSQL: idempotent by key, one unresolved per key, a timeline."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop.app import Pitstop
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput, NotFound
from pitstop.incidents import Change, IncidentRegistry, IncidentState
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock

KEY = "disk.low:/var/lib/vms"


def test_open_is_idempotent_and_updates_are_changes(pitstop: Pitstop, clock: FrozenClock) -> None:
    reg = pitstop.incidents
    first, change = reg.open_or_update(KEY, severity=Severity.WARNING, title="disk 15% free", source="check")
    assert change is Change.OPENED and first.state is IncidentState.OPEN
    again, change = reg.open_or_update(KEY, severity=Severity.WARNING, title="disk 15% free", source="check")
    assert change is Change.NONE and again == first
    clock.advance(60)
    worse, change = reg.open_or_update(KEY, severity=Severity.CRITICAL, title="disk 5% free", source="check")
    assert change is Change.UPDATED and worse.id == first.id and worse.severity is Severity.CRITICAL
    assert worse.area == "disk" and worse.condition == "low" and worse.target == "/var/lib/vms"


def test_lifecycle_and_timeline(pitstop: Pitstop, clock: FrozenClock) -> None:
    reg = pitstop.incidents
    inc, _ = reg.open_or_update(KEY, severity=Severity.WARNING, title="low")
    assert reg.acknowledge(KEY, actor="ana", note="looking")[1] is Change.ACKNOWLEDGED
    assert reg.acknowledge(KEY, actor="ana")[1] is Change.NONE
    assert reg.assign(KEY, assignee="bo", actor="ana")[0].assignee == "bo"
    assert reg.suppress(KEY, reason="known", actor="ana")[0].state is IncidentState.SUPPRESSED
    # still suppressed after the check reports again
    assert reg.open_or_update(KEY, severity=Severity.WARNING, title="low")[0].state is IncidentState.SUPPRESSED
    clock.advance(timedelta(minutes=5))
    resolved, change = reg.resolve(KEY, reason="freed space", actor="check:disk")
    assert change is Change.RESOLVED and resolved is not None and resolved.resolved_at == clock.now()
    assert reg.resolve(KEY, reason="again", actor="x") == (None, Change.NONE)
    actions = [(e.action, e.actor, e.to_state) for e in reg.timeline(inc.id)]
    assert actions == [
        ("opened", "pitstop", IncidentState.OPEN),
        ("acknowledged", "ana", IncidentState.ACKNOWLEDGED),
        ("assigned", "ana", IncidentState.ACKNOWLEDGED),
        ("suppressed", "ana", IncidentState.SUPPRESSED),
        ("resolved", "check:disk", IncidentState.RESOLVED),
    ]
    reopened, change = reg.open_or_update(KEY, severity=Severity.WARNING, title="low")
    assert change is Change.OPENED and reopened.id != inc.id
    assert reg.get(KEY).id == reopened.id and reg.get(inc.id).state is IncidentState.RESOLVED
    assert [i.id for i in reg.list(state=IncidentState.OPEN)] == [reopened.id]
    assert {i.id for i in reg.list(area="disk")} == {inc.id, reopened.id}
    assert any(e.action == "incident.resolve" for e in pitstop.audit.recent())


def test_bad_input_is_refused(pitstop: Pitstop) -> None:
    reg = pitstop.incidents
    for bad in ("nokey", "Disk.low:x", "disk.low:", "disk:x", "disk.low:a\nb"):
        with pytest.raises(InvalidInput):
            reg.open_or_update(bad, severity=Severity.WARNING, title="t")
    with pytest.raises(InvalidInput):
        reg.open_or_update(KEY, severity=Severity.WARNING, title="  ")
    with pytest.raises(NotFound):
        reg.acknowledge(KEY, actor="a")
    assert reg.list() == []


def test_two_concurrent_writers_open_one_incident(db: Database, clock: FrozenClock) -> None:
    """Two registries (as two processes would) race to open the same keys."""
    regs = [IncidentRegistry(Database(db.url.render_as_string(hide_password=False)), clock) for _ in range(2)]
    keys = [f"svc.down:unit-{i}" for i in range(15)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(reg: IncidentRegistry) -> None:
        try:
            barrier.wait()
            for key in keys:
                reg.open_or_update(key, severity=Severity.CRITICAL, title="down")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in regs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    opened = regs[0].list(limit=1000)
    assert sorted(i.key for i in opened) == sorted(keys)
    for reg in regs:
        reg.db.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["open", "resolve", "ack"]), st.integers(0, 2)), max_size=25))
def test_never_two_unresolved_incidents_per_key(pitstop: Pitstop, ops: list[tuple[str, int]]) -> None:
    reg = pitstop.incidents
    for op, n in ops:
        key = f"prop.case:t{n}"
        if op == "open":
            reg.open_or_update(key, severity=Severity.WARNING, title=f"t{n}")
        elif op == "resolve":
            reg.resolve(key, reason="r", actor="test")
        elif reg.active(key) is not None and reg.active(key).state is IncidentState.OPEN:  # type: ignore[union-attr]
            reg.acknowledge(key, actor="test")
    active = [i.key for i in reg.list(state=[IncidentState.OPEN, IncidentState.ACKNOWLEDGED], limit=10_000)]
    assert len(active) == len(set(active))
