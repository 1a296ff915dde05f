"""Sensor checks: readings judged against the inventory's alarm limits, and frozen transmitters,
each per sensor (target `<asset>/<sensor>`), so every sensor's breach is an incident of its own.

Both look at what the plant sends in (a camera's latency, a PLC link state, free disk on the
monitoring server, any equipment sensor), not at the machine pitstop runs on.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pitstop.core.types import Status, to_epoch_us
from pitstop.health.base import Check, CheckContext, CheckResult, Direction, Threshold, worst
from pitstop.storage.repos.assets import AlarmLimits, SensorInfo

Columns = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]

ROUND_KEY = "sensor_round"  # ctx.extra: this round's sensors and their readings, read once for every target
ROUND_REUSE_S = 30.0  # a check run later than this after the round's reads (outside the runner) reads afresh
STALE_PERIODS = 3.0  # a sensor whose newest reading is older is not judged (freshness reports it)

_round_lock = threading.Lock()  # the runner's threads: the first check of a round reads, the others wait


@dataclass
class _Round:
    """What every sensor check of one round shares: read once, at `at_us`, for all targets."""

    at_us: int
    by_asset: dict[str, list[SensorInfo]]
    limit_readings: dict[int, Columns] | None = None  # the recent readings of every sensor with limits
    tails: dict[int, dict[int, Columns]] = field(default_factory=dict)  # periods -> every sensor's last readings

    def sensors(self, target: str) -> list[SensorInfo]:
        """The sensors of target `<asset>/<sensor>` (one, or none when it is gone) or `<asset>` (all of its)."""
        asset, slash, name = target.partition("/")
        own = self.by_asset.get(asset, [])
        return [s for s in own if s.name == name] if slash else own


def _round(ctx: CheckContext) -> _Round:
    """The round's shared reads; call with `_round_lock` held."""
    assert ctx.assets is not None
    now_us = to_epoch_us(ctx.clock.now())
    current = ctx.extra.get(ROUND_KEY)
    if isinstance(current, _Round) and 0 <= now_us - current.at_us <= ROUND_REUSE_S * 1e6:
        return current
    by_asset: dict[str, list[SensorInfo]] = {}
    for s in ctx.assets.sensors():
        by_asset.setdefault(s.asset, []).append(s)
    fresh = ctx.extra[ROUND_KEY] = _Round(now_us, by_asset)
    return fresh


