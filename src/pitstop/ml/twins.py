"""Digital twins: LightGBM regressors that predict an asset's outputs from its inputs.

A healthy asset's outputs follow its inputs; the twin learns that relation, and the residuals
(measured minus predicted, per output) feed a detector and name the output that went wrong.
Serving goes through ONNX Runtime (`Twin.to_onnx`), which is several times faster per row than
LightGBM's own ``Booster.predict``; parity with the native model is checked by the tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from pitstop.ml.base import Estimator, FloatArray, InvalidInputError, NotFittedError

HVAC_INPUTS: tuple[str, ...] = ("UCWIT", "UCAIT", "UCWF", "UCAIH", "AMBT", "UCTSP")
HVAC_OUTPUTS: tuple[str, ...] = ("UCAOT", "UCWOT", "UCAF")
ASSET_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {"hvac": (HVAC_INPUTS, HVAC_OUTPUTS)}
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class TargetMetrics:
    r2: float
    mape: float  # percent
    mae: float

    def as_dict(self) -> dict[str, float]:
        return {"r2": round(self.r2, 5), "mape": round(self.mape, 4), "mae": round(self.mae, 5)}


def regression_metrics(truth: npt.ArrayLike, predicted: npt.ArrayLike) -> TargetMetrics:
    y = np.asarray(truth, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    ss_res = float(((y - p) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    nonzero = np.abs(y) > 1e-9
    mape = float(np.mean(np.abs((y[nonzero] - p[nonzero]) / y[nonzero]))) * 100 if nonzero.any() else 0.0
    return TargetMetrics(1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0, mape, float(np.mean(np.abs(y - p))))


def time_split(frame: pd.DataFrame, holdout: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The earliest rows train, the latest ``holdout`` share tests (never shuffled)."""
    if not 0.0 < holdout < 1.0:
        raise ValueError("holdout must be in (0, 1)")
    ordered = frame.sort_index()
    cut = int(len(ordered) * (1.0 - holdout))
    return ordered.iloc[:cut], ordered.iloc[cut:]


