"""Health checks of models: `drift` (model.drift) and `model_accuracy` (model.accuracy).

Both take a model name as target and read through the models part of pitstop (the composition
root puts it in ``CheckContext.extra["models"]``), so drift and accuracy go through the alert
policy, incidents and remediation like any other check. Registered on import of
``pitstop.ml.registry``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pitstop.core.types import Status
from pitstop.errors import PitstopError
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold, checks
from pitstop.ml.drift import MIN_CURRENT_ROWS, DriftReport
from pitstop.ml.drift.psi import MIN_EFFECTIVE_ROWS

if TYPE_CHECKING:
    from pitstop.ml.registry.lifecycle import Accuracy


class ModelMonitor(Protocol):
    """What the checks ask of the models (`pitstop.ml.registry.watch.ModelWatch` answers)."""

    def drift(self, name: str) -> tuple[int, DriftReport]: ...

    def accuracy(self, name: str) -> Accuracy | None: ...


def _watch(ctx: CheckContext) -> ModelMonitor | None:
    watch: ModelMonitor | None = ctx.extra.get("models")
    return watch


class DriftCheck(Check):
    """Input drift (over inputs) and residual drift (over outputs' residuals) of the model
    `target`'s champion over the latest ``models.drift_window_days``.

    Judged on the excess PSI: a feature's PSI minus the PSI that sampling alone gives for its
    (effective) reference and current sizes (`pitstop.ml.drift.expected_psi`), so small or
    autocorrelated windows do not alarm. Observed: max_excess_psi, residual_max_excess_psi (judged:
    0.2 warn, 0.5 critical; clears below 0.2), and for reading max_psi, residual_max_psi (the raw
    statistics), drifted_share, current_rows. Too few current rows: unknown, "not enough data".
    Inputs in the model's ``drift_exclude`` are named in the summary but judged on by nothing.
    """

    name = "drift"
    issue = "model.drift"
    timeout_s = 120.0
    default_thresholds = (
        Threshold("max_excess_psi", "above", warning=0.2, critical=0.5),
        Threshold("residual_max_excess_psi", "above", warning=0.2, critical=0.5),
    )

    def run(self, ctx: CheckContext, /) -> CheckResult:
        watch = _watch(ctx)
        if watch is None:
            return self.result(ctx, Status.UNKNOWN, f"{self.target}: the model lifecycle is not set up")
        try:
            version, report = watch.drift(self.target)
        except PitstopError as exc:
            return self.result(ctx, Status.UNKNOWN, f"{self.target}: {exc}"[:500])
        return self.judge_report(ctx, version, report)

    def judge_report(self, ctx: CheckContext, version: int, report: DriftReport) -> CheckResult:
        observed = {
            "max_psi": round(report.max_psi, 6),
            "max_excess_psi": round(report.max_excess_psi, 6),
            "drifted_share": round(report.drifted_share, 4),
            "current_rows": float(report.current_rows),
        }
        if not report.enough:
            return self.result(
                ctx,
                Status.UNKNOWN,
                f"{self.target} v{version}: not enough data to judge drift ({report.current_rows} current rows, "
                f"need {MIN_CURRENT_ROWS} and {MIN_EFFECTIVE_ROWS:g} effective)",
                observed=observed,
            )
        if report.residuals:
            observed["residual_max_psi"] = round(report.residual_max_psi, 6)
            observed["residual_max_excess_psi"] = round(report.residual_max_excess_psi, 6)
        drifted = [f.feature for f in report.counted if f.drifted]
        drifted += [f"residual {f.feature}" for f in report.residuals if f.drifted]
        summary = f"{self.target} v{version}: {report.band}"
        if drifted:
            summary += f", drifted: {', '.join(drifted)}"
        ignored = [f.feature for f in report.features if f.drifted and f.feature in report.excluded]
        if ignored:
            summary += f" (also drifted, excluded from the verdict: {', '.join(ignored)})"
        return self.judge(ctx, observed, summary)


class AccuracyCheck(Check):
    """Live accuracy of the model `target`'s champion: its hold-out MAE over its MAE on the latest
    ``models.accuracy_window_hours`` of readings (1.0: as good as on the hold-out).

    Observed: relative_accuracy (the worst output's), relative_<output>, rows. Below 0.5 is a warning unless the model's
    ``accuracy_floor`` says otherwise; ``model.accuracy:<name>`` is what rollback_model heals.
    """

    name = "model_accuracy"
    issue = "model.accuracy"
    timeout_s = 120.0
    default_thresholds = (Threshold("relative_accuracy", "below", warning=0.5),)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        watch = _watch(ctx)
        if watch is None:
            return self.result(ctx, Status.UNKNOWN, f"{self.target}: the model lifecycle is not set up")
        try:
            acc = watch.accuracy(self.target)
        except PitstopError as exc:
            return self.result(ctx, Status.UNKNOWN, f"{self.target}: {exc}"[:500])
        if acc is None:
            return self.result(ctx, Status.UNKNOWN, f"{self.target}: no recent readings or no hold-out metrics")
        observed = {"relative_accuracy": round(acc.relative, 4), "rows": float(acc.rows)}
        observed |= {f"relative_{o}": round(r, 4) for o, r in acc.per_output.items()}
        summary = (
            f"{self.target} v{acc.version}: live accuracy {acc.relative:.2f} of hold-out "
            f"(worst {acc.worst}) on {acc.rows} rows"
        )
        return self.judge(ctx, observed, summary)


BUILTIN = (DriftCheck, AccuracyCheck)
for _cls in BUILTIN:
    checks.add(_cls)
