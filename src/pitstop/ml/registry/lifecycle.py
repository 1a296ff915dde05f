"""Retraining behind gates, promotion, drift checks: the model lifecycle over the registry.

`retrain` drops rows inside excluded periods (maintenance, known faults; per asset, readings from
before an equipment change), checks the prerequisites when given (`prerequisites.check`: too few
samples, missing, flat or out-of-range inputs record a decision without a candidate and raise
`PrerequisitesFailed` — nothing is trained), fits a candidate on the earliest complete rows,
registers it as challenger, evaluates the gates against the champion on the same latest-rows
hold-out, records the decision, and in managed mode promotes it when every gate passes. `drift`
compares current inputs with the champion's reference profile (its training inputs, or the window
it was re-baselined on) and, for rows after the champion's training window, its residuals with its
out-of-sample residuals over the training window and the hold-out (`reference_residuals`); inputs in
a model's `drift_exclude` are reported but left out of the verdict. `check_drift` also reports the
result to the alert policy (``model.drift:<name>``). `live_accuracy` compares the champion's error
on recent readings with its hold-out error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from pitstop.config.lifecycle import PrerequisiteSettings
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput
from pitstop.incidents import IncidentRegistry
from pitstop.ml.drift import DriftReport, compare
from pitstop.ml.registry.gates import DEFAULT_RULES, Decision, Verdict, evaluate, validate
from pitstop.ml.registry.prerequisites import ASSET, Range, usable
from pitstop.ml.registry.prerequisites import check as check_prerequisites
from pitstop.ml.registry.serving import ModelServer
from pitstop.ml.registry.store import ModelRegistry, ModelVersion
from pitstop.ml.twins import ASSET_TYPES, Twin, time_split

Period = tuple[datetime, datetime]
# Residual drift needs this many current rows after the champion's training window (residuals on
# rows the model was trained on are smaller than on the hold-out and would read as drift).
MIN_RESIDUAL_ROWS = 30


# The residual reference spans the training window: each of this many contiguous folds of the
# training rows is predicted by a twin fitted on the others (out of fold), then the hold-out follows.
RESIDUAL_FOLDS = 3


def reference_residuals(
    asset_type: str, train: pd.DataFrame, twin: Twin, holdout: pd.DataFrame, params: Mapping[str, Any]
) -> pd.DataFrame:
    """Out-of-sample residuals over the whole training window and the hold-out, in time order and in
    `twin`'s scale: the reference of residual drift. The hold-out alone (the latest fifth) covers a
    few hours of a short history and not the operating range (a day's cycle, the weather of other
    days), so residuals of any other hours read as drift. Falls back to the hold-out when a fold
    leaves too few rows to fit."""
    blocks = Twin.for_asset_type(asset_type, **params).blocked_folds(train, RESIDUAL_FOLDS)
    if blocks is None:
        return holdout
    return pd.concat([*(fold.residuals(block) for fold, block in blocks), holdout])


class Mode(StrEnum):
    MANAGED = "managed"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Live accuracy of a version per output: its hold-out MAE over its MAE on recent readings
    (1.0: as good as on the hold-out or better; 0.5: errors twice as large). `relative` is the
    worst output's (scale-free, so outputs in different units compare)."""

    name: str
    version: int
    holdout_mae: dict[str, float]
    live_mae: dict[str, float]
    rows: int

    @property
    def per_output(self) -> dict[str, float]:
        return {o: 1.0 if live <= 0.0 else min(self.holdout_mae[o] / live, 1.0) for o, live in self.live_mae.items()}

    @property
    def relative(self) -> float:
        return min(self.per_output.values(), default=1.0)

    @property
    def worst(self) -> str:
        ratios = self.per_output
        return min(ratios, key=lambda o: ratios[o]) if ratios else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "relative": round(self.relative, 4),
            "per_output": {o: round(r, 4) for o, r in self.per_output.items()},
            "holdout_mae": {o: round(v, 6) for o, v in self.holdout_mae.items()},
            "live_mae": {o: round(v, 6) for o, v in self.live_mae.items()},
            "rows": self.rows,
        }


class PrerequisitesFailed(InvalidInput):
    """Nothing was trained: the data failed a prerequisite. The decision (without a candidate) is
    recorded before this is raised; the champion stays."""

    def __init__(self, message: str, decision: Decision, decision_id: int) -> None:
        super().__init__(message)
        self.decision = decision
        self.decision_id = decision_id


@dataclass(frozen=True, slots=True)
class RetrainResult:
    version: ModelVersion
    decision: Decision
    promoted: bool

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version.version, "promoted": self.promoted, "decision": self.decision.as_dict()}


def asset_type_of(name: str) -> str:
    """Model names are ``<asset type>-twin``, e.g. ``hvac-twin``."""
    asset_type = name.removesuffix("-twin")
    if not name.endswith("-twin") or asset_type not in ASSET_TYPES:
        raise InvalidInput(f"model {name!r}: known models are {[f'{t}-twin' for t in ASSET_TYPES]}")
    return asset_type


