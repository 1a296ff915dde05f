"""Control-loop checks: a loop that no longer holds its set point although its actuator could.

A coil valve stuck where the controller left it changes nothing until the load moves; then the
supply air drifts off its set point while the valve does not follow. The stream scorer's twins see
that only when the drift stands out from what they got wrong while learning; a technician sees it
at once from the trend: the air is off its set point, the water could move it there, and the valve
is not open as far as it goes. That is this check, in the manner of the rule-based air-handler
checks used in building commissioning. The coil's own checks are in `pitstop.health.checks.coil`.
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
    roles = LOOP
    name = "setpoint"
    issue = "loop.setpoint"
    default_thresholds = (Threshold("off_share", "above", warning=0.9, target=0.0),)

    def configure(self, **params: Any) -> None:
        allowed = {"tolerance", "window_s", "full_share", "lookback_s", *LOOP}
        if unknown := set(params) - allowed:
            raise ValueError(f"setpoint check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.sensors = self.sensor_names(params)
        self.tolerance = positive_param(params, "tolerance", 1.0)
        self.window_s = positive_param(params, "window_s", 1800.0)
        self.lookback_s = positive_param(params, "lookback_s", 7 * 86400.0)
        self.full_share = positive_param(params, "full_share", 0.85)
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
        v = shared_columns(columns)
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


def shared_columns(columns: Mapping[str, Columns | None]) -> dict[str, npt.NDArray[np.float64]] | None:
    """The values of several sensors (by role) on the timestamps all of them have, with those
    timestamps as "ts"; None when they share none."""
    present = {role: c for role, c in columns.items() if c is not None and len(c[0])}
    if len(present) < len(columns):
        return None
    common = functools.reduce(np.intersect1d, (ts for ts, _ in present.values()))
    if len(common) == 0:
        return None
    shared = {role: values[np.searchsorted(ts, common)] for role, (ts, values) in present.items()}
    return {"ts": common.astype(np.float64)} | shared


def positive_param(params: dict[str, Any], name: str, default: float, check: str = "setpoint") -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e12:
        raise ValueError(f"{check} check: {name} must be a positive number")
    return float(value)
