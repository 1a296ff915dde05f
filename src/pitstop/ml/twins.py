"""Digital twins: LightGBM regressors that predict an asset's outputs from its inputs.

A healthy asset's outputs follow its inputs; the twin learns that relation, and the residuals
(measured minus predicted, per output) feed a detector and name the output that went wrong.

The twin has three steps, all applied alike in `Twin.predict_array` and in the ONNX serving
path (`Twin.to_onnx`), so serving computes exactly what training saw:

1. **Derived features** (`Derived`): the raw inputs plus expressions over them, from a small
   vocabulary — ``a-b``, ``|a-b|``, ``log(a)`` and ``a*(b-c)``. For the HVAC coil these are the
   gap between set point and inlet air (which the controller and fan respond to), the water-air
   temperature difference (what drives the heat) and the flow times that difference (a heat-rate
   proxy). They are computed in float32 from one row's inputs only: no lags and no outputs, so a
   single row can be served. (The simulator's coil is static, with no thermal inertia: lagged or
   smoothed inputs carried nothing measurable there.)
2. **A ridge-regression base** per output on the standardized derived features (``ridge``; None
   turns it off). Trees cannot extrapolate; the linear base carries the outputs beyond the
   range of the training rows (a valve opened wider, a colder day), the trees learn what is left.
3. **LightGBM** per output on the base's residual.

Serving goes through ONNX Runtime (`Twin.to_onnx`): one session holds the feature step, every
output's trees and the base. It is several times faster per row than LightGBM's own
``Booster.predict``; parity with the native model is checked by the tests.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from pitstop.ml.base import Estimator, FloatArray, InvalidInputError, NotFittedError

HVAC_INPUTS: tuple[str, ...] = ("UCWIT", "UCAIT", "UCWF", "UCAIH", "AMBT", "UCTSP")
HVAC_OUTPUTS: tuple[str, ...] = ("UCAOT", "UCWOT", "UCAF")
HVAC_DERIVED: tuple[str, ...] = (
    "UCTSP-UCAIT",  # how far the controller has to move the air: valve and fan follow it
    "|UCTSP-UCAIT|",  # the fan speeds up with the gap either way
    "UCWIT-UCAIT",  # the temperature difference that drives the heat
    "log(UCWF)",  # the coil's gain grows with the flow, less than linearly
    "UCWF*(UCWIT-UCAIT)",  # a heat-rate proxy: flow times the driving difference
)
ASSET_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {"hvac": (HVAC_INPUTS, HVAC_OUTPUTS)}
DERIVED: dict[str, tuple[str, ...]] = {"hvac": HVAC_DERIVED}


class Loop(NamedTuple):
    """One loop twin: ``outputs`` predicted from ``inputs`` (and ``derived`` features of them).
    ``name`` tells its residuals from another loop's residuals of the same outputs ("" for none)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    derived: tuple[str, ...]

    def labels(self) -> list[str]:
        """The names of this loop's residuals: its outputs, after the loop's name if it has one."""
        return loop_labels(self.name, self.outputs)


def loop_labels(name: str, outputs: Sequence[str]) -> list[str]:
    return [f"{name} {output}" if name else output for output in outputs]


