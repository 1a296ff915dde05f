"""Scenarios: which faults happen to which asset, from when. The ground truth of a simulation.

    cooling_all_year = ["ahu-2"]        # units serving rooms with high gains (a server room):
                                        # chilled water in every season; the others switch to hot
                                        # water when the season turns cold

    [[faults]]
    kind = "bearing_wear"
    asset = "pump-1"
    start = "-2d"                       # relative to the run's start, or ISO 8601 with offset
    end = "+10d"                        # bearing_wear: the failure time

    [[faults]]
    kind = "sensor_drift"
    asset = "ahu-1"
    sensor = "UCWIT"
    start = "2026-03-01T00:00:00+00:00"
    severity = 0.5                      # sensor_drift: bias grows by this many units a day

What `severity` and `end` mean for each kind is in `FaultKind`'s table below.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from pitstop.errors import ScenarioError


class FaultKind(StrEnum):
    """severity and end, per kind:

    | kind           | asset types        | severity                                   | end                  |
    |----------------|--------------------|--------------------------------------------|----------------------|
    | fouling        | hvac               | fraction of the coil's UA lost per 30 days | cleaned              |
    | valve_stuck    | hvac               | (unused) stuck where it was at start       | freed                |
    | bearing_wear   | pump, fan, motor   | (unused)                                   | the failure time     |
    | disk_fill      | monitoring-server  | recordings grow (1 + 9 x severity) faster  | fixed                |
    | camera_latency | monitoring-server  | latency rises severity x 1,000 ms per hour | fixed                |
    | plc_link_drop  | monitoring-server  | (unused) plc_link_up reads 0               | link back            |
    | service_down   | monitoring-server  | (unused) service_up reads 0                | service back         |
    | sensor_drift   | any (needs sensor) | bias grows by severity units per day       | recalibrated         |
    | sensor_freeze  | any (needs sensor) | (unused) holds its value at start          | unfrozen             |
    """

    FOULING = "fouling"
    VALVE_STUCK = "valve_stuck"
    BEARING_WEAR = "bearing_wear"
    DISK_FILL = "disk_fill"
    CAMERA_LATENCY = "camera_latency"
    PLC_LINK_DROP = "plc_link_drop"
    SERVICE_DOWN = "service_down"
    SENSOR_DRIFT = "sensor_drift"
    SENSOR_FREEZE = "sensor_freeze"


ROTATING_TYPES = frozenset({"pump", "fan", "motor"})
ASSET_TYPES: dict[FaultKind, frozenset[str]] = {
    FaultKind.FOULING: frozenset({"hvac"}),
    FaultKind.VALVE_STUCK: frozenset({"hvac"}),
    FaultKind.BEARING_WEAR: ROTATING_TYPES,
    FaultKind.DISK_FILL: frozenset({"monitoring-server"}),
    FaultKind.CAMERA_LATENCY: frozenset({"monitoring-server"}),
    FaultKind.PLC_LINK_DROP: frozenset({"monitoring-server"}),
    FaultKind.SERVICE_DOWN: frozenset({"monitoring-server"}),
}
SENSOR_FAULTS = frozenset({FaultKind.SENSOR_DRIFT, FaultKind.SENSOR_FREEZE})

# The signals each kind of equipment fault changes (a sensor fault changes its own sensor only).
AFFECTED_SIGNALS: dict[FaultKind, frozenset[str]] = {
    FaultKind.FOULING: frozenset({"UCWF", "UCWOT", "UCAOT"}),
    FaultKind.VALVE_STUCK: frozenset({"UCWF", "UCWOT", "UCAOT"}),
    FaultKind.BEARING_WEAR: frozenset({"vib_rms", "vib_kurtosis", "vib_crest", "bearing_temp"}),
    FaultKind.DISK_FILL: frozenset({"disk_free_pct"}),
    FaultKind.CAMERA_LATENCY: frozenset({"camera_latency_ms"}),
    FaultKind.PLC_LINK_DROP: frozenset({"plc_link_up"}),
    FaultKind.SERVICE_DOWN: frozenset({"service_up"}),
}

DEFAULT_BEARING_LIFE = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    asset: str
    start: datetime
    severity: float = 1.0
    end: datetime | None = None
    sensor: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or (self.end is not None and self.end.tzinfo is None):
            raise ScenarioError(f"{self.describe()}: times must carry a UTC offset")
        if self.end is not None and self.end <= self.start:
            raise ScenarioError(f"{self.describe()}: end must come after start")
        if not 0 < self.severity <= 10:
            raise ScenarioError(f"{self.describe()}: severity must be in (0, 10], not {self.severity}")
        if (self.kind in SENSOR_FAULTS) != (self.sensor is not None):
            need = "needs" if self.kind in SENSOR_FAULTS else "takes no"
            raise ScenarioError(f"{self.describe()}: {self.kind} {need} sensor")

    def describe(self) -> str:
        where = f"{self.asset}/{self.sensor}" if self.sensor else self.asset
        return f"fault {self.kind} on {where}"

    @property
    def signals(self) -> frozenset[str]:
        """The signals this fault changes."""
        return frozenset({self.sensor}) if self.sensor else AFFECTED_SIGNALS[self.kind]

    @property
    def failure_time(self) -> datetime | None:
        if self.kind is not FaultKind.BEARING_WEAR:
            return None
        return self.end or self.start + DEFAULT_BEARING_LIFE

    def active(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True, slots=True)
class Scenario:
    faults: tuple[Fault, ...] = ()
    cooling_all_year: frozenset[str] = frozenset()  # HVAC units on chilled water in every season

    def of(self, asset: str) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.asset == asset)

    def failure_time(self, asset: str) -> datetime | None:
        """When the asset fails (its earliest bearing failure), or None if nothing fails."""
        times = [t for f in self.of(asset) if (t := f.failure_time) is not None]
        return min(times, default=None)

    def active(self, at: datetime) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.active(at))

    def check(self, asset_types: dict[str, str], sensors: dict[str, Iterable[str]]) -> None:
        """Refuse faults on unknown assets or sensors, or on an asset of the wrong type."""
        for name in sorted(self.cooling_all_year):
            if asset_types.get(name) != "hvac":
                raise ScenarioError(f"cooling_all_year: {name!r} is not a simulated hvac unit")
        for f in self.faults:
            if f.asset not in asset_types:
                raise ScenarioError(f"{f.describe()}: no simulated asset {f.asset!r}")
            kind_types = ASSET_TYPES.get(f.kind)
            if kind_types is not None and asset_types[f.asset] not in kind_types:
                raise ScenarioError(
                    f"{f.describe()}: {f.kind} happens to {', '.join(sorted(kind_types))}, "
                    f"not to a {asset_types[f.asset]}"
                )
            if f.sensor is not None and f.sensor not in set(sensors.get(f.asset, ())):
                raise ScenarioError(f"{f.describe()}: {f.asset!r} has no simulated sensor {f.sensor!r}")

    @classmethod
    def load(cls, path: Path, origin: datetime) -> Scenario:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{path}: cannot read: {exc}") from None
        return cls.parse(text, origin, source=str(path))

    @classmethod
    def parse(cls, text: str, origin: datetime, *, source: str = "scenario") -> Scenario:
        """Read TOML; relative times ("-2d", "+6h") count from `origin`."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
        return cls.from_mapping(raw, origin, source=source)

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], origin: datetime, *, source: str = "scenario") -> Scenario:
        """A scenario from parsed TOML (or JSON): {"faults": [{kind, asset, start, ...}, ...],
        "cooling_all_year": [asset, ...]}."""
        extra = set(raw) - {"faults", "cooling_all_year"}
        if extra:
            raise ScenarioError(
                f"{source}: unknown key(s) {', '.join(sorted(extra))}; a scenario has [[faults]] and cooling_all_year"
            )
        cooling = raw.get("cooling_all_year", [])
        if not isinstance(cooling, list) or not all(isinstance(a, str) for a in cooling):
            raise ScenarioError(f"{source}: `cooling_all_year` must be a list of asset names")
        entries = raw.get("faults", [])
        if not isinstance(entries, list):
            raise ScenarioError(f"{source}: `faults` must be a list of tables ([[faults]])")
        faults = []
        for i, entry in enumerate(entries, 1):
            try:
                faults.append(_fault(entry, origin))
            except ScenarioError as exc:
                raise ScenarioError(f"{source}: fault {i}: {exc}") from None
        return cls(tuple(faults), frozenset(cooling))


