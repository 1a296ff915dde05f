"""The `reading` check: the guide's levels on what a sensor reported, one sensor per target.

A monitored server reports its own figures through ingest (a camera's latency, a PLC link state,
its free disk); this check judges a statistic of those stored readings over a window against the
levels of the check entry, the way `cpu` judges the machine pitstop runs on.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import numpy.typing as npt

from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, worst
from pitstop.health.checks.sensors import _num, _round, _round_lock, _span, _unit
from pitstop.storage.repos.assets import SensorInfo

STATS = ("latest", "mean", "max", "min")
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,3})?)$")  # p50, p95, p99.9
MAX_WINDOW_S = 7 * 86400.0  # every reading of the window is read for a percentile: keep it bounded
SILENT = {"unknown": Status.UNKNOWN, "warning": Status.WARNING, "critical": Status.CRITICAL}


class ReadingCheck(Check):
    """Sensor `target` (`<asset>/<sensor>`, one incident per sensor) judged by the levels of its
    check entry: `stat` (latest, mean, max, min, or a percentile p50 / p90 / p95 / p99) of its
    readings over the last `window_s` seconds (default 300, at most 7 days) is the observed
    metric ``value``, compared with the entry's ``thresholds.value`` (direction, warning,
    critical, target, clear). "latest" is the newest reading within the window.

    No reading in the window is unknown ("no readings of camera_latency_ms in the last 5 min"), or
    the status `silent` names ("warning", "critical") where silence is itself the fault. Without
    levels the value is reported, healthy ("no levels set"). The target `*` means every sensor,
    an asset name each of its sensors (pitstop.health.specs.resolve expands both); run directly
    on an asset name (a procedure step) it judges all of that asset's sensors in one result.

    Observed: ``value`` and ``readings`` (how many were in the window); on an asset,
    ``value.<sensor>`` per sensor with readings.
    """

    default_target = "*"
    per_sensor = True
    name = "reading"
    runs_anywhere = True
    issue = "sensor.threshold"

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"stat", "window_s", "silent"}:
            raise ValueError(f"reading check: unknown parameter(s) {', '.join(sorted(unknown))}")
        if other := set(self.thresholds) - {"value"}:
            raise ValueError(
                f"reading check: levels go on the metric 'value' (thresholds.value), not {', '.join(sorted(other))}"
            )
        stat = params.get("stat", "latest")
        match = PERCENTILE.match(stat) if isinstance(stat, str) else None
        if not isinstance(stat, str) or (stat not in STATS and not (match and 0 < float(match[1]) < 100)):
            raise ValueError("reading check: stat must be latest, mean, max, min or a percentile such as p95")
        self.stat = stat
        self.percentile = float(match[1]) if match else None
        window = params.get("window_s", 300.0)
        if isinstance(window, bool) or not isinstance(window, int | float) or not 0 < window <= MAX_WINDOW_S:
            raise ValueError("reading check: window_s must be a number of seconds, over 0 and at most 7 days")
        self.window_s = float(window)
        silent = params.get("silent", "unknown")
        if not isinstance(silent, str) or silent not in SILENT:
            raise ValueError("reading check: silent must be unknown, warning or critical")
        self.silent = SILENT[silent]

    def run(self, ctx: CheckContext, /) -> CheckResult:
        assert ctx.assets is not None and ctx.readings is not None, "the reading check needs assets and readings"
        with _round_lock:
            rnd = _round(ctx)
        sensors = rnd.sensors(self.target)
        if not sensors:
            return self.result(ctx, Status.UNKNOWN, f"{self.target}: no such sensor in the inventory")
        start_us = rnd.at_us - int(self.window_s * 1e6)
        ids = [s.id for s in sensors]
        if self.stat == "latest":  # one row each, however long the window
            read = ctx.readings.tails(ids, 1, until_us=rnd.at_us)
        else:
            read = ctx.readings.recent(ids, start_us, rnd.at_us)
        one = "/" in self.target
        status, clear, parts, bad = Status.HEALTHY, True, [], []
        observed: dict[str, float] = {}
        for s in sensors:
            ts, values = read.get(s.id, (np.empty(0, np.int64), np.empty(0)))
            values = values[ts >= start_us]
            if len(values) == 0:
                s_status, text = self.silent, f"no readings of {s.name} in the last {_span(self.window_s)}"
                s_clear = False
            else:
                value = self._stat(values)
                observed["value" if one else f"value.{s.name}"] = value
                if one:
                    observed["readings"] = float(len(values))
                s_status, s_clear, level = self._judge(value, s)
                ago = f" ({_span((rnd.at_us - int(ts[-1])) / 1e6)} ago)" if self.stat == "latest" else ""
                text = f"{self._words()} {_num(value)}{_unit(s)}{ago}{level}"
                text = text if one else f"{s.name} {text}"
            status, clear = worst(status, s_status), clear and s_clear
            parts.append(text)
            if s_status is not Status.HEALTHY:
                bad.append(text)
        if one:
            summary = parts[0]
        elif bad:
            summary = f"{len(bad)} of {len(sensors)} sensors: {'; '.join(bad[:8])}"
        else:
            summary = f"{len(sensors)} sensors within their levels: {'; '.join(parts[:8])}"
        return self.result(ctx, status, f"{self.target}: {summary}", observed=observed, clear=clear)

    def _stat(self, values: npt.NDArray[np.float64]) -> float:
        if self.percentile is not None:
            return float(np.percentile(values, self.percentile))
        if self.stat == "mean":
            return float(values.mean())
        if self.stat == "max":
            return float(values.max())
        if self.stat == "min":
            return float(values.min())
        return float(values[-1])  # latest

    def _words(self) -> str:
        """The statistic in words: "p95 over 5 min", "latest reading"."""
        return "latest reading" if self.stat == "latest" else f"{self.stat} over {_span(self.window_s)}"

    def _judge(self, value: float, sensor: SensorInfo) -> tuple[Status, bool, str]:
        """Status, past the clear level, and the level it reached in words (" (warning >= 500 ms)")."""
        threshold = self.thresholds.get("value")
        if threshold is None:
            return Status.HEALTHY, True, " (no levels set)"
        status = threshold.status(value)
        if math.isnan(value) or status is Status.HEALTHY:
            return status, threshold.is_clear(value), ""
        level = threshold.critical if status is Status.CRITICAL else threshold.warning
        side = ">=" if threshold.direction == "above" else "<"
        return status, False, f" ({status.value} {side} {_num(level)}{_unit(sensor)})"
