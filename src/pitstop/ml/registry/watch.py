"""Scheduled and triggered retraining, and what configured models add to health checks and remediation.

For every model configured under ``[models.twins.<name>]`` the lifecycle job (every
``models.interval_minutes``) looks at three triggers:

- calendar: the champion was trained ``retrain.every_days`` ago or longer;
- drift: input or residual drift of the latest ``models.drift_window_days`` reached ``retrain.on_drift``;
- accuracy: the champion's live accuracy (hold-out MAE / MAE on the latest
  ``models.accuracy_window_hours``) fell below ``1 - retrain.accuracy_drop``.

When any fires (and no version was registered within ``retrain.min_interval_hours``) it retrains
on stored readings without known-faulty periods and maintenance windows, in the model's mode
(managed promotes when every gate passes, manual leaves a challenger). The reasons, joined, are
the version's ``trigger``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from pitstop.config.health import CheckSettings, ThresholdSettings
from pitstop.config.lifecycle import ModelSettings, ModelsSettings
from pitstop.config.models import Settings
from pitstop.config.remediation import RuleSettings
from pitstop.errors import InvalidInput, NotFound, PitstopError
from pitstop.ml.drift import BAND_RANK, DriftReport
from pitstop.ml.registry.data import ModelData
from pitstop.ml.registry.lifecycle import Accuracy, Mode, ModelLifecycle, RetrainResult, exclude

if TYPE_CHECKING:
    from pitstop.core.clock import Clock
    from pitstop.health.monitor import HealthMonitor

log = logging.getLogger("pitstop.models")


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: str  # calendar, drift, accuracy
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Look:
    """What the job saw for one model, and what it did."""

    name: str
    triggers: list[Trigger]
    skipped: str | None = None
    result: RetrainResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "triggers": [str(t) for t in self.triggers],
            "skipped": self.skipped,
            "result": self.result.as_dict() if self.result is not None else None,
        }


class ModelWatch:
    """The lifecycle job over configured models; also serves the drift and model_accuracy checks."""

    def __init__(self, settings: ModelsSettings, *, lifecycle: ModelLifecycle, data: ModelData, clock: Clock) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.data = data
        self.clock = clock

    @property
    def models(self) -> dict[str, ModelSettings]:
        return self.settings.twins

    def config(self, name: str) -> ModelSettings:
        return self.settings.twins.get(name, ModelSettings())

    # -- data -----------------------------------------------------------------------------------
    def recent(self, name: str, span: timedelta) -> pd.DataFrame:
        """The model's readings of the latest ``span`` (by the clock), without excluded periods."""
        frame = self.data.frame(name, since=self.clock.now() - span)
        return exclude(frame, self.data.excluded_periods(name, frame))

    def drift(self, name: str) -> tuple[int, DriftReport]:
        version = self.lifecycle.champion(name)
        current = self.recent(name, timedelta(days=self.settings.drift_window_days))
        if len(current) < 2:
            raise InvalidInput(f"model {name}: no readings in the last {self.settings.drift_window_days:g} days")
        return version, self.lifecycle.drift(name, current, version=version)

    def accuracy(self, name: str) -> Accuracy | None:
        recent = self.recent(name, timedelta(hours=self.settings.accuracy_window_hours))
        return self.lifecycle.live_accuracy(name, recent)

    # -- triggers -------------------------------------------------------------------------------
    def triggers(self, name: str) -> list[Trigger]:
        cfg = self.config(name).retrain
        registry = self.lifecycle.registry
        champion = registry.alias(name, "champion")
        if champion is None:
            return []
        now = self.clock.now()
        found: list[Trigger] = []
        if cfg.every_days is not None:
            age = now - registry.get(name, champion).created_at
            if age >= timedelta(days=cfg.every_days):
                found.append(
                    Trigger(
                        "calendar",
                        f"champion v{champion} trained {age.total_seconds() / 86400:.1f} days ago "
                        f"(every {cfg.every_days:g} days)",
                    )
                )
        if cfg.on_drift is not None:
            try:
                version, report = self.drift(name)
            except (InvalidInput, NotFound) as exc:
                log.info("model %s: no drift trigger: %s", name, exc)
            else:
                if BAND_RANK[report.band] >= BAND_RANK[cfg.on_drift]:
                    drifted = [f.feature for f in report.features if BAND_RANK[f.band] >= BAND_RANK[cfg.on_drift]]
                    drifted += [
                        f"residual {f.feature}"
                        for f in report.residuals
                        if BAND_RANK[f.band] >= BAND_RANK[cfg.on_drift]
                    ]
                    found.append(
                        Trigger(
                            "drift",
                            f"v{version} {report.band} (input PSI {report.max_psi:.3f}, "
                            f"{report.max_excess_psi:.3f} past noise; residual PSI {report.residual_max_psi:.3f}, "
                            f"{report.residual_max_excess_psi:.3f} past noise; {', '.join(drifted)}) "
                            f"at or past {cfg.on_drift}",
                        )
                    )
        if cfg.accuracy_drop is not None:
            try:
                acc = self.accuracy(name)
            except (InvalidInput, NotFound) as exc:
                log.info("model %s: no accuracy trigger: %s", name, exc)
                acc = None
            if acc is not None and acc.relative < 1.0 - cfg.accuracy_drop:
                found.append(
                    Trigger(
                        "accuracy",
                        f"v{acc.version} live accuracy {acc.relative:.2f} of hold-out ({acc.worst}: MAE "
                        f"{acc.live_mae[acc.worst]:.4g} vs {acc.holdout_mae[acc.worst]:.4g} on {acc.rows} rows) "
                        f"below {1.0 - cfg.accuracy_drop:.2f}",
                    )
                )
        return found

    def look(self, name: str) -> Look:
        """Evaluate the triggers of one model and retrain when one fires (outside the cool-down)."""
        cfg = self.config(name)
        triggers = self.triggers(name)
        if not triggers:
            return Look(name, [])
        registry = self.lifecycle.registry
        versions = registry.versions(name)
        now = self.clock.now()
        if versions and now - versions[-1].created_at < timedelta(hours=cfg.retrain.min_interval_hours):
            since = (now - versions[-1].created_at).total_seconds() / 3600
            return Look(name, triggers, f"v{versions[-1].version} registered {since:.1f} h ago")
        frame = self.data.frame(name)
        if cfg.retrain.window_days is not None:
            frame = frame[frame.index >= now - timedelta(days=cfg.retrain.window_days)]
        result = self.lifecycle.retrain(
            name,
            frame,
            mode=Mode(cfg.mode),
            trigger="; ".join(str(t) for t in triggers),
            actor="scheduler:models",
            holdout=cfg.retrain.holdout,
            excluded=self.data.excluded_periods(name, frame),
            params={"n_estimators": cfg.retrain.trees},
        )
        return Look(name, triggers, result=result)

    def run(self) -> list[Look]:
        looks = []
        for name in self.models:
            try:
                looks.append(self.look(name))
            except PitstopError as exc:  # one model's missing data must not stop the others
                log.warning("model %s: lifecycle job: %s", name, exc)
                looks.append(Look(name, [], f"{type(exc).__name__}: {exc}"))
        return looks

    def scheduled(self, now: datetime) -> None:
        """The scheduler job."""
        self.run()