_FIELDS = {"kind", "asset", "start", "end", "severity", "sensor"}


def _fault(entry: Any, origin: datetime) -> Fault:
    if not isinstance(entry, dict):
        raise ScenarioError("each fault is a table")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ScenarioError(f"unknown field(s) {', '.join(sorted(unknown))}")
    for name in ("kind", "asset", "start"):
        if name not in entry:
            raise ScenarioError(f"missing {name!r}")
    try:
        kind = FaultKind(entry["kind"])
    except ValueError:
        raise ScenarioError(f"unknown kind {entry['kind']!r}; one of {', '.join(FaultKind)}") from None
    severity = entry.get("severity", 1.0)
    if isinstance(severity, bool) or not isinstance(severity, int | float):
        raise ScenarioError("severity must be a number")
    sensor = entry.get("sensor")
    if not isinstance(entry["asset"], str) or (sensor is not None and not isinstance(sensor, str)):
        raise ScenarioError("asset and sensor are names (strings)")
    end = entry.get("end")
    return Fault(
        kind=kind,
        asset=entry["asset"],
        start=parse_time(entry["start"], origin),
        severity=float(severity),
        end=None if end is None else parse_time(end, origin),
        sensor=sensor,
    )


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d', '1.5w' -> timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ScenarioError(f"not a duration: {text!r} (a number and one of s, m, h, d, w, e.g. 1d)")
    try:
        return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    except OverflowError:
        raise ScenarioError(f"duration {text!r} is too long") from None


def parse_time(value: object, origin: datetime) -> datetime:
    """An aware datetime, an ISO 8601 string with offset, or '+6h' / '-2d' from origin."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip()[:1] in ("+", "-"):
        sign = -1 if value.strip().startswith("-") else 1
        try:
            return origin + sign * parse_duration(value.strip()[1:])
        except OverflowError:
            raise ScenarioError(f"time {value!r} is out of range") from None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ScenarioError(f"not a time: {value!r} (ISO 8601 with offset, or +6h / -2d)") from None
    else:
        raise ScenarioError(f"not a time: {value!r}")
    if parsed.tzinfo is None:
        raise ScenarioError(f"time {value!s} needs a UTC offset")
    return parsed
