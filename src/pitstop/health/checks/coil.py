"""The checks of an air-handling unit's water coil, in the manner of the rule-based air-handler
checks used in building commissioning. Both judge windows of readings against the unit's own
usual (`CoilWindowCheck`).

- `heat_balance`: the heat the water gives up is the heat the air takes. A drifting temperature or
  flow sensor breaks that balance long before its readings look odd on their own; the stream
  scorer's twins cannot see it, since they take a drifting input as the truth.
- `coil_ua`: the coil passes as much heat as usual at the same flows. A fouled coil makes its
  controller open the valve wider for the same duty, which the twins see only when the weather
  lets it stand out; its UA, worked out from the readings, shows the loss directly.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from pitstop.core.types import Status, to_epoch_us
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold
from pitstop.health.checks.control import positive_param, shared_columns

# The coil's two sides: temperatures in °C, flows in m³/h.
COIL = {
    "water_in": "UCWIT",
    "water_out": "UCWOT",
    "water_flow": "UCWF",
    "air_in": "UCAIT",
    "air_out": "UCAOT",
    "air_flow": "UCAF",
}
RHO_CP_WATER = 1000.0 * 4186.0 / 3600.0  # W/K per m³/h
RHO_CP_AIR = 1.2 * 1006.0 / 3600.0  # W/K per m³/h
FLOW_MARGIN = 0.2  # log air flow: how far beyond the learned windows' `coil_ua` still judges (about 20 %)


@dataclass(frozen=True, slots=True)
class Estimate:
    """One window's statistic of a coil check: its value and standard error, and the readings it
    came from when the usual needs them (`rows`, one per reading)."""

    value: float
    error: float = 0.0
    rows: npt.NDArray[np.float64] | None = None


class CoilWindowCheck(Check):
    """What the coil checks share: one statistic per `window_s` of readings, judged against the
    unit's own usual, learned from the earlier whole windows of the last `lookback_s`.

    Past windows lie on a fixed grid and are judged in time order, each against the windows
    before it; one past the limit is not learned, so a fault never becomes usual (until
    `lookback_s` later, when too few windows are left and the check learns again). The current
    window (the last `window_s`) is judged the same way. The *limit* is the larger of `tolerance`
    and `spread` (default 5) times the noise: the robust spread of the learned windows (from
    neighbours' differences, which a slow fault does not widen), or the current window's own
    standard error, whichever is larger. Until `min_windows` (default 6) windows were learned the
    check is learning and healthy; a window where under half of the readings can be judged is not
    judged, and keeps a raised finding raised. Whole windows are kept on the instance between
    rounds: their readings are in and do not change.

    A subclass says which readings count (`estimate`), what its usual is (`usual`, default the
    median of the windows' values) and how a deviation reads (`describe`); `two_sided` False
    judges only deviations below the usual.
    """

    default_target = "*"
    per_asset = True
    roles = COIL
    default_thresholds = (Threshold("excess", "above", warning=1.0, target=0.0, clear=0.5),)
    default_tolerance: ClassVar[float]
    two_sided: ClassVar[bool] = True
    unjudged: ClassVar[str] = ""  # what a judged window needs, for the "not judged" summary

    def configure(self, **params: Any) -> None:
        allowed = {"tolerance", "spread", "window_s", "lookback_s", "min_windows", *COIL}
        if unknown := set(params) - allowed:
            raise ValueError(f"{self.name} check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.sensors = self.sensor_names(params)
        self.tolerance = positive_param(params, "tolerance", self.default_tolerance, self.name)
        self.spread = positive_param(params, "spread", 5.0, self.name)
        self.window_us = int(positive_param(params, "window_s", 4 * 3600.0, self.name) * 1e6)
        self.lookback_us = int(positive_param(params, "lookback_s", 14 * 86400.0, self.name) * 1e6)
        self.min_windows = int(positive_param(params, "min_windows", 6, self.name))
        self._past: dict[int, tuple[Estimate, bool] | None] = {}  # by start: (estimate, learned)

    @abc.abstractmethod
    def estimate(self, v: Mapping[str, npt.NDArray[np.float64]]) -> Estimate | None:
        """The window's statistic from its readings (columns by role), None when it cannot be judged."""

    @abc.abstractmethod
    def describe(self, deviation: float, limit: float) -> tuple[dict[str, float], str]:
        """Observed values (without excess and judged) and the summary's text for a deviation."""

    def usual(self, learned: list[Estimate]) -> tuple[Callable[[Estimate], float], float]:
        """How far an estimate is from the usual (a function), and the learned windows' robust spread."""
        values = np.array([e.value for e in learned])
        center = float(np.median(values))
        return (lambda e: e.value - center), _noise(values)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        assert ctx.assets is not None and ctx.readings is not None, f"the {self.name} check needs assets and readings"
        ids = {s.name: s.id for s in ctx.assets.sensors(self.target)}
        if not set(self.sensors.values()) <= set(ids):
            return self.result(ctx, Status.HEALTHY, f"{self.target}: no water coil", observed={"judged": 0.0})
        sensor_ids = [ids[n] for n in self.sensors.values()]
        now_us = to_epoch_us(ctx.clock.now())
        last = (now_us - self.window_us) // self.window_us * self.window_us  # whole windows end by then
        first = -(-(now_us - self.lookback_us) // self.window_us) * self.window_us
        earliest = first - self.lookback_us  # a window's own usual looks back as far again
        self._past = {s: v for s, v in self._past.items() if s >= earliest}
        if missing := [s for s in range(first, last, self.window_us) if s not in self._past]:
            columns = self._columns(ctx, sensor_ids, missing[0], last)
            for s in missing:
                window = _within(columns, s, s + self.window_us)
                found = self.estimate(window) if window is not None else None
                verdict = self._judge(found, s) if found is not None else None
                # learned unless past the limit (a window outside what was learned widens it)
                self._past[s] = None if found is None else (found, verdict is None or not verdict[0] > 1.0)
        window = self._columns(ctx, sensor_ids, now_us - self.window_us, now_us)
        current = self.estimate(window) if window is not None else None
        if current is None:
            hours = self.window_us / 3600e6
            summary = f"{self.target}: not judged (under half of the last {hours:g} h can be: {self.unjudged})"
            # No evidence either way: a finding already raised stays raised (not clear).
            return self.result(ctx, Status.HEALTHY, summary, observed={"judged": 0.0}, clear=False)
        verdict = self._judge(current, now_us - self.window_us)
        if verdict is not None and not np.isfinite(verdict[1]):
            summary = f"{self.target}: not judged (the last {self.window_us / 3600e6:g} h ran outside what it learned)"
            return self.result(ctx, Status.HEALTHY, summary, observed={"judged": 0.0}, clear=False)
        if verdict is None:
            learned = sum(1 for s in range(first, last, self.window_us) if (v := self._past.get(s)) and v[1])
            summary = f"{self.target}: learning its usual ({learned} of {self.min_windows} windows)"
            return self.result(ctx, Status.HEALTHY, summary, observed={"judged": 1.0})
        excess, deviation, limit = verdict
        observed, summary = self.describe(deviation, limit)
        return self.judge(ctx, {**observed, "excess": round(excess, 4), "judged": 1.0}, summary)

    def _judge(self, found: Estimate, start: int) -> tuple[float, float, float] | None:
        """(excess, deviation, limit) of an estimate against the windows learned in the lookback
        before `start`; None while too few were learned; a NaN deviation when the usual does not
        reach the estimate (it ran where no learned window did)."""
        learned = [
            v[0]
            for s, v in sorted(self._past.items())
            if v is not None and v[1] and start - self.lookback_us <= s < start
        ]
        if len(learned) < self.min_windows:
            return None
        away, spread = self.usual(learned)
        deviation = away(found)
        limit = max(self.tolerance, self.spread * max(spread, found.error))
        excess = (abs(deviation) if self.two_sided else -deviation) / limit
        return excess, deviation, limit

    def _columns(
        self, ctx: CheckContext, sensor_ids: list[int], start_us: int, end_us: int
    ) -> dict[str, npt.NDArray[np.float64]] | None:
        assert ctx.readings is not None
        recent = ctx.readings.recent(sensor_ids, start_us, end_us - 1)
        return shared_columns({role: recent.get(sid) for role, sid in zip(self.sensors, sensor_ids, strict=True)})


class HeatBalanceCheck(CoilWindowCheck):
    """Asset `target`'s coil: the heat the water gives up is the heat the air takes.

    Over a window (default 4 h) the check sums both sides' heat on the readings where the water
    is warmer than the air onto the coil: heating, a dry coil, where the air temperatures show all
    of the heat. (A cooling coil's condensation carries heat they do not show, so cooling readings
    are not judged.) The gap is expressed as the water temperatures' *offset* in K: how far apart
    they read from what the air side and the water flow say. Meters are never exact, so the
    offset is compared with the unit's usual (`CoilWindowCheck`: the median of the learned
    windows, `tolerance` 0.3 K). Past the limit (`excess` = |offset| / limit, warning at 1, clear
    under 0.5) a temperature or flow sensor of the coil reads wrong.

    Replayed every 30 min on the plant scorecard's simulated plant (bench/README, "Plant
    scorecard"): a water inlet sensor drifting 0.5 K a day is found 13-29 h after it begins (it
    is 0.8 K off at 38 h) on seeds 4-9 in January, March, April and December, with no false
    finding on the healthy and the fouled unit; the settings were chosen on seeds 1-3 in March.
    A drift slower than about 0.04 K a day hides in the 14 days' usual and is not found.

    Observed: offset (K), limit (K), excess, judged.
    """

    name = "heat_balance"
    issue = "loop.heat_balance"
    default_tolerance = 0.3
    unjudged = "the coil heats in them"

    def estimate(self, v: Mapping[str, npt.NDArray[np.float64]]) -> Estimate | None:
        """The heat the water gave up minus the heat the air took, over the heat capacity of the
        water that flowed (sums over the heating readings, not a median of per-reading ratios,
        which a valve at a trickle makes noisy and biased), with its standard error from the
        readings' scatter about it."""
        rows = v["water_in"] > v["air_in"] + 1.0
        if np.count_nonzero(rows) < max(2, 0.5 * len(rows)):
            return None
        water = RHO_CP_WATER * v["water_flow"][rows]
        air = RHO_CP_AIR * v["air_flow"][rows]
        gap = water * (v["water_in"][rows] - v["water_out"][rows]) - air * (v["air_out"][rows] - v["air_in"][rows])
        capacity = float(water.sum())
        if capacity <= 0:
            return None
        offset = float(gap.sum()) / capacity
        return Estimate(offset, error=float(np.std(gap - offset * water, ddof=1)) * np.sqrt(len(gap)) / capacity)

    def describe(self, deviation: float, limit: float) -> tuple[dict[str, float], str]:
        summary = (
            f"{self.target}: the coil's water temperatures read {deviation:+.2f} K off what its air side and"
            f" water flow say, against its usual (limit {limit:.2f} K); past the limit a temperature or flow"
            " sensor of the coil reads wrong"
        )
        return {"offset": round(deviation, 4), "limit": round(limit, 4)}, summary


class CoilUaCheck(CoilWindowCheck):
    """Asset `target`'s coil passes as much heat as it usually does at the same flows.

    Each reading gives the coil's UA (W/K) from its air side: the sensible heat the air gave or
    took over the most the flows could exchange is the coil's effectiveness, which the
    counter-flow effectiveness-NTU relation turns into UA. Readings where that says little are
    left out: water and air within 2 K of each other, or an effectiveness above 0.9 (a valve at a
    trickle hands over all it can whatever the UA, so fouling does not show there; a unit on hot
    water at part load is mostly not judged). UA grows with the air flow (the air side's film
    dominates a water coil): the usual is a least-squares line of log UA over log air flow,
    fitted on the readings of the learned windows; a window's value is the median of its
    readings' log UA about that line, and the usual value is the 0.9 quantile of the learned
    windows' (fouling only takes UA away, and a line through a coil that fouls slowly would follow
    it down); `tolerance` 0.1 (about 10 % of the UA). The line is trusted only at the air flows
    it was learned at: a window whose median air flow lies beyond the learned windows' (by over 20 %)
    is not judged, and is learned. (The water flow is left out: it moves with the air flow, so a
    plane over both was ill-determined and strayed where the valve opened wider than it had, which
    is just what a fouled coil makes it do.)
    The check warns when the UA is below its usual by more than the limit (`excess`, warning at
    1, clear under 0.5): fouled fins or tubes, or air bypassing the coil. It is one-sided: a
    cleaned coil passing more heat is no fault.

    Observed: ua_loss (share of the usual UA), limit (share), excess, judged.
    """

    name = "coil_ua"
    issue = "loop.coil_ua"
    default_tolerance = 0.1
    two_sided = False
    unjudged = "the coil's water and air must differ by over 2 K with an effectiveness under 0.9"

    def estimate(self, v: Mapping[str, npt.NDArray[np.float64]]) -> Estimate | None:
        air = RHO_CP_AIR * v["air_flow"]
        water = RHO_CP_WATER * v["water_flow"]
        c_min, c_max = np.minimum(air, water), np.maximum(air, water)
        ratio = np.minimum(c_min / np.maximum(c_max, 1e-9), 0.999)
        drive = v["air_in"] - v["water_in"]
        with np.errstate(divide="ignore", invalid="ignore"):
            effectiveness = air * (v["air_in"] - v["air_out"]) / (c_min * drive)
            ntu = np.log((1.0 - effectiveness * ratio) / (1.0 - effectiveness)) / (1.0 - ratio)
            log_ua = np.log(ntu * c_min)
        rows = (np.abs(drive) > 2.0) & (effectiveness > 0.02) & (effectiveness < 0.9) & (c_min > 0)
        rows &= np.isfinite(log_ua) & (v["air_flow"] > 0) & (v["water_flow"] > 0)
        n = np.count_nonzero(rows)
        if n < max(2, 0.5 * len(rows)):
            return None
        table = np.column_stack([np.ones(n), np.log(v["air_flow"][rows]), log_ua[rows]])
        return Estimate(float(np.median(log_ua[rows])), rows=table)

    def usual(self, learned: list[Estimate]) -> tuple[Callable[[Estimate], float], float]:
        table = np.concatenate([e.rows for e in learned if e.rows is not None])
        line, *_ = np.linalg.lstsq(table[:, :2], table[:, 2], rcond=1e-6)

        def about(e: Estimate) -> float:
            """The window's median log UA about the line."""
            assert e.rows is not None
            return float(np.median(e.rows[:, 2] - e.rows[:, :2] @ line))

        # The line is trusted only where it was learned: the air flows of the learned windows.
        flows = [float(np.median(e.rows[:, 1])) for e in learned if e.rows is not None]
        low, high = min(flows) - FLOW_MARGIN, max(flows) + FLOW_MARGIN

        def away(e: Estimate) -> float:
            assert e.rows is not None
            return about(e) - best if low <= float(np.median(e.rows[:, 1])) <= high else float("nan")

        values = np.array([about(e) for e in learned])
        # Fouling only takes UA away and a line through a slowly fouling coil follows it down:
        # the usual is what the coil reached in its better windows (0.9 quantile about the line).
        best = float(np.quantile(values, 0.9))
        return away, _noise(values)

    def describe(self, deviation: float, limit: float) -> tuple[dict[str, float], str]:
        loss, allowed = 1.0 - float(np.exp(deviation)), 1.0 - float(np.exp(-limit))
        summary = (
            f"{self.target}: the coil passes {loss:.0%} less heat than usual at these flows (UA; limit"
            f" {allowed:.0%}); past the limit its fins or tubes foul, or air bypasses it"
        )
        return {"ua_loss": round(loss, 4), "limit": round(allowed, 4)}, summary


def _noise(values: npt.NDArray[np.float64]) -> float:
    """The robust spread of window values in time order, from the differences of neighbours: a slow
    fault moves neighbours alike, so it does not widen the limit that should catch it."""
    if len(values) < 2:
        return 0.0
    return 1.4826 * float(np.median(np.abs(np.diff(values)))) / float(np.sqrt(2.0))


def _within(
    v: Mapping[str, npt.NDArray[np.float64]] | None, start_us: int, end_us: int
) -> dict[str, npt.NDArray[np.float64]] | None:
    """The rows of shared columns in [start, end), None when there are none."""
    if v is None:
        return None
    rows = (v["ts"] >= start_us) & (v["ts"] < end_us)
    return {role: values[rows] for role, values in v.items()} if rows.any() else None