class LimitsCheck(Check):
    """Sensor `target` (`<asset>/<sensor>`, one incident per sensor) is inside its inventory alarm
    limits; the target `*` means every sensor with limits, an asset name each of its sensors with
    limits (pitstop.health.specs.resolve expands both). Run directly on an asset name (a procedure
    step), it judges all of that asset's sensors with limits in one result.

    The median of the sensor's readings over the alarm's `for_s` (default five sampling periods,
    up to its newest reading, so at least one reading) is judged: at or above `critical_above`, or
    under `critical_below`, is critical; past `above` or `below` a warning. A sensor without a
    reading in the last three periods is not judged (`freshness` reports it): the result is
    unknown. A sensor without limits is healthy ("no limits set"). All sensors with limits are read
    in one query per round.

    Observed: ``median`` (when judged), breaches (0 or 1), critical (0 or 1), judged, unjudged; on
    an asset, ``median.<sensor>`` per judged sensor and the counts over its sensors.
    """

    default_target = "*"
    per_sensor = True
    name = "limits"
    issue = "sensor.limit"

    @classmethod
    def skips(cls, sensor: SensorInfo) -> str | None:
        return None if sensor.alarm is not None else "has no alarm limits in the inventory"

    def run(self, ctx: CheckContext, /) -> CheckResult:
        assert ctx.assets is not None and ctx.readings is not None, "the limits check needs assets and readings"
        with _round_lock:
            rnd = _round(ctx)
            if rnd.limit_readings is None:
                rnd.limit_readings = _limit_readings(ctx, rnd)
            recent = rnd.limit_readings
        one = "/" in self.target
        sensors = [s for s in rnd.sensors(self.target) if s.alarm is not None]
        if not sensors:
            none = {"breaches": 0.0, "critical": 0.0, "judged": 0.0, "unjudged": 0.0}
            return self.result(ctx, Status.HEALTHY, f"{self.target}: no limits set", observed=none)
        status, breaches, critical, unjudged = Status.HEALTHY, [], 0, []
        observed: dict[str, float] = {}
        for s in sensors:
            assert s.alarm is not None
            ts, values = recent.get(s.id, (np.empty(0, np.int64), np.empty(0)))
            if len(ts) == 0 or rnd.at_us - int(ts[-1]) > STALE_PERIODS * s.period_s * 1e6:
                unjudged.append(s.name)
                continue
            window_s = s.alarm.window_s(s.period_s)
            median = float(np.median(values[ts > ts[-1] - window_s * 1e6]))
            observed["median" if one else f"median.{s.name}"] = median
            s_status, reason = _judge(s, s.alarm, median, window_s)
            if reason:
                breaches.append(reason if one else f"{s.name} {reason}")
                critical += s_status is Status.CRITICAL
            status = worst(status, s_status)
        judged = len(sensors) - len(unjudged)
        if status is Status.HEALTHY and unjudged:
            status = Status.UNKNOWN
        observed |= {
            "breaches": float(len(breaches)),
            "critical": float(critical),
            "judged": float(judged),
            "unjudged": float(len(unjudged)),
        }
        if one:
            inside = f"median {_num(observed.get('median'))}{_unit(sensors[0])} inside its limits"
            parts = breaches or ([] if unjudged else [inside])
            if unjudged:
                parts.append(f"no reading in {STALE_PERIODS:g} periods, not judged")
        else:
            parts = breaches or [f"{judged} of {len(sensors)} sensors with limits inside them"]
            if unjudged:
                parts.append(f"no reading in {STALE_PERIODS:g} periods: {', '.join(unjudged[:8])}")
        return self.result(ctx, status, f"{self.target}: {'; '.join(parts)}", observed=observed)


def _limit_readings(ctx: CheckContext, rnd: _Round) -> dict[int, Columns]:
    """The recent readings of every sensor with limits, in one query."""
    assert ctx.readings is not None
    limited = [s for sensors in rnd.by_asset.values() for s in sensors if s.alarm is not None]
    if not limited:
        return {}
    back_s = max(s.alarm.window_s(s.period_s) + STALE_PERIODS * s.period_s for s in limited if s.alarm is not None)
    return ctx.readings.recent([s.id for s in limited], rnd.at_us - int(back_s * 1e6), rnd.at_us)


def _judge(sensor: SensorInfo, alarm: AlarmLimits, median: float, window_s: float) -> tuple[Status, str]:
    """The status of one sensor's median and, when it is past a limit, why (without its name)."""
    status, reason = Status.HEALTHY, ""
    sides: tuple[tuple[Direction, float | None, float | None], ...] = (
        ("above", alarm.above, alarm.critical_above),
        ("below", alarm.below, alarm.critical_below),
    )
    for direction, warning, critical in sides:
        if warning is None and critical is None:
            continue
        threshold = Threshold(sensor.name, direction, warning=warning, critical=critical)
        s = threshold.status(median)
        if s in (Status.WARNING, Status.CRITICAL):
            level = critical if s is Status.CRITICAL else warning
            unit = _unit(sensor)
            reason = f"median {_num(median)}{unit} {direction} {_num(level)}{unit} for {_span(window_s)}"
            status = s
    return status, reason


