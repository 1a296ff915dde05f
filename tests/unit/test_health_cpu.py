"""The cpu check averages CPU use between check rounds (deltas of /proc/stat), issue 16, item 3.

The check reads cumulative CPU times (what /proc/stat holds: busy and total seconds since boot)
from ``CheckContext.extra["cpu_times"]`` when given; here a fake host whose load the test drives.
"""

from __future__ import annotations

from pitstop.core.types import Status
from pitstop.health.base import CheckContext
from pitstop.health.checks.system import CpuCheck, proc_cpu_times
from pitstop.health.runner import CheckRunner
from pitstop.health.specs import CheckSpec
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock

CPUS = 2


class FakeStat:
    """Cumulative busy and total CPU seconds of a two-CPU host, advanced by the test."""

    def __init__(self) -> None:
        self.busy, self.total = 1000.0, 5000.0

    def run(self, seconds: float, busy_share: float) -> None:
        self.total += CPUS * seconds
        self.busy += CPUS * seconds * busy_share

    def __call__(self) -> tuple[float, float]:
        return self.busy, self.total


def context(tmp_path: object, stat: FakeStat) -> CheckContext:
    db = Database(f"sqlite:///{tmp_path}/h.db")
    return CheckContext(clock=FrozenClock(), db=db, extra={"cpu_times": stat})


def minute(stat: FakeStat, *, burst_s: float = 0.0, busy_share: float = 0.05) -> None:
    """A minute between check rounds: a background load, and a burst at 100 % of `burst_s` seconds."""
    stat.run(60.0 - burst_s, busy_share)
    stat.run(burst_s, 1.0)


def test_a_short_burst_between_rounds_does_not_flip_the_result_while_sustained_load_does(tmp_path: object) -> None:
    stat = FakeStat()
    ctx = context(tmp_path, stat)
    check = CpuCheck("localhost")
    first = check.run(ctx)  # the first round measures over a short interval; no time passes on the fake
    assert first.status is Status.UNKNOWN and "no CPU time elapsed" in first.summary
    statuses = []
    for _ in range(5):
        minute(stat, burst_s=6.0)  # 6 s at 100 % in every minute: a busy snapshot would read ~100 %
        result = check.run(ctx)
        assert 10.0 < result.observed["cpu_pct"] < 20.0  # 0.9 * 5 % + 0.1 * 100 % = 14.5 %
        statuses.append(result.status)
    assert statuses == [Status.HEALTHY] * 5
    minute(stat, busy_share=0.95)
    assert check.run(ctx).status is Status.CRITICAL
    minute(stat, busy_share=0.75)
    assert check.run(ctx).status is Status.WARNING


def test_the_state_is_per_target_and_survives_a_new_runner(tmp_path: object) -> None:
    stat = FakeStat()
    ctx = context(tmp_path, stat)
    specs = [CheckSpec("cpu", "host-a"), CheckSpec("cpu", "host-b")]
    CheckRunner(specs, workers=1).run(ctx)
    minute(stat, busy_share=0.95)
    # The inventory changed: the monitor builds a new runner (new check instances) for the next round.
    results = CheckRunner(specs, workers=1).run(ctx)
    assert [r.observed["cpu_pct"] for r in results] == [95.0, 95.0]
    minute(stat, busy_share=0.10)
    (a,) = CheckRunner(specs[:1], workers=1).run(ctx)
    assert a.observed["cpu_pct"] == 10.0
    minute(stat, busy_share=0.50)
    (b,) = CheckRunner(specs[1:], workers=1).run(ctx)
    assert b.observed["cpu_pct"] == 30.0  # host-b's own last round was two minutes ago: (0.1 + 0.5) / 2


def test_the_host_source_reads_cumulative_times() -> None:
    busy, total = proc_cpu_times()
    again_busy, again_total = proc_cpu_times()
    assert 0.0 <= busy <= total and again_total >= total and again_busy >= busy
