"""Data checks: freshness of each sensor's readings, and scheduler jobs (heartbeat, backups)."""

from __future__ import annotations

from typing import Any

from pitstop.core.types import JobOutcome, Status, to_epoch_us
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold


class FreshnessCheck(Check):
    """Every sensor of asset `target` reported within `periods` of its sampling period (default 3).

    Observed: stale (sensors), completeness_pct (fresh sensors out of all), oldest_periods.
    """

    default_target = "*"
    per_asset = True
    name = "freshness"
    issue = "data.stale"
    default_thresholds = (Threshold("completeness_pct", "below", warning=100, critical=50, target=100),)

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"periods"}:
            raise ValueError(f"freshness check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.periods = float(params.get("periods", 3))
        if self.periods <= 0:
            raise ValueError("freshness check: periods must be positive")

    def run(self, ctx: CheckContext, /) -> CheckResult:
        assert ctx.assets is not None and ctx.readings is not None, "freshness needs assets and readings"
        sensors = [s for s in ctx.assets.sensors(self.target)]
        if not sensors:
            return self.result(ctx, Status.UNKNOWN, f"asset {self.target} has no sensors")
        latest = ctx.extra.get("latest_readings")
        if latest is None:  # one query per round, shared by every freshness check
            latest = ctx.extra["latest_readings"] = ctx.readings.latest()
        now_us = to_epoch_us(ctx.clock.now())
        stale, oldest = [], 0.0
        for s in sensors:
            ts = latest.get(s.id)
            age_periods = float("inf") if ts is None else (now_us - ts) / 1e6 / s.period_s
            oldest = max(oldest, age_periods)
            if age_periods > self.periods:
                stale.append(s.name)
        completeness = 100.0 * (len(sensors) - len(stale)) / len(sensors)
        observed = {
            "stale": float(len(stale)),
            "completeness_pct": round(completeness, 3),
            "oldest_periods": min(oldest, 1e9),
        }
        summary = f"{self.target}: all {len(sensors)} sensors fresh"
        if stale:
            silent = ", ".join(stale[:8])
            summary = f"{self.target}: {len(stale)} of {len(sensors)} silent > {self.periods:g} periods: {silent}"
        return self.judge(ctx, observed, summary)


class JobCheck(Check):
    """A scheduler job (`target`: its name) finished OK within `max_age_s` (e.g. backups)."""

    name = "job"
    issue = "job.overdue"
    default_max_age_s = 86400.0 * 1.5

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"max_age_s"}:
            raise ValueError(f"{self.name} check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.max_age_s = float(params.get("max_age_s", self.default_max_age_s))

    def run(self, ctx: CheckContext, /) -> CheckResult:
        assert ctx.jobs is not None, "the job check needs the job repository"
        runs = ctx.jobs.recent(self.target, limit=20)
        finished = [r for r in runs if r.finished_at is not None]
        if not finished:
            return self.result(ctx, Status.CRITICAL, f"job {self.target} has never finished")
        last, last_ok = finished[0], next((r for r in finished if r.outcome == JobOutcome.OK.value), None)
        now = ctx.clock.now()
        age = (now - last_ok.finished_at).total_seconds() if last_ok and last_ok.finished_at else float("inf")
        observed = {"age_s": min(age, 1e12), "last_ok": float(last.outcome == JobOutcome.OK.value)}
        if age > self.max_age_s:
            return self.result(
                ctx,
                Status.CRITICAL,
                f"job {self.target}: no successful run for {age / 60:.0f} min (limit {self.max_age_s / 60:.0f})",
                observed=observed,
            )
        if last.outcome != JobOutcome.OK.value:
            return self.result(
                ctx,
                Status.WARNING,
                f"job {self.target}: last run {last.outcome}: {(last.error or '')[:200]}",
                observed=observed,
            )
        return self.result(ctx, Status.HEALTHY, f"job {self.target}: last success {age:.0f} s ago", observed=observed)


class HeartbeatCheck(JobCheck):
    """pitstop's own scheduler is alive: the `heartbeat` job ran recently (default 3 of its periods)."""

    default_target = "heartbeat"
    name = "heartbeat"
    issue = "scheduler.stalled"
    default_max_age_s = 90.0
