"""Runs checks concurrently with a timeout each; a check that raises or hangs is `unknown`."""

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

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        """One round: every check once. Results in the order of the specs."""
        for key in ROUND_KEYS:  # shared per round, read afresh
            ctx.extra.pop(key, None)
        if self.workers <= 1 or len(self.instances) <= 1:
            return [_run_one(check, ctx) for _, check in self.instances]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(self.instances)), thread_name_prefix="check") as pool:
            futures = [(check, pool.submit(_run_one, check, ctx)) for _, check in self.instances]
            return [_collect(check, future, ctx) for check, future in futures]


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