def exclude(frame: pd.DataFrame, periods: Sequence[Period]) -> pd.DataFrame:
    """Rows of a time-indexed frame outside every [start, end) period."""
    keep = pd.Series(True, index=frame.index)
    for start, end in periods:
        keep &= ~((frame.index >= start) & (frame.index < end))
    return frame[keep.to_numpy()]


def exclude_assets(frame: pd.DataFrame, periods: Mapping[str, Sequence[Period]]) -> pd.DataFrame:
    """Rows of a training frame (with its asset column) outside each asset's [start, end) periods."""
    if not any(periods.values()):
        return frame
    if ASSET not in frame:
        raise InvalidInput("per-asset exclusions need a frame with an 'asset' column (ModelData.training_frame)")
    keep = np.ones(len(frame), dtype=bool)
    names = frame[ASSET].to_numpy()
    for asset, spans in periods.items():
        mine = names == asset
        for start, end in spans:
            keep &= ~(mine & (frame.index >= start) & (frame.index < end))
    return frame[keep]


class ModelLifecycle:
    def __init__(
        self,
        registry: ModelRegistry,
        incidents: IncidentRegistry,
        *,
        rules: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        report_drift: Callable[[str, int, DriftReport], bool] | None = None,
        drift_exclude: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.registry = registry
        self.incidents = incidents
        self.rules = {name: validate(r) for name, r in (rules or {}).items()}
        self.server: ModelServer | None = None
        # From the composition root: a drift result goes through the alert policy like any check
        # result. Without it, check_drift opens and resolves model.drift:<name> directly.
        self.report_drift = report_drift
        # Per model, inputs reported by drift but left out of its verdict (`drift_exclude`); the
        # lifecycle job (`ModelWatch`) adds those of [models.twins.<name>].
        self.drift_exclude: dict[str, frozenset[str]] = {n: frozenset(f) for n, f in (drift_exclude or {}).items()}

    def rules_for(self, name: str) -> list[dict[str, Any]]:
        return self.rules.get(name, [dict(r) for r in DEFAULT_RULES])

    def retrain(
        self,
        name: str,
        frame: pd.DataFrame,
        *,
        mode: Mode = Mode.MANAGED,
        trigger: str = "manual",
        actor: str = "pitstop",
        holdout: float = 0.2,
        excluded: Sequence[Period] = (),
        params: Mapping[str, Any] | None = None,
        rules: Sequence[Mapping[str, Any]] | None = None,
        prerequisites: PrerequisiteSettings | None = None,
        ranges: Mapping[str, Mapping[str, Range]] | None = None,
        asset_excluded: Mapping[str, Sequence[Period]] | None = None,
    ) -> RetrainResult:
        """Train, gate and (managed) promote a candidate. With ``prerequisites`` the data is checked
        first (``ranges``: the sensors' min/max per asset); a failed one raises `PrerequisitesFailed`
        after recording the decision. ``asset_excluded``: per asset, periods whose rows are left out
        (a frame with an asset column)."""
        asset_type = asset_type_of(name)
        inputs, outputs = ASSET_TYPES[asset_type]
        data = exclude_assets(exclude(frame, excluded), asset_excluded or {})
        checked = []
        if prerequisites is not None:
            checked = self._check_prerequisites(name, data, prerequisites, ranges, mode=mode, trigger=trigger)
        data = usable(data, [*inputs, *outputs])
        train, test = time_split(data, holdout)
        if len(train) < 20 or len(test) < 2:
            raise InvalidInput(f"not enough rows to retrain {name}: {len(train)} training rows (need 20)")
        twin = Twin.for_asset_type(asset_type, **dict(params or {})).fit(train)
        metrics = {k: m.as_dict() for k, m in twin.evaluate(test).items()}
        residuals = reference_residuals(asset_type, train, twin, twin.residuals(test), dict(params or {}))
        periods = [{"start": s.isoformat(), "end": e.isoformat()} for s, e in excluded]
        periods += [
            {"start": s.isoformat(), "end": e.isoformat(), "asset": asset}
            for asset, spans in (asset_excluded or {}).items()
            for s, e in spans
        ]
        version = self.registry.register(
            name,
            twin,
            train=train,
            metrics={"holdout": metrics, "holdout_rows": len(test)},
            trigger=trigger,
            excluded=periods,
            residuals={c: residuals[c].to_numpy() for c in residuals.columns},
        )
        self.registry.move(name, "challenger", version.version, actor=actor, reason=f"trained ({trigger})")
        champion_version = self.registry.alias(name, "champion")
        champion = None
        if champion_version is not None:
            champion = self.registry.serving(name)
        decision = evaluate(
            validate(rules) if rules is not None else self.rules_for(name),
            candidate=(version.version, twin, version.size),
            champion=champion,
            holdout=test,
        )
        record = {**decision.as_dict(), "mode": mode.value, "trigger": trigger}
        if checked:
            record["prerequisites"] = [v.as_dict() for v in checked]
        self.registry.record_decision(name, record)
        promoted = mode is Mode.MANAGED and decision.passed
        if promoted:
            self.registry.promote(
                name, version.version, actor=actor, reason=f"managed retrain ({trigger}): all gates passed"
            )
        return RetrainResult(version, decision, promoted)

    def _check_prerequisites(
        self,
        name: str,
        data: pd.DataFrame,
        settings: PrerequisiteSettings,
        ranges: Mapping[str, Mapping[str, Range]] | None,
        *,
        mode: Mode,
        trigger: str,
    ) -> list[Verdict]:
        """The prerequisites' verdicts when all pass; else the decision is recorded and
        `PrerequisitesFailed` raised."""
        inputs, outputs = ASSET_TYPES[asset_type_of(name)]
        verdicts = check_prerequisites(data, inputs, outputs, settings, ranges)
        if all(v.passed for v in verdicts):
            return verdicts
        champion = self.registry.alias(name, "champion")
        decision = Decision(None, champion, verdicts, {}, None, 0, kind="prerequisites")
        record = {**decision.as_dict(), "mode": mode.value, "trigger": trigger}
        decision_id = self.registry.record_decision(name, record)
        failed = "; ".join(decision.failed_rules)
        kept = f"champion v{champion} stays" if champion is not None else "no champion"
        raise PrerequisitesFailed(
            f"model {name}: nothing trained ({kept}); prerequisites failed: {failed}", decision, decision_id
        )

    def champion(self, name: str) -> int:
        version = self.registry.alias(name, "champion")
        if version is None:
            raise InvalidInput(f"model {name!r} has no champion")
        return version

    def drift(self, name: str, current: pd.DataFrame, *, version: int | None = None) -> DriftReport:
        """Input drift against the version's reference and residual drift against its hold-out
        residuals (on current rows after its training window; skipped with a note when too few)."""
        version = version if version is not None else self.champion(name)
        profile = self.registry.profile(name, version)
        inputs = compare(profile, {c: current[c].to_numpy() for c in profile.features if c in current})
        inputs = inputs.with_excluded(self.drift_exclude.get(name, ()))
        reference = self.registry.residual_profile(name, version)
        if reference is None:
            return replace(inputs, notes=["no residual profile for this version"])
        end = self.registry.get(name, version).envelope.get("training", {}).get("end")
        after = current[current.index > pd.Timestamp(end)] if end else current
        after = after.dropna(subset=[c for c in reference.features if c in after])
        if len(after) < MIN_RESIDUAL_ROWS or not set(reference.features) <= set(after.columns):
            note = f"residual drift skipped: {len(after)} rows after the training window (need {MIN_RESIDUAL_ROWS})"
            return replace(inputs, notes=[note])
        twin = self.registry.load(name, version)
        residuals = twin.residuals(after)
        res = compare(reference, {c: residuals[c].to_numpy() for c in reference.features})
        return replace(inputs, residuals=res.features, residual_rows=res.current_rows)

    def check_drift(self, name: str, current: pd.DataFrame, *, version: int | None = None) -> DriftReport:
        """`drift`, reported: through the alert policy when wired, else straight to model.drift:<name>."""
        version = version if version is not None else self.champion(name)
        report = self.drift(name, current, version=version)
        if self.report_drift is not None and self.report_drift(name, version, report):
            return report
        key = f"model.drift:{name}"
        if report.band in ("warn", "critical"):
            drifted = [f.feature for f in report.counted if f.drifted]
            drifted += [f"residual {f.feature}" for f in report.residuals if f.drifted]
            self.incidents.open_or_update(
                key,
                severity=Severity.CRITICAL if report.band == "critical" else Severity.WARNING,
                title=f"model {name} v{version}: input drift {report.band} (max PSI {report.max_psi:.2f})",
                detail=f"drifted features: {', '.join(drifted)}; share {report.drifted_share:.0%}",
                source="models",
            )
        elif self.incidents.active(key) is not None:
            self.incidents.resolve(key, reason=f"max PSI {report.max_psi:.3f} against v{version}", actor="models")
        return report

    def live_accuracy(self, name: str, recent: pd.DataFrame, *, version: int | None = None) -> Accuracy | None:
        """The version's accuracy on recent readings against its hold-out; None without rows or metrics."""
        version = version if version is not None else self.champion(name)
        holdout = self.registry.get(name, version).envelope.get("metrics", {}).get("holdout", {})
        if not holdout:
            return None
        twin = self.registry.load(name, version)
        rows = recent.dropna(subset=[*twin.inputs, *twin.outputs])
        if len(rows) < 2:
            return None
        live = twin.evaluate(rows)
        outputs = [o for o in twin.outputs if o in holdout]
        return Accuracy(
            name,
            version,
            {o: float(holdout[o]["mae"]) for o in outputs},
            {o: float(live[o].mae) for o in outputs},
            len(rows),
        )
