"""The fleet simulator: readings of every simulated sensor of an inventory, for any time span.

Every value is a pure function of (seed, asset, sensor, timestamp, scenario): generating a month
at once or a minute at a time gives the same readings, and the same seed gives the same fleet.
Simulated time is just the timestamps asked for; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from pitstop.core.types import to_epoch_us
from pitstop.errors import ScenarioError
from pitstop.inventory import InventorySpec
from pitstop.sim import hvac, noise, rotating, server
from pitstop.sim.noise import F64, I64
from pitstop.sim.rotating import RotatingModel, Waveform
from pitstop.sim.scenario import Fault, FaultKind, Scenario
from pitstop.storage.repos.assets import AssetRepo

SIMULATED_TYPES = ("hvac", "pump", "fan", "motor", "monitoring-server")


class Model(Protocol):
    def signals(self, t: F64, k: I64) -> dict[str, tuple[F64, F64 | float]]:
        """True value and sensor-noise standard deviation of each signal at times t (s since epoch);
        k is the sample index of each time on its sensor's grid."""
        ...


@dataclass(frozen=True, slots=True)
class SimSensor:
    name: str
    period_s: float
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class SimAsset:
    name: str
    site: str
    type: str
    sensors: tuple[SimSensor, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """Columns of simulated readings: row i is (keys[key[i]], ts_us[i], value[i])."""

    keys: tuple[tuple[str, str], ...]  # (asset, sensor)
    key: npt.NDArray[np.int32]
    ts_us: npt.NDArray[np.int64]
    value: F64

    def __len__(self) -> int:
        return len(self.ts_us)

    @property
    def asset(self) -> npt.NDArray[np.str_]:
        return np.array([a for a, _ in self.keys], dtype=np.str_)[self.key]

    @property
    def sensor(self) -> npt.NDArray[np.str_]:
        return np.array([s for _, s in self.keys], dtype=np.str_)[self.key]

    def series(self, asset: str, sensor: str) -> pd.Series:
        """One sensor's values, indexed by aware UTC time."""
        mask = self.key == self.keys.index((asset, sensor))
        index = pd.DatetimeIndex(self.ts_us[mask].astype("datetime64[us]"), name="ts").tz_localize("UTC")
        return pd.Series(self.value[mask], index=index, name=f"{asset}/{sensor}")

    def frame(self) -> pd.DataFrame:
        """Long format: asset, sensor, ts, value."""
        ts = pd.DatetimeIndex(self.ts_us.astype("datetime64[us]")).tz_localize("UTC")
        return pd.DataFrame({"asset": self.asset, "sensor": self.sensor, "ts": ts, "value": self.value})

    @classmethod
    def concat(cls, keys: tuple[tuple[str, str], ...], parts: Iterable[Batch]) -> Batch:
        items = list(parts)
        if not items:
            return cls(keys, np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64))
        return cls(
            keys,
            np.concatenate([b.key for b in items]),
            np.concatenate([b.ts_us for b in items]),
            np.concatenate([b.value for b in items]),
        )