class Twin(Estimator):
    """One LightGBM regressor per output, all on the same inputs.

    Parameters
    ----------
    inputs, outputs
        Column names of the frame given to `fit`.
    n_estimators, num_leaves, learning_rate, random_state
        LightGBM settings (fixed seed, single-threaded, deterministic).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"a": rng.uniform(0, 1, 500), "b": rng.uniform(0, 1, 500)})
    >>> frame["y"] = 2 * frame["a"] - frame["b"]
    >>> twin = Twin(inputs=("a", "b"), outputs=("y",), n_estimators=100).fit(frame)
    >>> bool(twin.evaluate(frame)["y"].r2 > 0.95)
    True
    """

    def __init__(
        self,
        *,
        inputs: Sequence[str],
        outputs: Sequence[str],
        n_estimators: int = 300,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        random_state: int = 0,
    ) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.random_state = random_state

    @classmethod
    def for_asset_type(cls, asset_type: str, **params: Any) -> Twin:
        try:
            inputs, outputs = ASSET_TYPES[asset_type]
        except KeyError:
            raise InvalidInputError(f"no twin for asset type {asset_type!r}; known: {sorted(ASSET_TYPES)}") from None
        return cls(inputs=inputs, outputs=outputs, **params)

    def _columns(self, frame: pd.DataFrame, names: Sequence[str]) -> FloatArray:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise InvalidInputError(f"frame lacks columns {missing}")
        values = frame[list(names)].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise InvalidInputError("frame holds NaN or infinite values")
        return values

    def fit(self, frame: pd.DataFrame) -> Self:
        import lightgbm as lgb  # imported on use: it takes seconds to load

        X = self._columns(frame, self.inputs)
        Y = self._columns(frame, self.outputs)
        if len(X) < 20:
            raise InvalidInputError(f"a twin needs at least 20 rows to train, got {len(X)}")
        params = {
            "objective": "regression",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "seed": self.random_state,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        }
        self.boosters_ = [
            lgb.train(params, lgb.Dataset(X, label=Y[:, j]), num_boost_round=self.n_estimators)
            for j in range(Y.shape[1])
        ]
        self.residual_scale_ = np.maximum((Y - self.predict_array(X)).std(axis=0), 1e-9)
        return self

    def predict_array(self, X: npt.ArrayLike) -> FloatArray:
        """Outputs (rows x outputs) for input rows in the order of ``inputs``."""
        if not hasattr(self, "boosters_"):
            raise NotFittedError("Twin is not fitted; call fit() first")
        data = np.asarray(X, dtype=np.float64)
        return np.column_stack([b.predict(data, num_threads=1) for b in self.boosters_])

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            self.predict_array(self._columns(frame, self.inputs)), index=frame.index, columns=list(self.outputs)
        )

    def residuals(self, frame: pd.DataFrame) -> pd.DataFrame:
        """(measured - predicted) / training residual spread, per output: a detector's input."""
        measured = self._columns(frame, self.outputs)
        scaled = (measured - self.predict(frame).to_numpy()) / self.residual_scale_
        return pd.DataFrame(scaled, index=frame.index, columns=list(self.outputs))

    def evaluate(self, frame: pd.DataFrame) -> dict[str, TargetMetrics]:
        predicted = self.predict(frame)
        return {name: regression_metrics(frame[name], predicted[name]) for name in self.outputs}

    # -- artifacts ---------------------------------------------------------------------------
    def save(self, path: Path, *, metadata: dict[str, Any] | None = None) -> None:
        """A JSON envelope: format version, parameters, residual scales, LightGBM model text."""
        import lightgbm as lgb  # imported on use: it takes seconds to load

        if not hasattr(self, "boosters_"):
            raise NotFittedError("Twin is not fitted; call fit() first")
        envelope = {
            "format": FORMAT_VERSION,
            "kind": "pitstop.twin",
            "lightgbm": lgb.__version__,
            "params": {**self.get_params(), "inputs": list(self.inputs), "outputs": list(self.outputs)},
            "residual_scale": self.residual_scale_.tolist(),
            "models": [b.model_to_string() for b in self.boosters_],
            "metadata": metadata or {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(envelope))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Twin:
        import lightgbm as lgb  # imported on use: it takes seconds to load

        envelope = json.loads(path.read_text())
        if envelope.get("kind") != "pitstop.twin" or envelope.get("format") != FORMAT_VERSION:
            raise InvalidInputError(f"{path} is not a pitstop twin of format {FORMAT_VERSION}")
        twin = cls(**envelope["params"])
        twin.boosters_ = [lgb.Booster(model_str=text) for text in envelope["models"]]
        twin.residual_scale_ = np.asarray(envelope["residual_scale"], dtype=np.float64)
        return twin

    def to_onnx(self) -> OnnxTwin:
        """The same twin compiled to one ONNX Runtime session per output (1 intra-op thread)."""
        import onnxmltools
        import onnxruntime as ort
        from onnxmltools.convert.common.data_types import FloatTensorType

        if not hasattr(self, "boosters_"):
            raise NotFittedError("Twin is not fitted; call fit() first")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        sessions = []
        for booster in self.boosters_:
            model = onnxmltools.convert_lightgbm(
                booster, initial_types=[("x", FloatTensorType([None, len(self.inputs)]))], target_opset=15
            )
            sessions.append(ort.InferenceSession(model.SerializeToString(), options))
        return OnnxTwin(sessions)


class OnnxTwin:
    """Serving path: float32 inputs, one session per output."""

    def __init__(self, sessions: list[Any]) -> None:
        self.sessions = sessions
        self._input = sessions[0].get_inputs()[0].name

    def predict_array(self, X: npt.ArrayLike) -> FloatArray:
        data = np.ascontiguousarray(X, dtype=np.float32)
        if data.ndim == 1:
            data = data[np.newaxis, :]
        return np.column_stack([s.run(None, {self._input: data})[0].ravel() for s in self.sessions]).astype(np.float64)
