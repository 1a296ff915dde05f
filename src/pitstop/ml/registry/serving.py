"""Serving the champion: the fastest predictor available, cached per model, latency per version.

The predictor is the twin compiled to ONNX Runtime (1 intra-op thread) when onnxruntime is
installed, else LightGBM's own Booster with num_threads=1 (never the scikit-learn wrapper). The
champion alias is re-read at most every ``refresh`` seconds (one small query; the artifact is
loaded and its sha256 checked only when the alias moved); a promotion or rollback in this process
takes effect at once, one in another process within ``refresh``. While a corrupt champion is
replaced by an earlier version, loading the champion is retried every ``retry`` seconds rather
than on every refresh (each attempt hashes the file and reconverts the model).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Histogram

from pitstop.core.clock import Clock
from pitstop.errors import InvalidInput
from pitstop.ml.registry.store import ModelRegistry
from pitstop.ml.twins import Twin

MAX_MARKS = 100  # out-of-range marks in one answer: enough to see the pattern, bounded for 10,000 rows
_FEW = 64  # values up to which plain floats check a range faster than numpy
Row = list[float] | dict[str, float]


class Predictor(Protocol):
    def predict_array(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]: ...


class SensorRanges(Protocol):
    """Where physical ranges come from: the inventory's sensors (`AssetRepo`)."""

    def list_assets(self, site: str | None = None) -> Sequence[Any]: ...

    def sensors(self, asset: str | None = None) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Per column, a [low, high] a value should stay in, and what the range is."""

    columns: tuple[str, ...]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    meaning: str

    @classmethod
    def of(cls, spans: dict[str, tuple[float, float]], columns: Sequence[str], meaning: str) -> Limits:
        low = np.array([spans.get(c, (-np.inf, np.inf))[0] for c in columns], dtype=np.float64)
        high = np.array([spans.get(c, (-np.inf, np.inf))[1] for c in columns], dtype=np.float64)
        return cls(tuple(columns), low, high, meaning)

    def marks(self, values: npt.NDArray[np.float64], kind: str, room: int) -> list[dict[str, Any]]:
        if values.size <= _FEW and _inside(values.tolist(), self.low.tolist(), self.high.tolist()):
            return []  # the common answer, without numpy's per-call cost (0.5 µs a row instead of 4)
        rows, cols = np.nonzero((values < self.low) | (values > self.high))
        return [
            {
                "row": int(r),
                "name": self.columns[c],
                "kind": kind,
                "value": float(values[r, c]),
                "range": [float(self.low[c]), float(self.high[c])],
                "why": self.meaning,
            }
            for r, c in zip(rows[:room], cols[:room], strict=True)
        ]


def _inside(rows: list[list[float]], low: list[float], high: list[float]) -> bool:
    """Every value within its column's [low, high] (a NaN is not: numpy then says where)."""
    return all(lo <= v <= hi for row in rows for v, lo, hi in zip(row, low, high, strict=True))


@dataclass
class _Loaded:
    version: int
    champion: int | None  # the alias when this was loaded: `version` unless the champion was corrupt
    predictor: Predictor
    path: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    seen: Limits  # the inputs' range in training
    physical: Limits  # the outputs' sensors' range in the inventory
    checked: datetime
    loaded: datetime
    latency: Any  # the version's histogram and counter children, looked up once
    rows: Any


def fastest(twin: Twin) -> tuple[Predictor, str]:
    try:
        return twin.to_onnx(), "onnxruntime"
    except ImportError:
        return twin, "lightgbm"