class Simulator:
    """Readings for the sensors of the assets whose type the simulator knows; others are left out."""

    def __init__(self, assets: Iterable[SimAsset], *, seed: int = 0, scenario: Scenario | None = None) -> None:
        self.seed = seed
        self.scenario = scenario or Scenario()
        self.assets: dict[str, SimAsset] = {}
        self.models: dict[str, Model] = {}
        self.sensors: dict[tuple[str, str], SimSensor] = {}
        listed = list(assets)
        for asset in listed:
            if asset.type not in SIMULATED_TYPES:
                continue
            model = self._model(asset)
            known = set(model.signals(np.zeros(1), np.zeros(1, np.int64)))
            sensors = tuple(s for s in asset.sensors if s.name in known)
            if not sensors:
                continue
            self.assets[asset.name] = SimAsset(asset.name, asset.site, asset.type, sensors)
            self.models[asset.name] = model
            self.sensors.update({(asset.name, s.name): s for s in sensors})
        self.keys: tuple[tuple[str, str], ...] = tuple(self.sensors)
        self.scenario.check(
            {a.name: a.type for a in listed},
            {a: [s.name for s in self.assets[a].sensors] for a in self.assets},
        )
        self._models_with_faults()

    def _model(self, asset: SimAsset, faults: tuple[Fault, ...] = ()) -> Model:
        if asset.type == "hvac":
            cooling = asset.name in self.scenario.cooling_all_year
            return hvac.HvacModel(self.seed, asset.name, asset.site, faults, cooling_all_year=cooling)
        if asset.type == "monitoring-server":
            return server.ServerModel(self.seed, asset.name, faults)
        return rotating.RotatingModel(self.seed, asset.name, asset.site, asset.type, faults)

    def _models_with_faults(self) -> None:
        for name, asset in self.assets.items():
            faults = self.scenario.of(name)
            if faults:
                self.models[name] = self._model(asset, faults)

    # -- readings ------------------------------------------------------------------------------

    def batch(self, start: datetime, end: datetime) -> Batch:
        """Every reading with start <= ts < end, on each sensor's grid (multiples of its period)."""
        start_us, end_us = _us(start), _us(end)
        parts = []
        for name, asset in self.assets.items():
            by_period: dict[int, list[SimSensor]] = {}
            for s in asset.sensors:
                by_period.setdefault(_period_us(s), []).append(s)
            for period_us, sensors in by_period.items():
                k = np.arange(-(-start_us // period_us), -(-end_us // period_us), dtype=np.int64)
                if len(k) == 0:
                    continue
                ts_us = k * period_us
                signals = self.models[name].signals(ts_us / 1e6, k)
                for s in sensors:
                    value = self._measure(name, s, k, ts_us, signals)
                    index = self.keys.index((name, s.name))
                    parts.append(Batch(self.keys, np.full(len(k), index, np.int32), ts_us, value))
        return Batch.concat(self.keys, parts)

    def chunks(self, start: datetime, end: datetime, step: timedelta = timedelta(days=1)) -> Iterator[Batch]:
        """The same readings as batch(start, end), a step at a time (bounded memory)."""
        at = start
        while at < end:
            upto = min(at + step, end)
            yield self.batch(at, upto)
            at = upto

    def count(self, start: datetime, end: datetime) -> int:
        """How many readings batch(start, end) holds."""
        start_us, end_us = _us(start), _us(end)
        total = 0
        for s in self.sensors.values():
            p = _period_us(s)
            total += max(0, -(-end_us // p) - -(-start_us // p))
        return total

    def _measure(
        self,
        asset: str,
        sensor: SimSensor,
        k: I64,
        ts_us: I64,
        signals: dict[str, tuple[F64, F64 | float]],
        skip: Fault | None = None,
    ) -> F64:
        """True value + sensor noise, then the sensor's own faults, then its range (a transmitter saturates)."""
        true, sigma = signals[sensor.name]
        value = true + sigma * noise.normal(noise.key(self.seed, asset, sensor.name), k)
        t = ts_us / 1e6
        for f in self.scenario.of(asset):
            if f.sensor != sensor.name or f is skip:
                continue
            since = t - f.start.timestamp()
            active = (since >= 0) & (t < f.end.timestamp() if f.end else True)
            if f.kind is FaultKind.SENSOR_DRIFT:
                value = value + np.where(active, f.severity * since / 86_400.0, 0.0)
            elif f.kind is FaultKind.SENSOR_FREEZE:
                value = np.where(active, self._frozen(asset, sensor, f), value)
        lo = -np.inf if sensor.min is None else sensor.min
        hi = np.inf if sensor.max is None else sensor.max
        return np.clip(value, lo, hi)

    def _frozen(self, asset: str, sensor: SimSensor, fault: Fault) -> float:
        """The value the sensor showed last at or before the freeze."""
        period_us = _period_us(sensor)
        k = np.array([_us(fault.start) // period_us], dtype=np.int64)
        ts_us = k * period_us
        signals = self.models[asset].signals(ts_us / 1e6, k)
        return float(self._measure(asset, sensor, k, ts_us, signals, skip=fault)[0])

    # -- ground truth --------------------------------------------------------------------------

    def failure_time(self, asset: str) -> datetime | None:
        """When the asset's bearing fails in this scenario, or None if it does not."""
        if asset not in self.assets:
            raise ScenarioError(f"no simulated asset {asset!r}")
        return self.scenario.failure_time(asset)

    def faults(self, asset: str | None = None) -> tuple[Fault, ...]:
        return self.scenario.faults if asset is None else self.scenario.of(asset)

    def waveform(self, asset: str, at: datetime, n: int = 2048, fs: float = 25_600.0) -> Waveform:
        """A raw vibration window of a rotating machine at `at`, impacts at BPFO once the bearing wears."""
        model = self.models.get(asset)
        if not isinstance(model, RotatingModel):
            raise ScenarioError(f"{asset!r} is not a simulated pump, fan or motor")
        return model.waveform(at.timestamp(), n, fs)

    def site_of(self, asset: str) -> str:
        return self.assets[asset].site


def assets_of_inventory(spec: InventorySpec) -> list[SimAsset]:
    return [
        SimAsset(a.name, a.site, a.type, tuple(SimSensor(s.name, s.period_s, s.min, s.max) for s in a.sensors))
        for a in spec.assets
    ]


def assets_of_database(repo: AssetRepo) -> list[SimAsset]:
    sensors: dict[str, list[SimSensor]] = {}
    for s in repo.sensors():
        sensors.setdefault(s.asset, []).append(SimSensor(s.name, s.period_s, s.min_value, s.max_value))
    return [SimAsset(a.name, a.site, a.type, tuple(sensors.get(a.name, ()))) for a in repo.list_assets()]


def _us(at: datetime) -> int:
    if at.tzinfo is None:
        raise ScenarioError("simulated times must carry a UTC offset")
    return to_epoch_us(at)


def _period_us(sensor: SimSensor) -> int:
    return max(1, round(sensor.period_s * 1_000_000))
