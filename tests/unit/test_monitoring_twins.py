from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitstop import inventory
from pitstop.ml.base import InvalidInputError, NotFittedError
from pitstop.ml.twins import Derived, Twin, regression_metrics, time_split
from pitstop.sim import Simulator, assets_of_inventory

DEMO = Path(__file__).resolve().parents[2] / "src" / "pitstop" / "data" / "demo-inventory.toml"


@pytest.fixture(scope="module")
def hvac_frame() -> pd.DataFrame:
    assets = [a for a in assets_of_inventory(inventory.read_file(DEMO)) if a.type == "hvac"]
    batch = Simulator(assets, seed=3).batch(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC))
    frame = batch.frame()
    return frame[frame.asset == "ahu-1"].pivot_table(index="ts", columns="sensor", values="value").dropna()


@pytest.fixture(scope="module")
def twin(hvac_frame: pd.DataFrame) -> Twin:
    return Twin.for_asset_type("hvac", n_estimators=80).fit(time_split(hvac_frame)[0])


def test_twin_predicts_the_simulated_coil_on_a_later_hold_out(twin: Twin, hvac_frame: pd.DataFrame) -> None:
    metrics = twin.evaluate(time_split(hvac_frame)[1])
    assert set(metrics) == {"UCAOT", "UCWOT", "UCAF"}
    assert all(m.r2 > 0.7 for m in metrics.values()), {k: m.r2 for k, m in metrics.items()}


def test_onnx_twin_matches_lightgbm(twin: Twin, hvac_frame: pd.DataFrame) -> None:
    X = hvac_frame[list(twin.inputs)].to_numpy()[:500]
    native = twin.predict_array(X)
    np.testing.assert_allclose(twin.to_onnx().predict_array(X), native, rtol=1e-5, atol=1e-2)


def test_save_and_load_round_trip(twin: Twin, hvac_frame: pd.DataFrame, tmp_path: Path) -> None:
    twin.save(tmp_path / "twin.json", metadata={"asset_type": "hvac"})
    again = Twin.load(tmp_path / "twin.json")
    np.testing.assert_array_equal(again.predict(hvac_frame).to_numpy(), twin.predict(hvac_frame).to_numpy())
    np.testing.assert_allclose(again.residuals(hvac_frame).to_numpy(), twin.residuals(hvac_frame).to_numpy())


def test_residuals_point_at_the_output_that_drifted(twin: Twin, hvac_frame: pd.DataFrame) -> None:
    broken = hvac_frame.copy()
    broken["UCWOT"] += 3.0
    assert twin.residuals(broken).abs().mean().idxmax() == "UCWOT"


def test_bad_input_is_refused(hvac_frame: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no twin for asset type"):
        Twin.for_asset_type("toaster")
    with pytest.raises(InvalidInputError, match="lacks columns"):
        Twin.for_asset_type("hvac").fit(hvac_frame.drop(columns=["UCAF"]))
    with pytest.raises(NotFittedError):
        Twin.for_asset_type("hvac").predict(hvac_frame)
    (tmp_path / "x.json").write_text('{"kind": "other"}')
    with pytest.raises(InvalidInputError, match="not a pitstop twin"):
        Twin.load(tmp_path / "x.json")


def test_regression_metrics() -> None:
    m = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert m.mae == pytest.approx(1 / 3)
    assert m.mape == pytest.approx(100 / 9)
    assert m.r2 == pytest.approx(0.5)


def test_onnx_twin_serves_single_raw_rows_like_the_native_twin(twin: Twin, hvac_frame: pd.DataFrame) -> None:
    onnx = twin.to_onnx()
    row = hvac_frame[list(twin.inputs)].to_numpy()[7]
    np.testing.assert_allclose(onnx.predict_array(row), twin.predict_array(row[np.newaxis, :]), rtol=1e-5)


def test_the_feature_step_uses_inputs_only_and_is_saved(twin: Twin, tmp_path: Path) -> None:
    assert twin.derived and all(o not in e for e in twin.derived for o in twin.outputs)
    twin.save(tmp_path / "twin.json")
    again = Twin.load(tmp_path / "twin.json")
    assert tuple(again.derived) == tuple(twin.derived) and again.features.names == twin.features.names


def test_derived_features_refuse_unknown_names_and_forms() -> None:
    with pytest.raises(InvalidInputError, match="not inputs"):
        Derived(("a", "b"), ("a-c",))
    with pytest.raises(InvalidInputError, match="is not one of"):
        Derived(("a", "b"), ("a/b",))


def test_ridge_base_carries_a_trend_beyond_the_training_range() -> None:
    x = np.linspace(0.0, 10.0, 400)
    frame = pd.DataFrame({"a": x, "b": np.sin(x), "y": 3.0 * x + np.sin(x)})
    train, test = frame[frame.a < 8.0], frame[frame.a >= 8.0]
    with_base = Twin(inputs=("a", "b"), outputs=("y",), n_estimators=50).fit(train)
    trees_only = Twin(inputs=("a", "b"), outputs=("y",), ridge=None, n_estimators=50).fit(train)
    assert with_base.evaluate(test)["y"].mae < trees_only.evaluate(test)["y"].mae / 5


def test_format_1_artifacts_still_load(twin: Twin, hvac_frame: pd.DataFrame, tmp_path: Path) -> None:
    plain = Twin.for_asset_type("hvac", derived=(), ridge=None, n_estimators=20).fit(hvac_frame)
    plain.save(tmp_path / "old.json")
    envelope = json.loads((tmp_path / "old.json").read_text())
    envelope["format"] = 1
    for key in ("base",):
        envelope.pop(key)
    for key in ("derived", "ridge"):
        envelope["params"].pop(key)
    (tmp_path / "old.json").write_text(json.dumps(envelope))
    again = Twin.load(tmp_path / "old.json")
    np.testing.assert_array_equal(again.predict(hvac_frame).to_numpy(), plain.predict(hvac_frame).to_numpy())
