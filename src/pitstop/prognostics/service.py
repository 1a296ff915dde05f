"""Prognostics: how long each asset has left, and the work that has to happen before then.

Every run reads each asset's health index — the hourly level of one sensor (bearing vibration
RMS by default) over its healthy level at the start of the current life — and asks the RUL model
for an interval of hours left. The estimate is stored with its evidence. When the lower bound
falls below the lead time, ``asset.rul_low:<asset>`` opens and a work order is due at the lower
bound, placed into a maintenance window before it, and moved (never duplicated) as the estimate
moves. When that order closes, what was found is set against the prediction (`Outcome`), so
the model's calibration is on record; a failure or a repair ends the asset's life, and failures
become run-to-failure histories the model learns from.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from pitstop.config.models import PrognosticsSettings
from pitstop.core.types import Severity, from_epoch_us, to_epoch_us
from pitstop.errors import InvalidInput, NotFound
from pitstop.maintenance.workorders import FAILURE_CODE, SEVERITY_WEIGHT, OrderState
from pitstop.ml.rul.base import History, RulModel
from pitstop.prognostics.store import Estimate, LifeEnd, Outcome, PrognosticsStore

if TYPE_CHECKING:
    from pitstop.core.clock import Clock
    from pitstop.incidents import IncidentRegistry
    from pitstop.maintenance import Maintenance
    from pitstop.maintenance.workorders import WorkOrder
    from pitstop.storage.engine import Database
    from pitstop.storage.repos.assets import AssetRepo

log = logging.getLogger("pitstop.prognostics")

SOURCE = "prognostics"
HOUR_US = 3_600_000_000
RESOLVE_MARGIN = 1.25  # the incident resolves once the lower bound is back above lead time x this


def rul_key(asset: str) -> str:
    return f"asset.rul_low:{asset}"


@dataclass(frozen=True, slots=True)
class HealthIndex:
    """An asset's current life: hours since it began, the index, and the healthy level it is relative to."""

    asset: str
    start: datetime
    hours: np.ndarray
    index: np.ndarray
    baseline: float

    def history(self) -> History:
        return History(
            self.asset, self.hours, self.index[:, np.newaxis], ("health",), meta={"start": self.start.isoformat()}
        )


@dataclass(frozen=True, slots=True)
class _Fleet:
    """What every asset's estimate in one run needs to know about the fleet, read once per run."""

    kinds: dict[str, str] = field(default_factory=dict)  # asset -> type
    failures: tuple[LifeEnd, ...] = ()  # recorded failures up to the run's time, oldest first


