"""Hostile plans and parameters: whatever paths a stored plan names, free_disk and rotate_logs touch
nothing outside their root, no symlink, nothing younger than the floor."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop.core.types import Severity
from pitstop.incidents import Incident, IncidentState
from pitstop.remediation import ActionContext, Plan, actions
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.remediation import tree

PARTS = st.sampled_from(["..", ".", "", "a", "old.mp4", "young.mp4", "link.mp4", "cam", "outside", "x.mp4", "/", "~"])
PATHS = st.lists(PARTS, min_size=1, max_size=6).map("/".join) | st.text(max_size=40)


def _world(base: Path) -> tuple[Path, Path, FrozenClock]:
    clock = FrozenClock()
    now = clock.now().timestamp()
    root, outside = base / "root", base / "outside"
    (root / "cam").mkdir(parents=True, exist_ok=True)
    outside.mkdir(exist_ok=True)
    for path, age in ((outside / "x.mp4", 9e6), (root / "young.mp4", 10), (root / "cam" / "young.mp4", 10)):
        path.write_bytes(b"1" * 10)
        os.utime(path, (now - age, now - age))
    for link, to in ((root / "link.mp4", outside / "x.mp4"), (root / "outside", outside)):
        if not link.is_symlink():
            link.symlink_to(to)
    return root, outside, clock


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(PATHS, max_size=8))
def test_free_disk_never_touches_what_it_must_not(tmp_path: Path, files: list[str]) -> None:
    root, outside, clock = _world(tmp_path)
    before_outside, before_root = tree(outside), tree(root)
    action = actions.create(
        "free_disk", root=str(root), patterns=["*"], capacity_bytes=10**6, target_free_pct=99, min_age_s=3600
    )
    ctx = ActionContext(clock=clock, db=Database("sqlite://"))
    outcome = action.apply(Plan("free_disk", "t", ("x",), True, {"root": str(root), "files": files}), ctx)
    assert outcome.data["removed"] == []  # everything inside is young or a link
    assert tree(outside) == before_outside and tree(root) == before_root


def test_a_plan_for_another_root_is_refused(tmp_path: Path) -> None:
    root, outside, clock = _world(tmp_path)
    action = actions.create("free_disk", root=str(root), target_free_pct=50, capacity_bytes=100, min_age_s=0)
    at = clock.now()
    incident = Incident(1, "disk.low:x", IncidentState.OPEN, Severity.WARNING, "t", None, "s", None, at, at, None)
    ctx = ActionContext(clock=clock, db=Database("sqlite://"))
    plan = action.plan(incident, ctx)
    moved = Plan(plan.action, plan.target, plan.steps, True, {**plan.params, "root": str(outside)})
    assert not action.apply(moved, ctx).ok and tree(outside)