# The loop twins of an asset type; the stream scorer (`pitstop.ml.scoring`) scores their residuals
# and explains findings with them. For HVAC:
# - The loop (the unit with its controller): what the valve and fan are driven to (UCWF, UCAF) and
#   where that leaves the air and water (UCAOT, UCWOT), from the conditions and the set point
#   alone: a valve that stops following its controller shows on UCWF and on an air temperature
#   that misses its set point.
# - The coil: its outlet temperatures from what goes through it (inlet temperatures, humidity,
#   the measured water and air flows), without the set point: heat exchange does not depend on
#   what the controller wants, and the valve's hunting is in the measured flow, not in the
#   residual, so a fouled coil or a drifting inlet sensor shows here, small as it is.
LOOPS: dict[str, tuple[Loop, ...]] = {
    "hvac": (
        Loop(
            "",
            ("UCWIT", "UCAIT", "UCAIH", "AMBT", "UCTSP"),
            ("UCWF", "UCAOT", "UCWOT", "UCAF"),
            ("UCTSP-UCAIT", "|UCTSP-UCAIT|", "UCWIT-UCAIT"),
        ),
        Loop(
            "coil",
            ("UCWIT", "UCAIT", "UCAIH", "UCWF", "UCAF"),
            ("UCAOT", "UCWOT"),
            ("UCWIT-UCAIT", "log(UCWF)", "UCWF*(UCWIT-UCAIT)", "UCAF*(UCWIT-UCAIT)"),
        ),
    )
}
FORMAT_VERSION = 2  # 2: derived features and the ridge base; format 1 (neither) still loads
LOG_FLOOR = 1e-3

F32 = npt.NDArray[np.float32]
_NAME = r"([A-Za-z_][A-Za-z0-9_]*)"
_FORMS: tuple[tuple[str, re.Pattern[str], Callable[..., F32]], ...] = (
    ("absdiff", re.compile(rf"^\|{_NAME}-{_NAME}\|$"), lambda a, b: np.abs(a - b)),
    ("diff", re.compile(rf"^{_NAME}-{_NAME}$"), lambda a, b: a - b),
    ("log", re.compile(rf"^log\({_NAME}\)$"), lambda a: np.log(np.maximum(a, np.float32(LOG_FLOOR)))),
    ("product", re.compile(rf"^{_NAME}\*\({_NAME}-{_NAME}\)$"), lambda a, b, c: a * (b - c)),
)


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


class Derived:
    """The twin's feature step: the raw inputs, then one column per expression, in float32.

    Expressions name inputs: ``a-b``, ``|a-b|``, ``log(a)`` (of ``max(a, 1e-3)``), ``a*(b-c)``.

    Examples
    --------
    >>> d = Derived(("a", "b"), ("a-b", "|a-b|", "log(b)", "a*(a-b)"))
    >>> d.names
    ('a', 'b', 'a-b', '|a-b|', 'log(b)', 'a*(a-b)')
    >>> d.transform([[1.0, 3.0]]).astype(float).round(3).tolist()
    [[1.0, 3.0, -2.0, 2.0, 1.099, -2.0]]
    """

    def __init__(self, inputs: Sequence[str], expressions: Sequence[str]) -> None:
        self.inputs = tuple(inputs)
        self.expressions = tuple(expressions)
        self.names = self.inputs + self.expressions
        self._steps: list[tuple[str, Callable[..., F32], tuple[int, ...]]] = []
        for text in self.expressions:
            for kind, pattern, func in _FORMS:
                match = pattern.match(text.replace(" ", ""))
                if match is None:
                    continue
                unknown = [n for n in match.groups() if n not in self.inputs]
                if unknown:
                    raise InvalidInputError(f"feature {text!r} names {unknown}, which are not inputs {list(inputs)}")
                self._steps.append((kind, func, tuple(self.inputs.index(n) for n in match.groups())))
                break
            else:
                raise InvalidInputError(f"feature {text!r} is not one of a-b, |a-b|, log(a), a*(b-c)")

    def transform(self, X: npt.ArrayLike) -> F32:
        """Rows of inputs (in the order of ``inputs``) to rows of features, float32."""
        raw = np.asarray(X, dtype=np.float32)
        if raw.ndim == 1:
            raw = raw[np.newaxis, :]
        if raw.ndim != 2 or raw.shape[1] != len(self.inputs):
            raise InvalidInputError(f"expected rows of {len(self.inputs)} inputs {list(self.inputs)}, got {raw.shape}")
        if not self._steps:
            return np.ascontiguousarray(raw)
        columns = raw.T
        derived = [func(*(columns[i] for i in idx)) for _, func, idx in self._steps]
        return np.ascontiguousarray(np.column_stack([raw, *derived]), dtype=np.float32)

    def onnx_nodes(self, source: str, target: str) -> tuple[list[Any], list[Any]]:
        """The same step as ONNX nodes (float32), from tensor ``source`` to ``target``."""
        from onnx import TensorProto, helper

        nodes: list[Any] = []
        constants = [helper.make_tensor("log_floor", TensorProto.FLOAT, [], [LOG_FLOOR])]
        columns = {i for _, _, idx in self._steps for i in idx}
        for i in sorted(columns):
            constants.append(helper.make_tensor(f"col{i}", TensorProto.INT64, [1], [i]))
            nodes.append(helper.make_node("Gather", [source, f"col{i}"], [f"x{i}"], axis=1))
        parts = [source]
        for k, (kind, _, idx) in enumerate(self._steps):
            out = f"d{k}"
            if kind in ("diff", "absdiff"):
                nodes.append(
                    helper.make_node("Sub", [f"x{idx[0]}", f"x{idx[1]}"], [out if kind == "diff" else f"{out}s"])
                )
                if kind == "absdiff":
                    nodes.append(helper.make_node("Abs", [f"{out}s"], [out]))
            elif kind == "log":
                nodes.append(helper.make_node("Max", [f"x{idx[0]}", "log_floor"], [f"{out}m"]))
                nodes.append(helper.make_node("Log", [f"{out}m"], [out]))
            else:
                nodes.append(helper.make_node("Sub", [f"x{idx[1]}", f"x{idx[2]}"], [f"{out}s"]))
                nodes.append(helper.make_node("Mul", [f"x{idx[0]}", f"{out}s"], [out]))
            parts.append(out)
        nodes.append(helper.make_node("Concat", parts, [target], axis=1))
        return nodes, constants


