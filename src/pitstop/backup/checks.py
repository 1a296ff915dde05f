"""Health checks of backups: RPO (freshness), never succeeded, drills, and restore time against the RTO.

They register in the health check registry like every other check; add them to `[[health.checks]]`
(`check = "backup_fresh"` etc.). Each reads the sets on disk and the record of drills, so an
incident opens when backups stop, were never made, a drill fails, or a restore takes too long.
"""

from __future__ import annotations

from pitstop.backup.records import BackupRecords
from pitstop.backup.service import BackupService
from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold, checks


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


@checks.add
class BackupFreshCheck(Check):
    """The newest backup set is younger than the RPO. Observed: age_hours, rpo_pct (age / RPO)."""

    name = "backup_fresh"
    issue = "backup.rpo"
    default_target = "backups"
    default_thresholds = (Threshold("rpo_pct", "above", warning=100, critical=200),)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        service = service_of(ctx)
        newest = service.newest_ok_at()
        if newest is None:
            return self.result(ctx, Status.UNKNOWN, f"no backup set in {service.destination} yet (see backup_never)")
        age_h = (ctx.clock.now() - newest).total_seconds() / 3600
        rpo = service.settings.rpo_hours
        observed = {"age_hours": round(age_h, 3), "rpo_pct": round(100 * age_h / rpo, 2)}
        return self.judge(ctx, observed, f"newest backup set is {age_h:.1f} h old (RPO {rpo:g} h)")


@checks.add
class BackupNeverCheck(Check):
    """At least one backup set exists: a fresh installation that never backed up is critical."""

    name = "backup_never"
    issue = "backup.never"
    default_target = "backups"

    def run(self, ctx: CheckContext, /) -> CheckResult:
        service = service_of(ctx)
        if service.newest_ok_at() is not None:
            return self.result(ctx, Status.HEALTHY, f"backup sets exist in {service.destination}")
        failed = service.records.last("backup", outcome="failed")
        why = f"; the last attempt failed: {failed.detail.get('error', '?')}" if failed else ""
        return self.result(ctx, Status.CRITICAL, f"no backup has ever succeeded into {service.destination}{why}")


@checks.add
class BackupDrillCheck(Check):
    """The last restore drill passed, and one ran within twice the drill period. Observed: failed, age_days."""

    name = "backup_drill"
    issue = "backup.drill"
    default_target = "backups"

    def run(self, ctx: CheckContext, /) -> CheckResult:
        service = service_of(ctx)
        last = service.records.last("drill")
        if last is None:
            if service.newest_ok_at() is None:
                return self.result(ctx, Status.UNKNOWN, "no backup set to drill yet")
            return self.result(ctx, Status.WARNING, "no restore drill has run yet: run `pitstop backup drill`")
        age_d = (ctx.clock.now() - last.finished_at).total_seconds() / 86400
        observed = {"failed": float(last.outcome != "ok"), "age_days": round(age_d, 3)}
        if last.outcome != "ok":
            problems = [p for s in last.detail.get("sources", []) for p in s.get("problems", [])]
            text = "; ".join(problems[:3]) or last.detail.get("error", "see the drill record")
            return self.result(
                ctx, Status.CRITICAL, f"restore drill of set {last.set_id} failed: {text}", observed=observed
            )
        if age_d > 2 * service.settings.drill_every_days:
            return self.result(
                ctx, Status.WARNING, f"the last restore drill is {age_d:.0f} days old", observed=observed
            )
        return self.result(ctx, Status.HEALTHY, f"restore drill of set {last.set_id} passed", observed=observed)


@checks.add
class BackupRtoCheck(Check):
    """The last passed drill restored within the RTO. Observed: restore_s, rto_pct (restore time / RTO)."""

    name = "backup_rto"
    issue = "backup.rto"
    default_target = "backups"
    default_thresholds = (Threshold("rto_pct", "above", warning=80, critical=100),)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        service = service_of(ctx)
        last = service.records.last("drill", outcome="ok")
        if last is None:
            return self.result(ctx, Status.UNKNOWN, "no passed restore drill yet")
        rto_s = service.settings.rto_minutes * 60
        observed = {"restore_s": round(last.seconds, 3), "rto_pct": round(100 * last.seconds / rto_s, 3)}
        summary = f"drill of set {last.set_id} restored in {last.seconds:.1f} s (RTO {rto_s:.0f} s)"
        return self.judge(ctx, observed, summary)


__all__ = ["BackupDrillCheck", "BackupFreshCheck", "BackupNeverCheck", "BackupRtoCheck", "service_of"]
