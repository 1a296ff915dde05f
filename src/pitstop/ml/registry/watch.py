"""Scheduled and triggered retraining, and what configured models add to health checks and remediation.

For every model configured under ``[models.twins.<name>]`` the lifecycle job (every
``models.interval_minutes``) looks at four triggers:

- calendar: the champion was trained ``retrain.every_days`` ago or longer;
- drift: input or residual drift of the latest ``models.drift_window_days`` reached ``retrain.on_drift``
  (inputs in ``drift_exclude`` do not count);
- accuracy: the champion's live accuracy (hold-out MAE / MAE on the latest
  ``models.accuracy_window_hours``) fell below ``1 - retrain.accuracy_drop``;
- equipment_changed: an asset whose readings the model uses had its equipment changed since the
  newest version was registered (`events.AssetEvents`).

When any fires (and no retraining was attempted within ``retrain.min_interval_hours``; an equipment
change not yet attempted goes ahead at once) it retrains (`retrain`) on stored readings without
known-faulty periods, maintenance windows and the readings of changed assets from before their
change, in the model's mode (managed promotes when every gate passes, manual leaves a challenger),
behind the model's prerequisites (a failure trains nothing and is recorded) and its gates plus its
``floors``. The reasons, joined, are the version's ``trigger``. `retrain` is also what
``pitstop models retrain`` does; `rebaseline` re-takes a champion's drift reference from a window.
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
from pitstop.errors import ConfigError, InvalidInput, NotFound, PitstopError
from pitstop.ml.drift import BAND_RANK, DriftReport
from pitstop.ml.registry.data import ModelData
from pitstop.ml.registry.events import AssetEvent, AssetEvents
from pitstop.ml.registry.gates import floor_rules
from pitstop.ml.registry.lifecycle import (
    Accuracy,
    Mode,
    ModelLifecycle,
    Period,
    PrerequisitesFailed,
    RetrainResult,
    asset_type_of,
    exclude,
)
from pitstop.ml.twins import ASSET_TYPES

if TYPE_CHECKING:
    from pitstop.core.clock import Clock
    from pitstop.health.monitor import HealthMonitor

log = logging.getLogger("pitstop.models")


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: str  # calendar, drift, accuracy, equipment_changed
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
    failed_prerequisites: list[str] | None = None  # nothing trained: these failed (recorded as a decision)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "triggers": [str(t) for t in self.triggers],
            "skipped": self.skipped,
            "failed_prerequisites": self.failed_prerequisites,
            "result": self.result.as_dict() if self.result is not None else None,
        }


class ModelWatch:
    """The lifecycle job over configured models; also serves the drift and model_accuracy checks."""

    def __init__(self, settings: ModelsSettings, *, lifecycle: ModelLifecycle, data: ModelData, clock: Clock) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.data = data
        self.clock = clock
        self.events = AssetEvents(data.db, clock)
        # The lifecycle is built with the configured gates only; the drift exclusions of the same
        # settings join it here, so every drift report (check, trigger, dashboard, CLI) leaves them out.
        for name, cfg in settings.twins.items():
            if cfg.drift_exclude:
                lifecycle.drift_exclude[name] = frozenset(_known_inputs(name, cfg.drift_exclude))

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

    # -- retraining ------------------------------------------------------------------------------
    def rules(self, name: str) -> list[dict[str, Any]]:
        """The model's gates (configured or default) and its absolute floors."""
        return [*self.lifecycle.rules_for(name), *floor_rules({str(m): v for m, v in self.config(name).floors.items()})]

    def retrain(
        self,
        name: str,
        *,
        trigger: str,
        actor: str,
        mode: Mode | None = None,
        holdout: float | None = None,
        trees: int | None = None,
        min_samples: int | None = None,
    ) -> RetrainResult:
        """Retrain the model as configured (a model without a table: the defaults) on its stored
        readings of ``retrain.window_days``: known-faulty periods, maintenance windows and readings of
        changed equipment left out, behind its prerequisites (``min_samples`` overrides that one),
        gates and floors. `PrerequisitesFailed` when the data fails a prerequisite (recorded)."""
        cfg = self.config(name)
        since = None if cfg.retrain.window_days is None else self.clock.now() - timedelta(days=cfg.retrain.window_days)
        frame = self.data.training_frame(name, since=since)
        prerequisites = cfg.prerequisites
        if min_samples is not None:
            prerequisites = prerequisites.model_copy(update={"min_samples": min_samples})
        return self.lifecycle.retrain(
            name,
            frame,
            mode=mode if mode is not None else Mode(cfg.mode),
            trigger=trigger,
            actor=actor,
            holdout=holdout if holdout is not None else cfg.retrain.holdout,
            excluded=self.data.excluded_periods(name, frame),
            params={"n_estimators": trees if trees is not None else cfg.retrain.trees},
            rules=self.rules(name),
            prerequisites=prerequisites,
            ranges=self.data.ranges(name),
            asset_excluded=self._replaced(name, frame),
        )

    def _replaced(self, name: str, frame: pd.DataFrame) -> dict[str, list[Period]]:
        """Per asset with an equipment change, its readings from before the latest one: the old equipment."""
        if frame.empty:
            return {}
        start = frame.index.min().to_pydatetime()
        return {asset: [(start, at)] for asset, at in self.data.changed_at(name).items() if at > start}

    # -- drift reference ----------------------------------------------------------------------------
    def rebaseline(
        self,
        name: str,
        *,
        actor: str,
        reason: str,
        days: float | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        version: int | None = None,
    ) -> dict[str, Any]:
        """Re-take the drift reference of the champion (or ``version``) from the readings of [start, end):
        by default the latest ``models.drift_window_days`` (``days``) up to now, known-faulty periods
        and maintenance windows left out. The plant as it is now becomes what drift is judged
        against (the training window would give the stored reference back)."""
        if version is None:
            version = self.lifecycle.champion(name)
        end = end or self.clock.now()
        if start is None:
            span = days if days is not None else self.settings.drift_window_days
            if not 0 < span <= 36_600:
                raise InvalidInput(f"days must be more than 0 and at most 36600, got {span}")
            start = end - timedelta(days=span)
        if start >= end:
            raise InvalidInput(f"the window's start {start.isoformat()} is not before its end {end.isoformat()}")
        if not reason.strip() or len(reason) > 2000:
            raise InvalidInput("a rebaseline needs a reason (at most 2000 characters)")
        frame = self.data.frame(name, since=start)
        frame = frame[frame.index < end]
        frame = exclude(frame, self.data.excluded_periods(name, frame))
        return self.lifecycle.registry.rebaseline(
            name, version, frame, actor=actor, reason=reason.strip(), start=start, end=end
        )

    # -- asset events -------------------------------------------------------------------------------
    def record_event(self, asset: str, kind: str, note: str, *, actor: str) -> tuple[AssetEvent, list[str]]:
        """Record an asset event; returns it and the models whose inputs come from the asset (the
        models of its type, configured or with a version): an equipment change is their trigger."""
        event = self.events.record(asset, kind, note, actor=actor)
        return event, self.models_of(asset)

    def models_of(self, asset: str) -> list[str]:
        """The models (configured or registered) whose inputs come from ``asset``."""
        row = self.data.assets.get_asset(asset)
        if row is None:
            raise NotFound(f"no asset named {asset[:200]!r}")
        names = set(self.models) | set(self.lifecycle.registry.names())
        found = []
        for name in sorted(names):
            try:
                if asset_type_of(name) == row.type:
                    found.append(name)
            except InvalidInput:  # a configured name that is no twin of a known asset type
                continue
        return found

    def pending_changes(self, name: str) -> list[AssetEvent]:
        """Equipment changes of the model's assets since its newest version (none without a version)."""
        versions = self.lifecycle.registry.versions(name)
        if not versions:
            return []
        newest = versions[-1].created_at
        return [e for e in self.data.equipment_changes(name) if e.at > newest]

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
                    drifted = [f.feature for f in report.counted if BAND_RANK[f.band] >= BAND_RANK[cfg.on_drift]]
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
        found.extend(Trigger("equipment_changed", f"{e.note} ({e.asset})") for e in self.pending_changes(name))
        return found

    def look(self, name: str) -> Look:
        """Evaluate the triggers of one model and retrain when one fires (outside the cool-down)."""
        triggers = self.triggers(name)
        if not triggers:
            return Look(name, [])
        waiting = self._cooling_down(name, triggers)
        if waiting is not None:
            return Look(name, triggers, waiting)
        try:
            result = self.retrain(name, trigger="; ".join(str(t) for t in triggers), actor="scheduler:models")
        except PrerequisitesFailed as exc:
            return Look(name, triggers, str(exc), failed_prerequisites=exc.decision.failed_rules)
        return Look(name, triggers, result=result)

    def _cooling_down(self, name: str, triggers: list[Trigger]) -> str | None:
        """Why not to retrain yet: an attempt (a version, or prerequisites that failed) within
        ``retrain.min_interval_hours``; None when due. An equipment change that no attempt followed
        yet is acted on at once."""
        registry = self.lifecycle.registry
        versions = registry.versions(name)
        last_version = versions[-1].created_at if versions else None
        last_decision = registry.last_decision_at(name)
        last = max((t for t in (last_version, last_decision) if t is not None), default=None)
        now = self.clock.now()
        hours = self.config(name).retrain.min_interval_hours
        if last is None or now - last >= timedelta(hours=hours):
            return None
        changed = any(t.kind == "equipment_changed" for t in triggers)
        if changed and any(e.at > last for e in self.pending_changes(name)):
            return None
        since = (now - last).total_seconds() / 3600
        if last_version is not None and last_version >= last:
            return f"v{versions[-1].version} registered {since:.1f} h ago"
        return f"prerequisites failed {since:.1f} h ago (next attempt after {hours:g} h)"

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


def _known_inputs(name: str, features: list[str]) -> list[str]:
    """The features of ``drift_exclude``, checked against the model's inputs when it is a known twin."""
    try:
        inputs = ASSET_TYPES[asset_type_of(name)][0]
    except InvalidInput:
        return features
    unknown = [f for f in features if f not in inputs]
    if unknown:
        raise ConfigError(
            f"models.twins.{name}.drift_exclude: {unknown} not among the inputs of {name} ({', '.join(inputs)})"
        )
    return features


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