def with_model_monitoring(settings: Settings) -> Settings:
    """The settings with what ``[models.twins]`` implies, decided before anything is built from them:

    - each monitored model gets the ``drift`` and ``model_accuracy`` checks (unless configured by hand);
    - ``model.accuracy:<name>`` -> ``rollback_model`` for models with a floor (unless a rule matches).

    A copy when something is added; the settings given are not changed.
    """
    from pitstop.ml.registry.checks import AccuracyCheck, DriftCheck
    from pitstop.remediation.rules import RemediationRule

    have = {(c.check, c.target) for c in settings.health.checks}
    checks = list(settings.health.checks)
    rules = list(settings.remediation.rules)
    for name, cfg in settings.models.twins.items():
        if cfg.monitor:
            for check in (DriftCheck.name, AccuracyCheck.name):
                if (check, name) not in have:
                    thresholds = {}
                    if check == AccuracyCheck.name and cfg.accuracy_floor is not None:
                        floor = ThresholdSettings(direction="below", warning=cfg.accuracy_floor)
                        thresholds = {"relative_accuracy": floor}
                    checks.append(CheckSettings(check=check, target=name, thresholds=thresholds))
        key = f"{AccuracyCheck.issue}:{name}"
        wanted = cfg.accuracy_floor is not None and cfg.rollback_below_floor
        if wanted and not any(RemediationRule.of(r).matches(key) for r in rules):
            rules.append(RuleSettings(match=key, action="rollback_model", max_attempts=1, window_s=86400.0))
    if len(checks) == len(settings.health.checks) and len(rules) == len(settings.remediation.rules):
        return settings
    return settings.model_copy(
        update={
            "health": settings.health.model_copy(update={"checks": checks}),
            "remediation": settings.remediation.model_copy(update={"rules": rules}),
        }
    )


def drift_through_checks(health: HealthMonitor) -> Callable[[str, int, DriftReport], bool]:
    """The models' drift reports as results of the ``drift`` check: stored, then judged by the alert policy."""
    from pitstop.ml.registry.checks import DriftCheck

    def report_drift(name: str, version: int, report: DriftReport) -> bool:
        result = DriftCheck(name).judge_report(health.context, version, report)
        health.results.save([result])
        health.evaluate([result])
        return True

    return report_drift