class ModelServer:
    def __init__(
        self,
        registry: ModelRegistry,
        clock: Clock,
        metrics: CollectorRegistry,
        *,
        sensors: SensorRanges | None = None,
        refresh: float = 5.0,
        retry: float = 60.0,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.sensors = sensors
        self.refresh = timedelta(seconds=refresh)
        self.retry = timedelta(seconds=retry)
        self._loaded: dict[str, _Loaded] = {}
        self.latency = Histogram(
            "pitstop_model_predict_seconds",
            "Prediction latency per model version",
            ["model", "version"],
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=metrics,
        )
        registry.on_move.append(lambda move: self.forget(move.name))
        self.rows = Counter(
            "pitstop_model_predictions", "Rows predicted per model version", ["model", "version"], registry=metrics
        )

    def forget(self, name: str) -> None:
        self._loaded.pop(name, None)

    def current(self, name: str) -> _Loaded:
        now = self.clock.now()
        loaded = self._loaded.get(name)
        if loaded is not None and now - loaded.checked < self.refresh:
            return loaded
        champion = self.registry.alias(name, "champion")
        if (
            loaded is None
            or champion != loaded.champion
            or (loaded.version != champion and now - loaded.loaded >= self.retry)
        ):
            version, twin = self.registry.serving(name)
            predictor, path = fastest(twin)
            labels = (name, str(version))
            ranges = self.registry.get(name, version).envelope.get("ranges", {})
            seen = {c: (v[0], v[1]) for c, v in ranges.items() if v}
            loaded = _Loaded(
                version,
                champion,
                predictor,
                path,
                tuple(twin.inputs),
                tuple(twin.outputs),
                Limits.of(seen, twin.inputs, "outside the range seen in training"),
                Limits.of(self._physical(name), twin.outputs, "outside the sensor's range in the inventory"),
                now,
                now,
                self.latency.labels(*labels),
                self.rows.labels(*labels),
            )
            self._loaded[name] = loaded
        loaded.checked = now
        return loaded

    def _physical(self, name: str) -> dict[str, tuple[float, float]]:
        """The widest [min, max] the inventory gives each sensor on assets of the model's type."""
        if self.sensors is None:
            return {}
        asset_type = name.removesuffix("-twin")
        of_type = {asset.name for asset in self.sensors.list_assets() if asset.type == asset_type}
        spans: dict[str, tuple[float, float]] = {}
        for sensor in self.sensors.sensors():
            if sensor.asset not in of_type or sensor.min_value is None or sensor.max_value is None:
                continue
            low, high = spans.get(sensor.name, (sensor.min_value, sensor.max_value))
            spans[sensor.name] = (min(low, sensor.min_value), max(high, sensor.max_value))
        return spans

    def predict(self, name: str, rows: Sequence[Row]) -> dict[str, Any]:
        """Predictions for rows of inputs, positional (in the order of the model's inputs) or named
        (`{"UCWIT": 7.0, ...}`), with marks for inputs outside what the model saw in training and
        outputs outside the sensors' physical range: a prediction there is an extrapolation."""
        loaded = self.current(name)
        X = self._matrix(rows, loaded.inputs)
        start = time.perf_counter()
        Y = loaded.predictor.predict_array(X)
        loaded.latency.observe(time.perf_counter() - start)
        loaded.rows.inc(len(X))
        marks = loaded.seen.marks(X, "input", MAX_MARKS)
        marks += loaded.physical.marks(Y, "output", MAX_MARKS - len(marks))
        return {
            "model": name,
            "version": loaded.version,
            "path": loaded.path,
            "outputs": list(loaded.outputs),
            "predictions": Y.tolist(),
            "out_of_range": marks,
        }

    @staticmethod
    def _matrix(rows: Sequence[Row], inputs: tuple[str, ...]) -> npt.NDArray[np.float64]:
        matrix: Sequence[Any] = rows
        if rows and isinstance(rows[0], dict):  # named inputs: put them in the model's order
            if not all(isinstance(row, dict) for row in rows):
                raise InvalidInput("rows must be all lists or all objects of named inputs, not both")
            named = [row for row in rows if isinstance(row, dict)]
            for i, row in enumerate(named):
                missing = [c for c in inputs if c not in row]
                unknown = sorted(set(row) - set(inputs))
                if missing or unknown:
                    raise InvalidInput(f"row {i}: missing {missing}, unknown {unknown}; the model takes {list(inputs)}")
            matrix = [[row[c] for c in inputs] for row in named]
        try:
            X = np.asarray(matrix, dtype=np.float64)
        except (TypeError, ValueError):  # ragged rows, or an object among lists
            X = np.empty((0, 0))
        if X.ndim != 2 or X.shape[1] != len(inputs) or len(X) == 0 or not np.isfinite(X).all():
            raise InvalidInput(f"rows must be finite numbers, {len(inputs)} per row: {list(inputs)}")
        return X

    def status(self) -> list[dict[str, Any]]:
        """Each model with a champion: its version and whether this process has it loaded (models
        load on their first prediction)."""
        out = []
        for name in self.registry.names():
            champion = self.registry.alias(name, "champion")
            if champion is None:
                continue
            loaded = self._loaded.get(name)
            out.append(
                {
                    "name": name,
                    "type": "LightGBM twin",
                    "champion": champion,
                    "state": "loaded" if loaded is not None else "not loaded yet (loads on its first prediction)",
                    "serving_version": loaded.version if loaded is not None else None,
                    "runtime": loaded.path if loaded is not None else None,
                }
            )
        return out
