"""Health checks of backups, judged from the sets on disk and the record of the work (`backup_runs`).

They register in the health check registry like every other check; add them to `[[health.checks]]`
(`check = "backup"` etc.). None of them asks the scheduler: a scheduled job that ran and backed
up nothing is not a backup. Each judges every source (target `backups`, the default, or `all`)
or one (target: the source's name), by its newest good copy: in a complete set, not recorded
as a failed backup, with every stored file there at its size, and not found damaged by the
latest verify or drill of it (`records.good_copies`).

- `backup`: each source backed up on its own schedule (age against its `every_hours`);
- `backup_fresh`: each source's newest good copy within its recovery point objective;
- `backup_never`: some good backup exists at all;
- `backup_drill`: each source's last restore drill passed, and is not too old;
- `backup_rto`: restoring every source, by their last passed drills, fits the RTO.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pitstop.backup.records import BackupRecords, BackupRun
from pitstop.backup.service import BackupService
from pitstop.core.types import Status
from pitstop.errors import BackupError
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold, checks, worst

EVERY = ("backups", "all")  # targets meaning every configured source
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MISSING = {"unknown": Status.UNKNOWN, "warning": Status.WARNING, "critical": Status.CRITICAL}
# Drills run weekly: the last 200 reach back years, past every source's last one.
DRILLS_LOOKED_AT = 200


def service_of(ctx: CheckContext) -> BackupService:
    """The BackupService for a check round: `ctx.extra["backup"]` when given, else built from the settings."""
    given = ctx.extra.get("backup")
    if isinstance(given, BackupService):
        return given
    assert ctx.settings is not None, "backup checks need the settings"
    service = BackupService(
        ctx.settings.backup, data_dir=ctx.settings.data_dir, db=ctx.db, clock=ctx.clock, records=BackupRecords(ctx.db)
    )
    ctx.extra["backup"] = service
    return service


def _hours(h: float) -> str:
    return f"{h / 24:.1f} d" if h >= 72 else f"{h:.1f} h"


class _BackupCheck(Check):
    """A check of every source (`backups`, `all`) or of one, named by the target."""

    default_target = "backups"
    known_params: ClassVar[frozenset[str]] = frozenset()

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - self.known_params:
            raise ValueError(f"{self.name} check: unknown parameter(s) {', '.join(sorted(unknown))}")
        if self.target not in EVERY and not _SOURCE.match(self.target):
            raise ValueError(
                f"{self.name} check: target {self.target[:80]!r} is neither 'backups' (every source) nor a source name"
            )

    def names(self, ctx: CheckContext, service: BackupService) -> list[str] | CheckResult:
        """The sources to judge, or the result that says why there are none."""
        try:
            configured = list(service.sources())
        except BackupError as exc:  # a source configured without its url or path
            return self.result(ctx, Status.UNKNOWN, f"the backup sources cannot be read: {exc}")
        if self.target in EVERY:
            if not configured:
                return self.result(ctx, Status.UNKNOWN, "no backup sources are configured")
            return configured
        if self.target not in configured:
            return self.result(
                ctx, Status.UNKNOWN, f"no backup source {self.target!r}; configured: {', '.join(configured) or 'none'}"
            )
        return [self.target]


class _AgeCheck(_BackupCheck):
    """The age of each source's newest good copy against a per-source reference period."""

    known_params = frozenset({"missing"})
    metric: ClassVar[str]  # the observed percentage: 100 x age / the source's reference
    reference: ClassVar[str]  # how the summary names the reference ("backed up every", "RPO")
    default_missing: ClassVar[str]

    def configure(self, **params: Any) -> None:
        super().configure(**params)
        missing = params.get("missing", self.default_missing)
        if not isinstance(missing, str) or missing not in MISSING:
            raise ValueError(f"{self.name} check: missing must be unknown, warning or critical")
        self.missing = MISSING[missing]

    def reference_hours(self, service: BackupService, name: str) -> float:
        raise NotImplementedError

    def run(self, ctx: CheckContext, /) -> CheckResult:
        service = service_of(ctx)
        names = self.names(ctx, service)
        if isinstance(names, CheckResult):
            return names
        copies = service.good_copies(names)
        now = ctx.clock.now()
        judged = []  # (pct, name, age_h, reference_h)
        for name in names:
            if name in copies:
                age_h = max(0.0, (now - copies[name].at).total_seconds() / 3600)
                ref = self.reference_hours(service, name)
                judged.append((100 * age_h / ref, name, age_h, ref))
        missing = [n for n in names if n not in copies]
        parts = []
        if missing:
            parts.append(f"no backup yet of {', '.join(missing)}" + _passed_over(service, missing))
        if not judged:
            return self.result(ctx, self.missing, "; ".join(parts) + f" (in {service.destination})")
        pct, name, age_h, ref = max(judged)
        copy = copies[name]
        late = f"{name}: newest good set {copy.set.id} is {_hours(age_h)} old ({self.reference} {_hours(ref)})"
        if not copy.recorded:
            late += ", not in the record of backups"
        late += _why_newer_passed(copy.passed_over)
        if len(judged) > 1:
            late = f"{len(judged)} sources, the latest {late}"
        judged_result = self.judge(ctx, {"age_hours": round(age_h, 3), self.metric: round(pct, 2)}, late)
        if not missing:
            return judged_result
        return self.result(
            ctx,
            worst(judged_result.status, self.missing),
            "; ".join([*parts, judged_result.summary]),
            observed=judged_result.observed,
            clear=False,
        )


