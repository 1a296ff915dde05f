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


class Predictor(Protocol):
    def predict_array(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]: ...


@dataclass
class _Loaded:
    version: int
    champion: int | None  # the alias when this was loaded: `version` unless the champion was corrupt
    predictor: Predictor
    path: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
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
        refresh: float = 5.0,
        retry: float = 60.0,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.refresh = timedelta(seconds=refresh)
        self.retry = timedelta(seconds=retry)
        self._loaded: dict[str, _Loaded] = {}
        self.latency = Histogram(
            "pitstop_model_predict_seconds",
            "Prediction latency per model version",
            ["model", "version"],
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1),
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
            loaded = _Loaded(
                version,
                champion,
                predictor,
                path,
                tuple(twin.inputs),
                tuple(twin.outputs),
                now,
                now,
                self.latency.labels(*labels),
                self.rows.labels(*labels),
            )
            self._loaded[name] = loaded
        loaded.checked = now
        return loaded

    def predict(self, name: str, rows: list[list[float]]) -> dict[str, Any]:
        loaded = self.current(name)
        X = np.asarray(rows, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(loaded.inputs) or not np.isfinite(X).all():
            raise InvalidInput(f"rows must be finite numbers, {len(loaded.inputs)} per row: {list(loaded.inputs)}")
        start = time.perf_counter()
        Y = loaded.predictor.predict_array(X)
        loaded.latency.observe(time.perf_counter() - start)
        loaded.rows.inc(len(X))
        return {
            "model": name,
            "version": loaded.version,
            "path": loaded.path,
            "outputs": list(loaded.outputs),
            "predictions": Y.tolist(),
        }
