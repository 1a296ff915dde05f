"""Runs a round of checks; a check that raises, or that waits on the network past its timeout, is `unknown`.

Threads are sized by what a check does: checks that wait on the network (`Check.waits_on_network`:
http, tcp, mqtt, modbus, postgres, camera_image, ...) run in a pool, so their waits overlap; the
others (cpu, memory, disk, database, freshness, limits, frozen, reading, ...) compute or read
local state in microseconds to milliseconds and run one after another in the calling thread
while the pool waits. Spread over threads they only took turns on the GIL: a round of 1,000 cheap
targets took 1.4x the wall time and 1.4x the CPU in a pool of 8 (bench/checks.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import pitstop.health.checks  # noqa: F401 - registers the built-in checks
from pitstop.core.types import Status
from pitstop.errors import ConfigError
from pitstop.health.base import Check, CheckContext, CheckResult, checks
from pitstop.health.checks.sensors import ROUND_KEY as LIMIT_READINGS
from pitstop.health.specs import CheckSpec

ROUND_KEYS = ("latest_readings", LIMIT_READINGS)


class CheckRunner:
    """The checks of `specs`, created once; `workers`: threads for the checks that wait on the
    network (1: every check in the calling thread, one after another)."""

    def __init__(self, specs: Sequence[CheckSpec], *, workers: int = 8) -> None:
        self.specs = list(specs)
        self.workers = workers
        self.instances: list[tuple[CheckSpec, Check]] = []
        for spec in self.specs:
            try:
                instance = checks.create(spec.check, target=spec.target, thresholds=spec.thresholds, params=spec.params)
            except (TypeError, ValueError, LookupError) as exc:
                raise ConfigError(f"health check {spec.id}: {exc}") from None
            self.instances.append((spec, instance))

    def run(self, ctx: CheckContext, *, new_round: bool = True) -> list[CheckResult]:
        """One round: every check once. Results in the order of the specs. The network checks are
        handed to the pool first, the local ones run here meanwhile, then the pool's are collected
        (each waited for at most its `timeout_s`). `new_round=False`: the round's shared reads are
        reused while fresh (a fleet worker's many per-asset jobs)."""
        if new_round:
            for key in ROUND_KEYS:  # shared per round, read afresh
                ctx.extra.pop(key, None)
        every = [check for _, check in self.instances]
        waiting = [i for i, check in enumerate(every) if check.waits_on_network]
        if self.workers <= 1 or not waiting:
            return [_run_one(check, ctx) for check in every]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(waiting)), thread_name_prefix="check") as pool:
            futures = {i: pool.submit(_run_one, every[i], ctx) for i in waiting}
            inline = {i: _run_one(check, ctx) for i, check in enumerate(every) if i not in futures}
            return [inline[i] if i in inline else _collect(check, futures[i], ctx) for i, check in enumerate(every)]


def _run_one(check: Check, ctx: CheckContext) -> CheckResult:
    start = time.perf_counter()
    try:
        result = check.run(ctx)
    except Exception as exc:  # a broken check is data too: unknown, with the error
        error = f"{type(exc).__name__}: {exc}"[:1000]
        result = CheckResult(
            check=check.name,
            target=check.target,
            status=Status.UNKNOWN,
            summary=f"check failed: {error}",
            checked_at=ctx.clock.now(),
            issue_key=check.issue,
            error=error,
        )
    return dataclasses.replace(result, duration_s=time.perf_counter() - start)


def _collect(check: Check, future: Future[CheckResult], ctx: CheckContext) -> CheckResult:
    try:
        return future.result(timeout=check.timeout_s)
    except FutureTimeout:
        error = f"timed out after {check.timeout_s:g} s"
        return CheckResult(
            check=check.name,
            target=check.target,
            status=Status.UNKNOWN,
            summary=f"check failed: {error}",
            checked_at=ctx.clock.now(),
            issue_key=check.issue,
            error=error,
            duration_s=check.timeout_s,
        )