class FrozenCheck(Check):
    """Sensor `target` (`<asset>/<sensor>`, one incident per sensor) has not frozen: its last
    `periods` readings (default 30) are all exactly equal, while before that flat run, within
    `lookback_s` (default a day), it held at least `min_distinct` distinct values (default 3) and
    never held one value for `periods` readings in a row. So a sensor that normally moves and has
    stopped (a frozen transmitter) trips it; one that is constant by nature (a set-point, a 0/1
    link state, a valve at rest) does not. A sensor with fewer than `periods` readings is not
    judged. A flat run longer than `lookback_s` reads as constant by nature, so a frozen sensor is
    reported for about a day. The target `*` means every sensor, an asset name each of its
    sensors; run directly on an asset name (a procedure step) it judges all of them in one result.
    The last readings of every sensor are read in one query per round.

    Observed: frozen (sensors), judged (sensors with at least `periods` readings).
    """

    default_target = "*"
    per_sensor = True
    name = "frozen"
    issue = "sensor.frozen"
    default_thresholds = (Threshold("frozen", "above", warning=1, target=0),)

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"periods", "lookback_s", "min_distinct"}:
            raise ValueError(f"frozen check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.periods = _int(params, "periods", 30, low=2)
        self.min_distinct = _int(params, "min_distinct", 3, low=2)
        lookback = params.get("lookback_s", 86400.0)
        if isinstance(lookback, bool) or not isinstance(lookback, int | float) or not 0 < lookback <= 30 * 86400:
            raise ValueError("frozen check: lookback_s must be a number of seconds, over 0 and at most 30 days")
        self.lookback_s = float(lookback)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        assert ctx.assets is not None and ctx.readings is not None, "the frozen check needs assets and readings"
        with _round_lock:
            rnd = _round(ctx)
            tails = rnd.tails.get(self.periods)
            if tails is None:
                ids = [s.id for sensors in rnd.by_asset.values() for s in sensors]
                tails = rnd.tails[self.periods] = ctx.readings.tails(ids, self.periods, until_us=rnd.at_us)
        one = "/" in self.target
        sensors = rnd.sensors(self.target)
        if not sensors:
            observed = {"frozen": 0.0, "judged": 0.0}
            return self.result(ctx, Status.HEALTHY, f"{self.target}: no sensors", observed=observed)
        frozen, judged, short = [], 0, 0
        for s in sensors:
            ts, values = tails.get(s.id, (np.empty(0, np.int64), np.empty(0)))
            if len(values) < self.periods:
                short = len(values)
                continue
            judged += 1
            if values.min() != values.max() or not self._moves(ctx, s, int(ts[0]), float(values[-1])):
                continue
            held = f"{_num(float(values[-1]))}{_unit(s)}"
            span = _span((ts[-1] - ts[0]) / 1e6 + s.period_s)
            flat = f"held at {held} for the last {self.periods} readings ({span})"
            frozen.append(flat if one else f"{s.name} {flat}")
        observed = {"frozen": float(len(frozen)), "judged": float(judged)}
        if one:
            summary = f"{self.target}: {frozen[0] if frozen else 'not frozen'}"
            if not judged:
                summary = f"{self.target}: {short} of {self.periods} readings, not judged yet"
        else:
            summary = f"{self.target}: none of {judged} sensors frozen"
            if frozen:
                summary = f"{self.target}: {len(frozen)} of {judged} sensors frozen: {'; '.join(frozen[:8])}"
        return self.judge(ctx, observed, summary)

    def _moves(self, ctx: CheckContext, sensor: SensorInfo, tail_start_us: int, held: float) -> bool:
        """Whether the sensor moved before its flat run: `min_distinct` values and no run as long."""
        assert ctx.readings is not None
        start_us = tail_start_us - int(self.lookback_s * 1e6)
        # Cheap first: a 0/1 state or a sensor without history ends here, in the database.
        distinct = ctx.readings.distinct_values(sensor.id, start_us, tail_start_us, limit=self.min_distinct)
        if distinct < self.min_distinct:
            return False
        values = ctx.readings.window(sensor.id, start_us, tail_start_us)["value"].to_numpy()
        changed = np.flatnonzero(values != held)
        if len(changed) == 0:
            return False
        before = values[: changed[-1] + 1]  # up to where the current flat run began
        if len(np.unique(before)) < self.min_distinct:
            return False
        return _longest_run(before) < self.periods


def _longest_run(values: npt.NDArray[np.float64]) -> int:
    bounds = np.r_[0, np.flatnonzero(values[1:] != values[:-1]) + 1, len(values)]
    return int(np.diff(bounds).max())


def _int(params: Mapping[str, Any], name: str, default: int, *, low: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"frozen check: {name} must be a whole number of at least {low}")
    return value


def _unit(sensor: SensorInfo) -> str:
    return f" {sensor.unit}" if sensor.unit else ""


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
