from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitstop import inventory
from pitstop.ml.base import InvalidInputError, NotFittedError
from pitstop.ml.twins import Twin, regression_metrics, time_split
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
