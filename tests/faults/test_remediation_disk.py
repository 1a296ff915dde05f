"""A recordings directory (configured capacity) filled past the threshold: the oldest recordings
go down to the target; nothing younger than the floor, nothing outside the root (symlinks, `..`)
is touched; the removal list is in the record. Without approval a destructive plan waits."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pitstop.core.types import Severity
from pitstop.incidents import IncidentState
from pitstop.remediation.base import Plan
from pitstop.testing.clock import FrozenClock
from pitstop.testing.remediation import tree
from tests.faults.conftest import make_pitstop

KB = 100_000
DAY = 86400


def fill(sandbox: Path, clock: FrozenClock) -> tuple[Path, Path]:
    """root/cam1: 8 old recordings (2..9 days), 3 young ones (1 h), an old note; outside: old recordings
    reachable through a file symlink and a directory symlink inside the root."""
    now = clock.now().timestamp()
    root, outside = sandbox / "recordings", sandbox / "outside"
    (root / "cam1").mkdir(parents=True)
    outside.mkdir()

    def put(path: Path, age_s: float) -> None:
        path.write_bytes(b"\0" * KB)
        os.utime(path, (now - age_s, now - age_s))

    for day in range(2, 10):
        put(root / "cam1" / f"day{day}.mp4", day * DAY)
    for hour in range(3):
        put(root / "cam1" / f"young{hour}.mp4", 3600 + hour)
    put(root / "cam1" / "notes.txt", 30 * DAY)
    for i in range(3):
        put(outside / f"precious{i}.mp4", 100 * DAY)
    (root / "cam1" / "link.mp4").symlink_to(outside / "precious0.mp4")
    (root / "cam2").symlink_to(outside, target_is_directory=True)
    return root, outside


def rule(root: Path, **extra: Any) -> dict[str, Any]:
    params = {
        "root": str(root),
        "patterns": ["*.mp4"],
        "capacity_bytes": 15 * KB,  # 12 files inside: 20 % free
        "target_free_pct": 50,
        "min_age_s": DAY,
    }
    return {"remediation": {"rules": [{"match": "disk.low:*", "action": "free_disk", "params": params, **extra}]}}


def test_recordings_are_removed_oldest_first_down_to_the_target(
    sandbox: Path, clock: FrozenClock, record: Callable[..., None]
) -> None:
    root, outside = fill(sandbox, clock)
    before_outside = tree(outside)
    pitstop = make_pitstop(sandbox, clock, **rule(root, approval=False))
    try:
        fault = time.perf_counter()
        incident, _ = pitstop.incidents.open_or_update(
            f"disk.low:{root}", severity=Severity.WARNING, title="recordings 20% free", source="check:disk"
        )
        [rid] = pitstop.remediation.run_pass()
        took = time.perf_counter() - fault
        done = pitstop.remediation.store.get(rid)
        assert done.state == "healed", done.result
        removed = [f"cam1/day{d}.mp4" for d in (9, 8, 7, 6, 5)]  # oldest first, 5 of 100 kB: 53 % free
        applied = next(s for s in pitstop.remediation.store.steps(rid) if s.step == "applied")
        assert applied.data["removed"] == removed and applied.data["refused"] == []
        left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir() or p.is_symlink())
        assert left == sorted(
            ["cam1/day2.mp4", "cam1/day3.mp4", "cam1/day4.mp4", "cam1/link.mp4", "cam1/notes.txt", "cam2"]
            + [f"cam1/young{h}.mp4" for h in range(3)]
        )
        assert tree(outside) == before_outside  # nothing outside the root, through links or not
        assert pitstop.incidents.get(incident.id).state is IncidentState.RESOLVED
        record(fault="recordings directory full", expected="heal", outcome=done.state, seconds=round(took, 3))

        # a stored plan that was tampered with is refused path by path when applied
        action = pitstop.remediation.rules.find(incident.key)[1]  # type: ignore[index]
        ctx = pitstop.remediation.context(incident)
        tampered = Plan(
            "free_disk",
            str(root),
            ("x",),
            True,
            {
                "root": str(root),
                "mode": "delete",
                "files": [
                    "../outside/precious1.mp4",
                    "cam2/precious2.mp4",
                    "cam2/../../outside/precious1.mp4",
                    "cam1/link.mp4",
                    str(outside / "precious1.mp4"),
                    "cam1/notes.txt",
                    "cam1/young0.mp4",
                ],
            },
        )
        outcome = action.apply(tampered, ctx)
        reasons = {r["path"]: r["reason"] for r in outcome.data["refused"]}
        assert outcome.data["removed"] == []
        assert reasons == {
            "../outside/precious1.mp4": "not a plain path under the root",
            "cam2/precious2.mp4": "outside the root",
            "cam2/../../outside/precious1.mp4": "not a plain path under the root",
            "cam1/link.mp4": "a symlink",
            str(outside / "precious1.mp4"): "not a plain path under the root",
            "cam1/notes.txt": "does not match the patterns",
            "cam1/young0.mp4": "younger than the floor",
        }
        assert tree(outside) == before_outside
    finally:
        pitstop.close()


def test_a_destructive_action_without_approval_is_planned_not_applied(
    sandbox: Path, clock: FrozenClock, record: Callable[..., None]
) -> None:
    root, _ = fill(sandbox, clock)
    before = tree(root)
    pitstop = make_pitstop(sandbox, clock, **rule(root))  # approval not set: destructive needs it
    try:
        pitstop.incidents.open_or_update(f"disk.low:{root}", severity=Severity.CRITICAL, title="full")
        [rid] = pitstop.remediation.run_pass()
        waiting = pitstop.remediation.store.get(rid)
        assert waiting.state == "awaiting_approval" and waiting.plan.params["files"]
        assert [s.step for s in pitstop.remediation.store.steps(rid)] == ["seen", "planned"]
        for _ in range(3):
            clock.advance(3600)
            assert pitstop.remediation.run_pass() == []
        assert tree(root) == before
        record(fault="destructive action without approval", expected="hold", outcome="planned, not applied")
    finally:
        pitstop.close()