def _why_newer_passed(passed_over: list[tuple[str, str]]) -> str:
    if not passed_over:
        return ""
    set_id, why = passed_over[0]
    more = f" and {len(passed_over) - 1} more" if len(passed_over) > 1 else ""
    return f"; newer set {set_id}{more} passed over: {why}"


def _passed_over(service: BackupService, missing: list[str]) -> str:
    """Why sets that hold the missing sources do not count, when there are such sets."""
    for backup_set in service.list_sets():
        held = [n for n in missing if n in backup_set.manifest.source_names]
        if held and backup_set.manifest.reason != "safety":
            copies = service.records.of_sets([backup_set.id]).get(backup_set.id, [])
            failed = next((r for r in copies if r.kind == "backup" and r.outcome != "ok"), None)
            if failed is not None:
                return f" (set {backup_set.id} is recorded as failed: {str(failed.detail.get('error', '?'))[:200]})"
            return f" (set {backup_set.id} holds {', '.join(held)}, but is damaged or incomplete)"
    failed_run = service.records.last("backup", outcome="failed")
    if failed_run is not None:
        return f"; the last failed backup: {str(failed_run.detail.get('error', '?'))[:200]}"
    return ""


@checks.add
class BackupCheck(_AgeCheck):
    """Each source is backed up on its schedule: the age of its newest good copy against its own
    `every_hours` (`[backup.sources.<name>]`, else `backup.every_hours`). Observed: age_hours and
    age_pct (100 x age / period) of the source furthest behind; the default levels, 150 / 300 %,
    are 36 / 72 h for a daily backup. A source with no good copy yet is "no backup yet",
    `missing` (warning; or unknown, critical)."""

    name = "backup"
    issue = "backup.overdue"
    metric = "age_pct"
    reference = "backed up every"
    default_missing = "warning"
    default_thresholds = (Threshold("age_pct", "above", warning=150, critical=300),)

    def reference_hours(self, service: BackupService, name: str) -> float:
        return service.settings.source_every_hours(name)


@checks.add
class BackupFreshCheck(_AgeCheck):
    """Each source's newest good copy is within its recovery point objective (its `rpo_hours`, else
    `backup.rpo_hours`). Observed: age_hours and rpo_pct (100 x age / RPO) of the source furthest
    behind. No good copy yet: `missing` (unknown by default: backup_never says it)."""

    name = "backup_fresh"
    issue = "backup.rpo"
    metric = "rpo_pct"
    reference = "RPO"
    default_missing = "unknown"
    default_thresholds = (Threshold("rpo_pct", "above", warning=100, critical=200),)

    def reference_hours(self, service: BackupService, name: str) -> float:
        return service.settings.source_rpo_hours(name)


@checks.add
class BackupNeverCheck(_BackupCheck):
    """Some good backup exists (of the target source): a fresh installation that never backed up is critical."""

    name = "backup_never"
    issue = "backup.never"

    def run(self, ctx: CheckContext, /) -> CheckResult:
        service = service_of(ctx)
        names = self.names(ctx, service)
        if isinstance(names, CheckResult):
            return names
        copies = service.good_copies(names)
        if copies:
            return self.result(ctx, Status.HEALTHY, f"good backups of {', '.join(sorted(copies))} exist")
        return self.result(
            ctx,
            Status.CRITICAL,
            f"no good backup of {', '.join(names)} in {service.destination}" + _passed_over(service, names),
        )


