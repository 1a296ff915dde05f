"""One honest status per asset, per site and for the installation, with the reasons.

Status rolls up as the worst of the parts; a part whose results are missing or stale is
`unknown`. Completeness is how many of the expected check targets reported fresh results.
Recommendations come from a hook keyed by issue (the knowledge base plugs in here).

Only assets that report count towards their site and the installation. An asset reports nothing of
its own when no check targets one of its sensors and every check of it came back `unknown` having
observed nothing, without an error: a grouping asset such as a hall whose units carry the sensors
(the freshness check's "asset hall-a-hvac has no sensors"). It keeps its own `unknown` part, marked
`reports: false`, but does not make its site or the installation unknown, nor bring advice about
silent sensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pitstop.core.types import Status
from pitstop.health.base import CheckResult, worst
from pitstop.health.specs import CheckSpec

Recommend = Callable[[str], list[str]]

BUILTIN_ADVICE = {
    "cpu.high": "Find the busiest processes (top); move batch work out of peak hours.",
    "memory.high": "Look for a process whose memory keeps growing; restart it in a maintenance window.",
    "disk.low": "Apply retention to old recordings and logs, or add storage before the disk fills.",
    "service.down": "Restart the service and read its log for the cause.",
    "http.failing": "Check the service's log and its dependencies; call its health URL by hand.",
    "link.down": "Check cabling, switch port and firewall between pitstop and the device.",
    "camera.down": "Check the camera's power and network; reboot it if it does not answer OPTIONS.",
    "mqtt.down": "Check the broker service and its listener port.",
    "database.down": "Check that the database server runs and accepts connections.",
    "postgres.unhealthy": "VACUUM (ANALYZE) the listed tables; look at the slowest statements.",
    "log.errors": "Read the new ERROR lines; they usually name the failing part.",
    "data.stale": "Check the data source of the silent sensors (PLC link, gateway, ingest).",
    "scheduler.stalled": "Check that `pitstop serve` runs and leads the scheduler.",
    "job.overdue": "Run the job by hand and read its error; e.g. `pitstop backup run`.",
}


def builtin_recommendations(issue: str) -> list[str]:
    advice = BUILTIN_ADVICE.get(issue)
    return [advice] if advice else []


@dataclass
class Part:
    """The status of one asset, site or the installation."""

    name: str
    status: Status = Status.HEALTHY
    reasons: list[str] = field(default_factory=list)
    expected: int = 0
    fresh: int = 0
    recommendations: list[str] = field(default_factory=list)
    reports: bool = True  # False: a grouping asset that has nothing of its own to report

    @property
    def completeness(self) -> float:
        return 1.0 if self.expected == 0 else self.fresh / self.expected

    def add(self, result: CheckResult | None, fresh: bool, recommend: Recommend, spec: CheckSpec) -> None:
        self.expected += 1
        if result is None or not fresh:
            self.status = worst(self.status, Status.UNKNOWN)
            self.reasons.append(f"{spec.id}: no fresh result")
            return
        self.fresh += 1
        self.status = worst(self.status, result.status)
        if result.status is not Status.HEALTHY:
            self.reasons.append(f"{result.check}:{result.target}: {result.summary}")
            for advice in recommend(result.issue_key or ""):
                if advice not in self.recommendations:
                    self.recommendations.append(advice)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "reasons": self.reasons,
            "completeness": round(self.completeness, 4),
            "expected": self.expected,
            "fresh": self.fresh,
            "recommendations": self.recommendations,
            "reports": self.reports,
        }


@dataclass
class Report:
    at: datetime
    installation: Part
    sites: dict[str, Part]
    assets: dict[str, Part]
    results: list[CheckResult]

    @property
    def status(self) -> Status:
        return self.installation.status

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 warning (or unknown), 2 critical: for cron and other monitors."""
        return {Status.HEALTHY: 0, Status.CRITICAL: 2}.get(self.status, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "status": self.status.value,
            "installation": self.installation.as_dict(),
            "sites": [p.as_dict() for p in self.sites.values()],
            "assets": [p.as_dict() for p in self.assets.values()],
            "checks": [r.as_dict() for r in self.results],
        }


def report(
    specs: Sequence[CheckSpec],
    results: Sequence[CheckResult],
    *,
    now: datetime,
    max_age: timedelta,
    recommend: Recommend = builtin_recommendations,
) -> Report:
    latest = {(r.check, r.target): r for r in results}
    judged = []
    for spec in specs:
        result = latest.get((spec.check, spec.target))
        judged.append((spec, result, result is not None and now - result.checked_at <= max_age))
    silent = _reporting_nothing(judged)
    installation = Part("installation")
    sites: dict[str, Part] = {}
    assets: dict[str, Part] = {}
    shown = []
    for spec, result, fresh in judged:
        if result is not None:
            shown.append(result)
        if spec.asset in silent:
            part = assets.setdefault(spec.asset, Part(spec.asset, reports=False))
            part.expected += 1
            part.fresh += 1
            part.status = Status.UNKNOWN
            part.reasons.append(f"{spec.id}: {result.summary if result else 'nothing to judge'}")
            continue
        installation.add(result, fresh, recommend, spec)
        if spec.site:
            sites.setdefault(spec.site, Part(spec.site)).add(result, fresh, recommend, spec)
        if spec.asset:
            assets.setdefault(spec.asset, Part(spec.asset)).add(result, fresh, recommend, spec)
    return Report(now, installation, dict(sorted(sites.items())), dict(sorted(assets.items())), shown)


def _reporting_nothing(judged: Sequence[tuple[CheckSpec, CheckResult | None, bool]]) -> set[str]:
    """The assets with nothing of their own to report: no check targets one of their sensors
    (`<asset>/<sensor>`), and every check of them returned a fresh `unknown` that observed nothing
    and raised nothing (an asset without sensors). A stale or missing result, an error, or anything
    observed keeps an asset counted: then its unknown is news."""
    nothing: dict[str, bool] = {}
    for spec, result, fresh in judged:
        if not spec.asset:
            continue
        empty = (
            fresh
            and result is not None
            and result.status is Status.UNKNOWN
            and not result.observed
            and result.error is None
            and not spec.target.startswith(f"{spec.asset}/")
        )
        nothing[spec.asset] = nothing.get(spec.asset, True) and bool(empty)
    return {asset for asset, empty in nothing.items() if empty}