@dataclass(frozen=True, slots=True)
class RidgeBase:
    """Per-output linear base on standardized features: ``((Z - mean) / scale) @ coef + intercept``."""

    mean: FloatArray
    scale: FloatArray
    coef: FloatArray  # (n_features, n_outputs)
    intercept: FloatArray  # (n_outputs,)

    @classmethod
    def fit(cls, Z: FloatArray, Y: FloatArray, alpha: float) -> RidgeBase:
        mean, scale = Z.mean(axis=0), np.maximum(Z.std(axis=0), 1e-12)
        S = (Z - mean) / scale
        intercept = Y.mean(axis=0)
        coef = np.linalg.solve(S.T @ S + alpha * np.eye(S.shape[1]), S.T @ (Y - intercept))
        return cls(mean, scale, coef, intercept)

    def predict(self, Z: npt.NDArray[Any]) -> FloatArray:
        result: FloatArray = ((Z - self.mean) / self.scale) @ self.coef + self.intercept
        return result

    def as_dict(self) -> dict[str, list[Any]]:
        return {k: getattr(self, k).tolist() for k in ("mean", "scale", "coef", "intercept")}

    def onnx_nodes(self, source: str, target: str) -> tuple[list[Any], list[Any]]:
        """The same base as ONNX nodes in float64, from float32 ``source`` to float64 ``target``."""
        from onnx import TensorProto, helper, numpy_helper

        constants = [
            numpy_helper.from_array(getattr(self, k), f"base_{k}") for k in ("mean", "scale", "coef", "intercept")
        ]
        nodes = [
            helper.make_node("Cast", [source], ["base_z"], to=TensorProto.DOUBLE),
            helper.make_node("Sub", ["base_z", "base_mean"], ["base_c"]),
            helper.make_node("Div", ["base_c", "base_scale"], ["base_s"]),
            helper.make_node("MatMul", ["base_s", "base_coef"], ["base_m"]),
            helper.make_node("Add", ["base_m", "base_intercept"], [target]),
        ]
        return nodes, constants

    @classmethod
    def of_dict(cls, data: dict[str, list[Any]]) -> RidgeBase:
        return cls(*(np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef", "intercept")))


class Twin(Estimator):
    """One LightGBM regressor per output on derived features, over an optional ridge base.

    Parameters
    ----------
    inputs, outputs
        Column names of the frame given to `fit`.
    derived
        Feature expressions over the inputs (see `Derived`); `for_asset_type` picks the asset
        type's own (HVAC: `HVAC_DERIVED`).
    ridge
        L2 strength of the linear base on standardized features; None for trees alone.
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
        derived: Sequence[str] = (),
        ridge: float | None = 1.0,
        n_estimators: int = 300,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        random_state: int = 0,
    ) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.derived = derived
        self.ridge = ridge
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
        params.setdefault("derived", DERIVED.get(asset_type, ()))
        return cls(inputs=inputs, outputs=outputs, **params)

    @classmethod
    def for_loop(cls, loop: Loop, **params: Any) -> Twin:
        """The twin of one loop (see `LOOPS`)."""
        return cls(inputs=loop.inputs, outputs=loop.outputs, derived=loop.derived, **params)

    @property
    def features(self) -> Derived:
        """The feature step (inputs → features) of this twin."""
        cached: Derived | None = getattr(self, "_features", None)
        if cached is None or cached.inputs != tuple(self.inputs) or cached.expressions != tuple(self.derived):
            cached = Derived(self.inputs, self.derived)
            self._features = cached
        return cached

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
        Z = self.features.transform(X).astype(np.float64)
        self.base_ = RidgeBase.fit(Z, Y, self.ridge) if self.ridge is not None else None
        rest = Y - self.base_.predict(Z) if self.base_ is not None else Y
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
            lgb.train(params, lgb.Dataset(Z, label=rest[:, j]), num_boost_round=self.n_estimators)
            for j in range(Y.shape[1])
        ]
        self.residual_scale_ = np.maximum((Y - self.predict_array(X)).std(axis=0), 1e-9)
        return self

    def blocked_folds(self, frame: pd.DataFrame, folds: int = 3) -> list[tuple[Twin, pd.DataFrame]] | None:
        """``folds`` consecutive blocks of ``frame``, each with a clone of this twin fitted on the
        other blocks: how the twin does on hours it did not learn from, which in-sample residuals
        understate. None when a block or the rest of the frame is too short to fit on."""
        cuts = np.linspace(0, len(frame), folds + 1).astype(np.int64).tolist()
        out = []
        for start, end in itertools.pairwise(cuts):
            rest = pd.concat([frame.iloc[:start], frame.iloc[end:]])
            if len(rest) < 20 or end - start < 2:
                return None
            out.append((self.clone().fit(rest), frame.iloc[start:end]))
        return out

    def predict_array(self, X: npt.ArrayLike) -> FloatArray:
        """Outputs (rows x outputs) for input rows in the order of ``inputs``."""
        if not hasattr(self, "boosters_"):
            raise NotFittedError("Twin is not fitted; call fit() first")
        Z = self.features.transform(X).astype(np.float64)
        trees = np.column_stack([b.predict(Z, num_threads=1) for b in self.boosters_])
        base: RidgeBase | None = getattr(self, "base_", None)
        return trees + base.predict(Z) if base is not None else trees

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
    def to_dict(self, *, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """The twin as a JSON-ready envelope: format version, parameters (with the feature
        expressions), the ridge base, residual scales, LightGBM model text. A file (`save`) or a
        database row (the stream scorer's baselines) holds it alike."""
        import lightgbm as lgb  # imported on use: it takes seconds to load

        if not hasattr(self, "boosters_"):
            raise NotFittedError("Twin is not fitted; call fit() first")
        params = {**self.get_params(), "inputs": list(self.inputs), "outputs": list(self.outputs)}
        params["derived"] = list(self.derived)
        return {
            "format": FORMAT_VERSION,
            "kind": "pitstop.twin",
            "lightgbm": lgb.__version__,
            "params": params,
            "base": self.base_.as_dict() if self.base_ is not None else None,
            "residual_scale": self.residual_scale_.tolist(),
            "models": [b.model_to_string() for b in self.boosters_],
            "metadata": metadata or {},
        }

    @classmethod
    def from_dict(cls, envelope: dict[str, Any], *, source: str = "envelope") -> Twin:
        """The twin of a `to_dict` envelope (format 1 or the current one); ``source`` names where
        it came from in the error when it is not one."""
        import lightgbm as lgb  # imported on use: it takes seconds to load

        if envelope.get("kind") != "pitstop.twin" or envelope.get("format") not in (1, FORMAT_VERSION):
            raise InvalidInputError(f"{source} is not a pitstop twin of format 1 or {FORMAT_VERSION}")
        params = dict(envelope["params"])
        if envelope["format"] == 1:  # trees on the raw inputs, no base
            params |= {"derived": (), "ridge": None}
        twin = cls(**params)
        twin.boosters_ = [lgb.Booster(model_str=text) for text in envelope["models"]]
        base = envelope.get("base")
        twin.base_ = RidgeBase.of_dict(base) if base else None
        twin.residual_scale_ = np.asarray(envelope["residual_scale"], dtype=np.float64)
        return twin

    def save(self, path: Path, *, metadata: dict[str, Any] | None = None) -> None:
        """The `to_dict` envelope as a JSON file, written whole or not at all."""
        envelope = self.to_dict(metadata=metadata)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(envelope))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Twin:
        return cls.from_dict(json.loads(path.read_text()), source=str(path))

    def to_onnx(self) -> OnnxTwin:
        """The same twin as one ONNX Runtime session (1 intra-op thread): the feature step in
        float32, every output's trees, and the ridge base in float64; raw input rows in, outputs out."""
        import onnx
        import onnxmltools
        import onnxruntime as ort
        from onnx import TensorProto, helper
        from onnxmltools.convert.common.data_types import FloatTensorType

        if not hasattr(self, "boosters_"):
            raise NotFittedError("Twin is not fitted; call fit() first")
        features = self.features
        nodes, constants = features.onnx_nodes("x", "z")
        trees, opsets = [], {"": 15}
        for j, booster in enumerate(self.boosters_):
            model = onnxmltools.convert_lightgbm(
                booster, initial_types=[("z", FloatTensorType([None, len(features.names)]))], target_opset=15
            )
            opsets |= {o.domain: max(o.version, opsets.get(o.domain, 0)) for o in model.opset_import}
            (result,) = (o.name for o in model.graph.output)
            for node in model.graph.node:
                node.name = f"t{j}_{node.name}"
                node.output[:] = [f"t{j}_{o}" for o in node.output]
                node.input[:] = [i if i == "z" else f"t{j}_{i}" for i in node.input]
                nodes.append(node)
            trees.append(f"t{j}_{result}")
        nodes.append(helper.make_node("Concat", trees, ["trees"], axis=1))
        nodes.append(
            helper.make_node("Cast", ["trees"], ["trees64" if self.base_ is not None else "y"], to=TensorProto.DOUBLE)
        )
        if self.base_ is not None:
            base_nodes, base_constants = self.base_.onnx_nodes("z", "base")
            nodes += base_nodes
            constants += base_constants
            nodes.append(helper.make_node("Add", ["trees64", "base"], ["y"]))
        graph = helper.make_graph(
            nodes,
            "pitstop_twin",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, len(features.inputs)])],
            [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, len(self.boosters_)])],
            initializer=constants,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
        model.ir_version = 8
        onnx.checker.check_model(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        return OnnxTwin(ort.InferenceSession(model.SerializeToString(), options), model)


class OnnxTwin:
    """Serving path: one ONNX Runtime session from raw input rows (float32) to outputs."""

    def __init__(self, session: Any, model: Any = None) -> None:
        self.session = session
        self.model = model  # the ONNX ModelProto, to save with onnx.save if wanted

    def predict_array(self, X: npt.ArrayLike) -> FloatArray:
        data = np.asarray(X, dtype=np.float32)
        if data.ndim == 1:
            data = data[np.newaxis, :]
        result: FloatArray = self.session.run(None, {"x": data})[0]
        return result
