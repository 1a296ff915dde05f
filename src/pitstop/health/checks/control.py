"""Control-loop checks of an air-handling unit's water coil, in the manner of the rule-based
air-handler checks used in building commissioning.

- `setpoint`: a loop that no longer holds its set point although its actuator could. A coil valve
  stuck where the controller left it changes nothing until the load moves; then the supply air
  drifts off its set point while the valve does not follow. The stream scorer's twins see that only
  when the drift stands out from what they got wrong while learning; a technician sees it at once
  from the trend.
- `heat_balance`: the heat the water gives up is the heat the air takes. A drifting temperature or
  flow sensor breaks that balance long before its readings look odd on their own; the twins cannot
  see it, since they take a drifting input as the truth.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from pitstop.core.types import Status, to_epoch_us
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold

Columns = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]

# The HVAC coil loop as the inventory names it: supply air, its set point, the air onto the coil,
# the water into it and the water flow (the valve).
LOOP = {"measured": "UCAOT", "setpoint": "UCTSP", "inlet": "UCAIT", "supply": "UCWIT", "actuator": "UCWF"}
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


class SetpointCheck(Check):
    """Asset `target` holds its set point whenever its coil could get it there.

    A reading is *off* when the supply air (`measured`) is more than `tolerance` (default 1.0,
    in the sensor's unit) from its set point while the coil could close the gap: the set point lies
    on the water's side of the air onto the coil (`inlet`; heating with warmer water, cooling with
    colder) and more than `tolerance` away from it. Falling short while the valve (`actuator`) is
    within `full_share` (default 0.85) of the widest it opened in the last `lookback_s` (default
    7 days) is the coil at its capacity, not a fault, and is not off. The check warns when
    at least 0.9 of the readings (the `off_share` threshold, a warning) of the last `window_s` (default 30 min) are off:
    a steady miss, not a controller's transient. An asset without the loop's five sensors is
    healthy ("no coil loop"); one without readings in the window is unknown.

    The defaults were set before any measurement and then measured on simulated units (bench/README,
    "Plant scorecard"): a stuck valve found on 67 of 72 simulated units, 3 false episodes in 504
    healthy unit-days over four seasons, all on a server-room unit cooling near its capacity.

    Observed: off_share (of the window's readings), error (median measured - set point), judged
    (readings in the window).
    """

    default_target = "*"
    per_asset = True
    name = "setpoint"
    issue = "loop.setpoint"
    default_thresholds = (Threshold("off_share", "above", warning=0.9, target=0.0),)

    def configure(self, **params: Any) -> None:
        allowed = {"tolerance", "window_s", "full_share", "lookback_s", *LOOP}
        if unknown := set(params) - allowed:
            raise ValueError(f"setpoint check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.sensors = {role: str(params.get(role, name)) for role, name in LOOP.items()}
        self.tolerance = _positive(params, "tolerance", 1.0)
        self.window_s = _positive(params, "window_s", 1800.0)
        self.lookback_s = _positive(params, "lookback_s", 7 * 86400.0)
        self.full_share = _positive(params, "full_share", 0.85)
        if self.full_share > 1.0:
            raise ValueError("setpoint check: full_share must be in (0, 1]")

    def run(self, ctx: CheckContext, /) -> CheckResult:
        assert ctx.assets is not None and ctx.readings is not None, "the setpoint check needs assets and readings"
        ids = {s.name: s.id for s in ctx.assets.sensors(self.target)}
        if not set(self.sensors.values()) <= set(ids):
            return self.result(ctx, Status.HEALTHY, f"{self.target}: no coil loop", observed={"judged": 0.0})
        now_us = to_epoch_us(ctx.clock.now())
        recent = ctx.readings.recent([ids[n] for n in self.sensors.values()], now_us - int(self.window_s * 1e6), now_us)
        columns = {role: recent.get(ids[name]) for role, name in self.sensors.items()}
        v = _shared(columns)
        if v is None:
            return self.result(ctx, Status.UNKNOWN, f"{self.target}: no loop readings in the last {self.window_s:g} s")
        widest = ctx.readings.highest(ids[self.sensors["actuator"]], now_us - int(self.lookback_s * 1e6), now_us)
        need = np.sign(v["setpoint"] - v["inlet"])
        error = v["measured"] - v["setpoint"]
        could = (need == np.sign(v["supply"] - v["inlet"])) & (np.abs(v["setpoint"] - v["inlet"]) > self.tolerance)
        at_capacity = (np.sign(error) == -need) & (v["actuator"] >= self.full_share * (widest or np.inf))
        off = (np.abs(error) > self.tolerance) & could & ~at_capacity
        observed = {
            "off_share": round(float(off.mean()), 4),
            "error": round(float(np.median(error)), 4),
            "judged": float(len(off)),
        }
        unit = self.sensors["measured"]
        summary = (
            f"{self.target}: {unit} {observed['error']:+.2f} from its set point; off (over {self.tolerance:g} while"
            f" the coil could close the gap) in {observed['off_share']:.0%} of the last {self.window_s / 60:g} min"
        )
        return self.judge(ctx, observed, summary)


class HeatBalanceCheck(Check):
    """Asset `target`'s coil: the heat the water gives up is the heat the air takes.

    Over the last `window_s` (default 4 h) the check sums both sides' heat on the readings where
    the water is warmer than the air onto the coil: heating, a dry coil, where the air
    temperatures show all of the heat. (A cooling coil's condensation carries heat they do not
    show, so cooling readings are not judged, nor a window that heats in under half of them.) The
    gap is expressed as the water temperatures' *offset* in K: how far apart they read from what
    the air side and the water flow say. Meters are never exact, so the offset is compared with
    the unit's own usual: the median of the same estimate over the whole earlier windows of the
    last `lookback_s` (default 14 days). The *limit* is the larger of `tolerance` (default 0.3 K)
    and `spread` (default 5) times the noise: the robust spread of those windows or the current
    window's own standard error, whichever is larger (a valve at a trickle makes the estimate
    noisy). Past the limit (`excess` = |offset| / limit, warning at 1, clear under 0.5) a
    temperature or flow sensor of the coil reads wrong; windows that end while it is raised are
    left out of the usual, so a drift that goes on stays found (for `lookback_s`; then the check
    learns again). Until `min_windows` (default 6, a day) earlier windows were judged the check is
    learning and healthy.

    Replayed every 30 min on the plant scorecard's simulated plant (bench/README, "Plant
    scorecard"): a water inlet sensor drifting 0.5 K a day is found 13-29 h after it begins (it
    is 0.8 K off at 38 h) on seeds 4-9 in January, March, April and December, with no false
    finding on the healthy and the fouled unit; the settings were chosen on seeds 1-3 in March.
    A drift slower than about 0.04 K a day hides in the 14 days' usual and is not found.

    Observed: offset (K), limit (K), excess, judged (heating readings in the window).
    """

    default_target = "*"
    per_asset = True
    name = "heat_balance"
    issue = "loop.heat_balance"
    default_thresholds = (Threshold("excess", "above", warning=1.0, target=0.0, clear=0.5),)

    def configure(self, **params: Any) -> None:
        allowed = {"tolerance", "spread", "window_s", "lookback_s", "min_windows", *COIL}
        if unknown := set(params) - allowed:
            raise ValueError(f"heat_balance check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.sensors = {role: str(params.get(role, name)) for role, name in COIL.items()}
        self.tolerance = _positive(params, "tolerance", 0.3, "heat_balance")
        self.spread = _positive(params, "spread", 5.0, "heat_balance")
        self.window_us = int(_positive(params, "window_s", 4 * 3600.0, "heat_balance") * 1e6)
        self.lookback_us = int(_positive(params, "lookback_s", 14 * 86400.0, "heat_balance") * 1e6)
        self.min_windows = int(_positive(params, "min_windows", 6, "heat_balance"))
        # Offsets of whole past windows by their start: their readings are in, they do not change.
        # A window that ends while the check is raised is NaN: the usual does not learn the fault.
        self._past: dict[int, float] = {}
        self._raised = False

    def run(self, ctx: CheckContext, /) -> CheckResult:
        assert ctx.assets is not None and ctx.readings is not None, "the heat_balance check needs assets and readings"
        ids = {s.name: s.id for s in ctx.assets.sensors(self.target)}
        if not set(self.sensors.values()) <= set(ids):
            return self.result(ctx, Status.HEALTHY, f"{self.target}: no water coil", observed={"judged": 0.0})
        sensor_ids = [ids[n] for n in self.sensors.values()]
        now_us = to_epoch_us(ctx.clock.now())
        # Past windows on a fixed grid, up to the one that ends before the current window starts.
        last = (now_us - self.window_us) // self.window_us * self.window_us
        first = -(-(now_us - self.lookback_us) // self.window_us) * self.window_us
        starts = range(first, last, self.window_us)
        self._past = {s: v for s, v in self._past.items() if s >= first}
        if missing := [s for s in starts if s not in self._past]:
            columns = self._columns(ctx, sensor_ids, missing[0], last)
            for s in missing:
                self._past[s] = float("nan") if self._raised else _water_offset(columns, s, s + self.window_us)[0]
        current = self._columns(ctx, sensor_ids, now_us - self.window_us, now_us)
        offset, error = _water_offset(current, now_us - self.window_us, now_us)
        past = np.array([v for s in starts if np.isfinite(v := self._past[s])])
        judged = float(np.count_nonzero(_heating(current))) if current else 0.0
        self._raised = False
        if not np.isfinite(offset):
            hours = self.window_us / 3600e6
            summary = f"{self.target}: heat balance not judged (the coil heated in under half of the last {hours:g} h)"
            return self.result(ctx, Status.HEALTHY, summary, observed={"judged": judged})
        if len(past) < self.min_windows:
            summary = f"{self.target}: learning its heat balance ({len(past)} of {self.min_windows} windows judged)"
            return self.result(ctx, Status.HEALTHY, summary, observed={"judged": judged})
        usual = float(np.median(past))
        noise = max(1.4826 * float(np.median(np.abs(past - usual))), error)
        limit = max(self.tolerance, self.spread * noise)
        observed = {
            "offset": round(offset - usual, 4),
            "limit": round(limit, 4),
            "excess": round(abs(offset - usual) / limit, 4),
            "judged": judged,
        }
        summary = (
            f"{self.target}: the coil's water temperatures read {observed['offset']:+.2f} K off what its air"
            f" side and water flow say, against its usual over {self.lookback_us / 86400e6:g} days (limit"
            f" {limit:.2f} K); past the limit a temperature or flow sensor of the coil reads wrong"
        )
        result = self.judge(ctx, observed, summary)
        self._raised = result.status is not Status.HEALTHY or (self._raised and not result.is_clear)
        return result

    def _columns(
        self, ctx: CheckContext, sensor_ids: list[int], start_us: int, end_us: int
    ) -> dict[str, npt.NDArray[np.float64]] | None:
        assert ctx.readings is not None
        recent = ctx.readings.recent(sensor_ids, start_us, end_us - 1)
        return _shared({role: recent.get(sid) for role, sid in zip(self.sensors, sensor_ids, strict=True)})


def _heating(v: Mapping[str, npt.NDArray[np.float64]]) -> npt.NDArray[np.bool_]:
    """Readings where the water is warmer than the air onto the coil by over 1 K: a dry coil."""
    return v["water_in"] > v["air_in"] + 1.0


def _water_offset(v: Mapping[str, npt.NDArray[np.float64]] | None, start_us: int, end_us: int) -> tuple[float, float]:
    """The coil's heat balance over [start, end) as the water temperatures' offset in K: the heat
    the water gave up minus the heat the air took, over the heat capacity of the water that flowed
    (sums over the heating readings, not a median of per-reading ratios, which a valve at a trickle
    makes noisy and biased), and its standard error from the readings' scatter about it. NaN when
    under half of the readings there heat: a window where the coil changes over is mostly the
    changeover."""
    nan = (float("nan"), float("nan"))
    if v is None:
        return nan
    ts = v["ts"]
    inside = (ts >= start_us) & (ts < end_us)
    rows = _heating(v) & inside
    if np.count_nonzero(rows) < max(2, 0.5 * np.count_nonzero(inside)):
        return nan
    water = RHO_CP_WATER * v["water_flow"][rows]
    air = RHO_CP_AIR * v["air_flow"][rows]
    gap = water * (v["water_in"][rows] - v["water_out"][rows]) - air * (v["air_out"][rows] - v["air_in"][rows])
    capacity = float(water.sum())
    if capacity <= 0:
        return nan
    offset = float(gap.sum()) / capacity
    return offset, float(np.std(gap - offset * water, ddof=1)) * np.sqrt(len(gap)) / capacity


def _shared(columns: Mapping[str, Columns | None]) -> dict[str, npt.NDArray[np.float64]] | None:
    """The loop's values on the timestamps every sensor has, or None when they share none."""
    present = {role: c for role, c in columns.items() if c is not None and len(c[0])}
    if len(present) < len(columns):
        return None
    common = functools.reduce(np.intersect1d, (ts for ts, _ in present.values()))
    if len(common) == 0:
        return None
    shared = {role: values[np.searchsorted(ts, common)] for role, (ts, values) in present.items()}
    return {"ts": common.astype(np.float64)} | shared


def _positive(params: dict[str, Any], name: str, default: float, check: str = "setpoint") -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e12:
        raise ValueError(f"{check} check: {name} must be a positive number")
    return float(value)