def _last_drills(service: BackupService, names: list[str]) -> dict[str, tuple[BackupRun, dict[str, Any]]]:
    """Each source's last drill (newest first over the record) and what it says of that source."""
    found: dict[str, tuple[BackupRun, dict[str, Any]]] = {}
    for run in service.records.recent("drill", limit=DRILLS_LOOKED_AT):
        sources = run.detail.get("sources")
        for s in sources if isinstance(sources, list) else []:
            if isinstance(s, dict) and s.get("source") in names and s["source"] not in found:
                found[s["source"]] = (run, s)
        if len(found) == len(names):
            break
    return found


@checks.add
class BackupDrillCheck(_BackupCheck):
    """Each source's last restore drill passed (critical when it failed) and is recent: age_pct =
    100 x its age / `backup.drill_every_days` (warning from 200 %). A source with a good copy that
    no drill restored yet is a warning. Observed: failed (sources whose last drill failed),
    age_days and age_pct of the oldest last drill."""

    name = "backup_drill"
    issue = "backup.drill"
    default_thresholds = (Threshold("age_pct", "above", warning=200),)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        service = service_of(ctx)
        names = self.names(ctx, service)
        if isinstance(names, CheckResult):
            return names
        drills = _last_drills(service, names)
        copies = service.good_copies(names)
        never = [n for n in names if n not in drills and n in copies]
        if not drills:
            if not copies:
                return self.result(ctx, Status.UNKNOWN, "no backup set to drill yet")
            return self.result(ctx, Status.WARNING, "no restore drill has run yet: run `pitstop backup drill`")
        now = ctx.clock.now()
        failed = {n: (run, s) for n, (run, s) in drills.items() if s.get("problems")}
        oldest = min(run.finished_at for run, _ in drills.values())
        age_d = max(0.0, (now - oldest).total_seconds() / 86400)
        observed = {
            "failed": float(len(failed)),
            "age_days": round(age_d, 3),
            "age_pct": round(100 * age_d / service.settings.drill_every_days, 2),
        }
        if failed:
            texts = []
            for name, (run, s) in sorted(failed.items()):
                problems = "; ".join(str(p) for p in s["problems"][:3])
                texts.append(f"{name} (set {s.get('set') or run.set_id}): {problems}")
            return self.result(
                ctx, Status.CRITICAL, f"restore drill failed: {' | '.join(texts)}", observed=observed, clear=False
            )
        last = max(drills.values(), key=lambda d: (d[0].finished_at, d[0].id))[0]
        summary = f"the last restore drills of {', '.join(sorted(drills))} passed (newest: set {last.set_id})"
        if age_d >= 1:
            summary += f"; the oldest is {age_d:.0f} days old"
        result = self.judge(ctx, observed, summary)
        if never:
            text = f"never drilled: {', '.join(never)} (run `pitstop backup drill`); {result.summary}"
            return self.result(ctx, worst(result.status, Status.WARNING), text, observed=observed, clear=False)
        return result


@checks.add
class BackupRtoCheck(_BackupCheck):
    """Restoring every source fits the RTO: the sum over sources of the restore and check time of
    each one's last passed drill. Observed: restore_s, rto_pct (restore time / RTO)."""

    name = "backup_rto"
    issue = "backup.rto"
    default_thresholds = (Threshold("rto_pct", "above", warning=80, critical=100),)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        service = service_of(ctx)
        names = self.names(ctx, service)
        if isinstance(names, CheckResult):
            return names
        passed: dict[str, float] = {}  # source -> restore and check seconds of its last passed drill
        for run in service.records.recent("drill", limit=DRILLS_LOOKED_AT):
            sources = run.detail.get("sources")
            for s in sources if isinstance(sources, list) else []:
                name = s.get("source") if isinstance(s, dict) else None
                if name in names and name not in passed and not s.get("problems"):
                    seconds = _number(s.get("restore_seconds")) + _number(s.get("verify_seconds"))
                    passed[name] = seconds
        if not passed:
            return self.result(ctx, Status.UNKNOWN, "no passed restore drill yet")
        total = sum(passed.values())
        rto_s = service.settings.rto_minutes * 60
        observed = {"restore_s": round(total, 3), "rto_pct": round(100 * total / rto_s, 3)}
        summary = f"restoring {', '.join(sorted(passed))} took {total:.1f} s in their last passed drills"
        summary += f" (RTO {rto_s:.0f} s)"
        if undrilled := [n for n in names if n not in passed]:
            summary += f"; no passed drill of {', '.join(undrilled)}"
        return self.judge(ctx, observed, summary)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


__all__ = [
    "BackupCheck",
    "BackupDrillCheck",
    "BackupFreshCheck",
    "BackupNeverCheck",
    "BackupRtoCheck",
    "service_of",
]