class Prognostics:
    def __init__(
        self,
        settings: PrognosticsSettings,
        *,
        db: Database,
        clock: Clock,
        assets: AssetRepo,
        incidents: IncidentRegistry,
        maintenance: Maintenance,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.assets = assets
        self.incidents = incidents
        self.maintenance = maintenance
        self.store = PrognosticsStore(db)
        # Per asset type: the failures the model was fitted on, the model, and how many histories it learned from.
        self._models: dict[str, tuple[tuple[int, ...], RulModel, int]] = {}
        # Per (sensor, life start): the hourly means read so far and the end they were read to.
        self._hours: dict[tuple[int, int | None], tuple[np.ndarray, np.ndarray, int]] = {}
        maintenance.orders.on_done.append(self.order_done)
        maintenance.orders.register_verifier(SOURCE, maintenance.incident_cleared)  # cleared with its incident

    # -- the scheduled job ----------------------------------------------------------------------

    def scheduled(self, now: datetime) -> None:
        self.run(now)

    def run(self, now: datetime | None = None, *, asset: str | None = None, plan: bool = True) -> list[Estimate]:
        """Estimate every asset with a health sensor (or one), store, and act on what is low.
        `plan=False`: leave the plan of work orders to the caller (a fleet's scheduler makes it once)."""
        now = now or self.clock.now()
        if asset is not None:  # one asset asked for by name: its errors are the caller's answer
            estimate = self.estimate(asset, now)
            if estimate is not None and self._act(estimate) and plan:
                self.plan()
            return [estimate] if estimate is not None else []
        out, changed = [], False
        fleet = self._fleet(now)  # read once: per-asset reads of the whole fleet grow with its square
        for name in self.monitored():
            try:
                estimate = self._estimate(name, now, fleet)
            except Exception:  # one asset's bad data must not stop the fleet's estimates
                log.exception("estimating the remaining life of %s failed", name)
                continue
            if estimate is not None:
                changed = self._act(estimate) or changed
                out.append(estimate)
        if changed:
            self.plan()  # once per run, after every order is set
        return out

    def monitored(self) -> list[str]:
        """Assets that carry the health sensor."""
        return sorted({s.asset for s in self.assets.sensors() if s.name == self.settings.health_sensor})

    # -- estimating -----------------------------------------------------------------------------

    def health_index(self, asset: str, now: datetime) -> HealthIndex | None:
        """The current life's health index up to ``now``; None when there is too little of it."""
        sensor = next((s for s in self.assets.sensors(asset) if s.name == self.settings.health_sensor), None)
        if sensor is None:
            raise NotFound(f"asset {asset!r} has no sensor {self.settings.health_sensor!r} to read its health from")
        ends = self.store.life_ends(asset, before=now)
        start = ends[-1].ended_at if ends else None
        return self._index(asset, sensor.id, start, now)

    def _hourly(self, sensor_id: int, start: datetime | None, end: datetime) -> tuple[np.ndarray, np.ndarray]:
        """Hourly means of a life so far. Hours already read are kept, so each run reads only the hours
        since the last one (the last hour again: it may have been partial). A reading that arrives
        later for an hour already read is not seen until pitstop restarts."""
        start_us, end_us = None if start is None else to_epoch_us(start), to_epoch_us(end)
        key = (sensor_id, start_us)
        cached = self._hours.get(key)
        if cached is None or end_us < cached[2] or len(cached[0]) == 0:
            hours, means = self.store.hourly(sensor_id, start_us, end_us)
        else:
            old_hours, old_means, _ = cached
            last = int(old_hours[-1])
            new_hours, new_means = self.store.hourly(sensor_id, last, end_us)
            keep = old_hours < last
            hours = np.concatenate([old_hours[keep], new_hours])
            means = np.concatenate([old_means[keep], new_means])
        if cached is None or end_us >= cached[2]:
            self._hours[key] = (hours, means, end_us)
        return hours, means

    def _index(self, asset: str, sensor_id: int, start: datetime | None, end: datetime) -> HealthIndex | None:
        hours_us, means = self._hourly(sensor_id, start, end)
        if len(means) < self.settings.min_history_hours:
            return None
        hours = (hours_us - hours_us[0]) / HOUR_US
        baseline = float(np.median(means[hours < self.settings.baseline_hours]))
        if not np.isfinite(baseline) or baseline <= 0:
            return None
        return HealthIndex(asset, from_epoch_us(int(hours_us[0])), hours.astype(np.float64), means / baseline, baseline)

    def estimate(self, asset: str, now: datetime | None = None) -> Estimate | None:
        """Estimate and store the remaining life of one asset (None: too little history yet)."""
        now = now or self.clock.now()
        return self._estimate(asset, now, self._fleet(now))

    def _fleet(self, now: datetime) -> _Fleet:
        return _Fleet(
            kinds={a.name: a.type for a in self.assets.list_assets()},
            failures=tuple(e for e in self.store.life_ends(before=now) if e.failed),
        )

    def _estimate(self, asset: str, now: datetime, fleet: _Fleet) -> Estimate | None:
        index = self.health_index(asset, now)
        if index is None:
            return None
        model, trained_on = self._model(asset, fleet)
        rul = model.predict([index.history()])[0]
        # Rows sit at the start of their hour (in training too), and the model counts the remaining
        # life from the last row: so does the estimate. If data stopped, the time since is gone too.
        at = min(now, index.start + timedelta(hours=float(index.hours[-1])))
        evidence: dict[str, Any] = {
            "health_sensor": self.settings.health_sensor,
            "healthy_level": round(index.baseline, 6),
            # The level the model extrapolates to: learned from the failures once there are some.
            "failure_level": float(getattr(model, "threshold_", self.settings.failure_level)),
            "life_start": index.start.isoformat(),
            "hours_read": len(index.index),
            "recent_health": [round(float(v), 4) for v in index.index[-24:]],
            "trained_on_failures": trained_on,
        }
        return self.store.add_estimate(asset, self.settings.model, at, rul, float(index.index[-1]), evidence)

    def _model(self, asset: str, fleet: _Fleet) -> tuple[RulModel, int]:
        """The model for the asset's type, fitted on the failures of that type recorded so far.

        Returns the model and the number of run-to-failure histories it learned from. One fitted
        model is kept per type and refitted only when that type's failures change.
        """
        from pitstop.ml.rul import create

        kind = fleet.kinds.get(asset, "")
        failures = [e for e in fleet.failures if fleet.kinds.get(e.asset) == kind]
        ids = tuple(e.id for e in failures)
        cached = self._models.get(kind)
        if cached is None or cached[0] != ids:
            histories = [h for h in (self._failure_history(e) for e in failures) if h is not None and self._saw(h)]
            model = create(
                self.settings.model,
                coverage=self.settings.coverage,
                failure_level=self.settings.failure_level,
                min_rise=self.settings.min_rise,
            )
            try:
                cached = (ids, model.fit(histories), len(histories))
            except Exception as exc:
                # One odd failure record (a failure mode the health sensor never saw, too few runs
                # for gbm) must not stop every estimate of the type: fall back to the degradation
                # trend towards the configured failure level, and keep that until the failures change.
                log.warning("RUL model for %r could not learn from %d failure(s): %s", kind, len(histories), exc)
                fallback = create(
                    "degradation",
                    coverage=self.settings.coverage,
                    failure_level=self.settings.failure_level,
                    min_rise=self.settings.min_rise,
                )
                cached = (ids, fallback.fit([]), 0)
            self._models[kind] = cached
        return cached[1], cached[2]

    def _saw(self, history: History) -> bool:
        """Whether the health sensor saw this failure coming: its index rose at least a quarter of the
        way to the configured failure level. A failure it never saw (a seal, a motor winding) would
        teach the trend model a failure level at the healthy one."""
        seen = float(np.median(history.X[-24:, 0]))
        if seen < 1.0 + 0.25 * (self.settings.failure_level - 1.0):
            log.info("not learning from %s's failure: its health index ended at %.2f", history.unit, seen)
            return False
        return True

    def _failure_history(self, end: LifeEnd) -> History | None:
        """The run to failure that ``end`` closed: the asset's index from its previous end up to it."""
        sensor = next((s for s in self.assets.sensors(end.asset) if s.name == self.settings.health_sensor), None)
        if sensor is None:
            return None
        before = [e for e in self.store.life_ends(end.asset) if e.ended_at < end.ended_at]
        index = self._index(end.asset, sensor.id, before[-1].ended_at if before else None, end.ended_at)
        if index is None:
            return None
        failed_at = (end.ended_at - index.start).total_seconds() / 3600.0
        return History(end.asset, index.hours, index.index[:, np.newaxis], ("health",), failed_at=failed_at)

    # -- from estimate to work ------------------------------------------------------------------

    def _act(self, estimate: Estimate) -> bool:
        """Open, update or resolve the asset's incident and work order; True when an order changed."""
        key = rul_key(estimate.asset)
        lead = self.settings.lead_time_hours
        order = self.maintenance.orders.active_for(estimate.asset, key)
        due = estimate.at + timedelta(hours=estimate.lower_h)
        if not (estimate.degrading and estimate.lower_h < lead):
            recovered = not estimate.degrading or estimate.lower_h >= lead * RESOLVE_MARGIN
            if recovered and self.incidents.active(key) is not None:
                self.incidents.resolve(
                    key, reason=f"remaining life back above the lead time ({estimate.lower_h:.0f} h)", actor=SOURCE
                )
            # An order already raised stays (a person may have planned for it), but follows strong evidence.
            if order is None or order.due_at is None or not estimate.degrading:
                return False
            if not _moves_due(order.due_at, due, estimate.at, timedelta(hours=lead)):
                return False
            self._order(estimate, order.severity, order.incident_id, due)
            return True
        severity = Severity.CRITICAL if estimate.lower_h < lead / 4 else Severity.WARNING
        title = (
            f"{estimate.asset}: {estimate.median_h:.0f} h of life left "
            f"({estimate.lower_h:.0f}–{estimate.upper_h:.0f} h, {estimate.coverage:.0%})"
        )
        detail = json.dumps({"estimate": estimate.as_dict(), "lead_time_h": lead})
        incident, _ = self.incidents.open_or_update(key, severity=severity, title=title, detail=detail, source=SOURCE)
        if order is None:
            if severity is not Severity.CRITICAL and self._after_false_alarm(estimate):
                return False
            self._order(estimate, severity, incident.id, due)
            return True
        reschedule = order.due_at is None or _moves_due(order.due_at, due, estimate.at, timedelta(hours=lead))
        # An update only ever raises an order's severity: a lower one changes nothing on it.
        escalates = SEVERITY_WEIGHT[severity] > SEVERITY_WEIGHT[order.severity]
        if not reschedule and not escalates and not _moved(self._estimate_of(order), estimate):
            return False  # the estimate barely moved: leave the order (and its log) alone
        self._order(estimate, severity, incident.id, due if reschedule else None)
        return True

    def _order(self, estimate: Estimate, severity: Severity, incident_id: int | None, due: datetime | None) -> None:
        """Open the asset's order, or set the active one from this estimate (and to ``due``, when given)."""
        self.maintenance.orders.open_for(
            SOURCE,
            estimate.asset,
            rul_key(estimate.asset),
            title=f"Inspect and repair {estimate.asset} before its predicted failure",
            severity=severity,
            detail=(
                f"{estimate.asset}: {estimate.median_h:.0f} h of life left "
                f"({estimate.lower_h:.0f}–{estimate.upper_h:.0f} h, {estimate.coverage:.0%}) "
                f"as of {estimate.at:%Y-%m-%d %H:%M} UTC"
            ),
            due_at=due,
            estimated_h=self.settings.repair_hours,
            incident_id=incident_id,
            prediction=f"rul:{estimate.id}",
            actor=SOURCE,
            reschedule=due is not None,
        )

    def _after_false_alarm(self, estimate: Estimate) -> bool:
        """Within a lead time of an inspection that found nothing, a warning opens no new order
        (the incident still shows the estimate); a critical estimate always does."""
        outcomes = self.store.outcomes(estimate.asset)
        last = outcomes[-1] if outcomes else None
        return (
            last is not None
            and last.finding == "false_alarm"
            and estimate.at - last.recorded_at < timedelta(hours=self.settings.lead_time_hours)
        )

    def plan(self) -> None:
        """Place open orders into maintenance windows far enough ahead to hold every RUL order's due date."""
        horizon = max(timedelta(days=14), timedelta(hours=self.settings.lead_time_hours) + timedelta(days=1))
        self.maintenance.planner.plan(horizon, actor=SOURCE)

    # -- when the work is done ------------------------------------------------------------------

    def order_done(self, order: WorkOrder) -> None:
        """Record what became of the prediction behind a closed order, and end the asset's life.

        The failure time is the order's close time, unless a failure or replacement was recorded
        by hand since the estimate (`pitstop rul end --at`): that one is the end, and no second
        end is added. The end is written before the outcome, so a retried close completes both.
        """
        estimate = self._estimate_of(order) if order.source == SOURCE else None
        if estimate is None:
            return
        closed = order.closed_at or self.clock.now()
        code = order.failure_code
        recorded = [e for e in self.store.life_ends(order.asset) if estimate.at <= e.ended_at <= closed]
        if code is not None and code != "no_fault" and not recorded:
            recorded = [
                self.record_life_end(
                    order.asset, closed, failed=code == "failed", code=code, source="work_order", ref=f"wo:{order.id}"
                )
            ]
        ended_at = recorded[-1].ended_at if recorded else closed
        outcome = self.store.add_outcome(Outcome.judge(estimate, order.id, code, ended_at))
        if outcome is not None and self.incidents.active(rul_key(order.asset)) is not None:
            self.incidents.resolve(
                rul_key(order.asset), reason=f"work order {order.id} closed: {outcome.finding}", actor=SOURCE
            )

    def _estimate_of(self, order: WorkOrder) -> Estimate | None:
        """The estimate an order was last set from (its ``prediction`` is ``rul:<id>``)."""
        prediction = order.prediction or ""
        if not prediction.startswith("rul:") or not prediction[4:].isdigit():
            return None
        return self.store.estimate(int(prediction[4:]))

    def record_life_end(
        self,
        asset: str,
        ended_at: datetime,
        *,
        failed: bool,
        code: str,
        source: str = "manual",
        ref: str = "",
        note: str = "",
    ) -> LifeEnd:
        """A failure or a replacement: it ends the current history (and a failure teaches the model)."""
        if self.assets.get_asset(asset) is None:
            raise NotFound(f"no asset named {asset!r}")
        if ended_at.tzinfo is None:
            raise InvalidInput("the end of life needs a time zone")
        if ended_at > self.clock.now() + timedelta(minutes=5):
            raise InvalidInput("an end of life cannot lie in the future")
        if not FAILURE_CODE.fullmatch(code or ""):  # fullmatch: `$` alone lets a trailing newline in
            raise InvalidInput(
                f"failure code {(code or '')[:60]!r} must be a short lowercase name such as failed, bearing_wear"
            )
        end = self.store.add_life_end(
            asset, ended_at, failed=failed, code=code, source=source, ref=ref, note=note[:2000], now=self.clock.now()
        )
        if source != "work_order":  # recorded by hand: the prediction's incident and unstarted order are moot
            key = rul_key(asset)
            if self.incidents.active(key) is not None:
                self.incidents.resolve(key, reason=f"life ended: {code}", actor=SOURCE)
            order = self.maintenance.orders.active_for(asset, key)
            if order is not None and order.state in (OrderState.OPEN, OrderState.PLANNED):
                self.maintenance.orders.cancel(order.id, actor=SOURCE, reason=f"life ended ({code}) before the work")
        return end

    # -- calibration ----------------------------------------------------------------------------

    def calibration(
        self,
        asset: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        assets: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """How the predictions behind closed orders turned out (recorded in [since, until)).

        Interval coverage counts failures only, where the true life is known. A repair before the
        failure says only that the life was longer than what passed: past the upper bound that is a
        known miss, counted apart (``censored_misses``), so the coverage is not biased low by them.
        """
        if asset is not None and self.assets.get_asset(asset) is None:
            raise NotFound(f"no asset named {asset!r}")
        outcomes = self.store.outcomes(asset, since=since, until=until, assets=assets)
        failed = [o for o in outcomes if o.finding == "failed"]
        errors = np.array([o.error_h for o in failed if o.error_h is not None], dtype=np.float64)
        findings: dict[str, int] = {}
        for o in outcomes:
            findings[o.finding] = findings.get(o.finding, 0) + 1
        covered = sum(o.covered or 0 for o in failed)
        return {
            "asset": asset,
            "outcomes": len(outcomes),
            "findings": findings,
            "nominal_coverage": sorted({o.coverage for o in outcomes}),
            "interval_coverage": round(covered / len(failed), 4) if failed else None,
            "failures": len(failed),
            "censored_misses": sum(1 for o in outcomes if o.finding == "confirmed" and o.covered == 0),
            "late": int((errors > 0).sum()),
            "early": int((errors < 0).sum()),
            "mean_error_h": round(float(errors.mean()), 2) if len(errors) else None,
            "mean_abs_error_h": round(float(np.abs(errors).mean()), 2) if len(errors) else None,
            "recent": [o.as_dict() for o in outcomes[-20:]],
        }

    def summary(self, asset: str, *, days: float = 30.0) -> dict[str, Any]:
        """An asset's RUL for the API, CLI and dashboard: latest, curve, ends of life, calibration."""
        if not (math.isfinite(days) and 0 < days <= 3650):
            raise InvalidInput("days must be more than 0 and at most 3650")
        if self.assets.get_asset(asset) is None:
            raise NotFound(f"no asset named {asset!r}")
        curve = self.store.estimates(asset, since=self.clock.now() - timedelta(days=days))
        order = self.maintenance.orders.active_for(asset, rul_key(asset))
        return {
            "asset": asset,
            "latest": curve[-1].as_dict() if curve else None,
            "lead_time_h": self.settings.lead_time_hours,
            "curve": [
                {"at": e.at.isoformat(), "median_h": e.median_h, "lower_h": e.lower_h, "upper_h": e.upper_h}
                for e in curve
            ],
            "work_order": order.as_dict() if order is not None else None,
            "life_ends": [e.as_dict() for e in self.store.life_ends(asset)],
            "calibration": self.calibration(asset),
        }


def _moves_due(current: datetime, proposed: datetime, now: datetime, lead: timedelta) -> bool:
    """Bring a due date forward readily; push it back only on strong evidence.

    Earlier by more than six hours moves it. Later moves it only while the work is still more than
    the lead time away, and only when the time left at least doubles: work already due soon is not
    deferred on one optimistic estimate near the end of a bearing's life.
    """
    if proposed < current - timedelta(hours=6):
        return True
    return current - now > lead and proposed > current + max(timedelta(days=1), current - now)


def _moved(previous: Estimate | None, estimate: Estimate) -> bool:
    """The predicted failure time moved by more than six hours and a tenth of the time left."""
    if previous is None:
        return True
    before = previous.at + timedelta(hours=previous.median_h)
    after = estimate.at + timedelta(hours=estimate.median_h)
    return abs((after - before).total_seconds()) / 3600.0 > max(6.0, 0.1 * estimate.median_h)
