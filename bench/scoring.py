"""Speed of the monitoring hot paths, side by side in one run. Prints JSON.

    python bench/scoring.py [--calls 10000]

- single-row twin latency (P50/P95/P99 µs over --calls calls) through ONNX Runtime against
  LightGBM's own Booster.predict on the same model (3 outputs x 300 trees on 6 HVAC inputs and
  their derived features, trained on simulated data; Booster.predict also without the feature step
  and base, as the floor of that path), with the
  largest difference between the two as the parity check;
- the twin's hold-out R² per output, the same twin without its feature step and ridge base
  (trees on the raw inputs: the earlier design), and the ceiling left by the sensors' noise;
- batch scoring rows/s for both paths;
- feature extraction windows/s for 2,048-sample vibration windows;
- detector fit+score samples/s on 20,000 x 20, against PyOD's and river's when installed.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np

from _common import ROOT, emit, optional
from pitstop import inventory
from pitstop.features import BearingGeometry, defect_frequencies, vibration_features
from pitstop.ml.detectors import IsolationForestDetector, PcaDetector, ReconstructionDetector, RobustZScoreDetector
from pitstop.ml.twins import Twin, time_split
from pitstop.sim import Simulator, assets_of_inventory


def percentiles(samples: list[float]) -> dict[str, float]:
    us = np.array(samples) * 1e6
    return {f"p{q}": round(float(np.percentile(us, q)), 1) for q in (50, 95, 99)}


def latency(call, rows: np.ndarray, calls: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    for i in range(200):
        call(rows[i % len(rows)])
    samples = []
    for i in range(calls):
        row = rows[i % len(rows)]
        started = time.perf_counter()
        call(row)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def hvac_frame():  # type: ignore[no-untyped-def]
    """ahu-1 over 14 simulated days, and the R² that the sensors' own noise leaves reachable."""
    spec = inventory.read_file(ROOT / "src" / "pitstop" / "data" / "demo-inventory.toml")
    assets = [a for a in assets_of_inventory(spec) if a.type == "hvac"]
    simulator = Simulator(assets, seed=0)
    batch = simulator.batch(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))
    frame = batch.frame()
    frame = frame[frame.asset == "ahu-1"].pivot_table(index="ts", columns="sensor", values="value").dropna()

    def ceiling(part, output: str) -> float:  # type: ignore[no-untyped-def]
        # The noise-free output of the coil at the same instants: the best any twin can do is to
        # predict it exactly, which leaves the sensor's own noise (input noise lowers this further).
        t = np.array([ts.timestamp() for ts in part.index])
        true = simulator.models["ahu-1"].signals(t, np.zeros(len(t), dtype=np.int64))[output][0]
        y = part[output].to_numpy()
        return round(1.0 - float(((y - true) ** 2).sum() / ((y - y.mean()) ** 2).sum()), 5)

    return frame, ceiling


def rate(func, n: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    func()
    return round(n / (time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    result: dict[str, object] = {"benchmark": "monitoring.scoring"}

    frame, ceiling = hvac_frame()
    train, test = time_split(frame)
    twin = Twin.for_asset_type("hvac").fit(train)
    onnx = twin.to_onnx()
    X = test[list(twin.inputs)].to_numpy()
    rows64 = np.ascontiguousarray(X[:1000])
    rows32 = rows64.astype(np.float32)
    Z = twin.features.transform(rows64).astype(np.float64)
    boosters = twin.boosters_
    result["twin_single_row_us"] = {
        "onnxruntime_twin_3_outputs": latency(lambda r: onnx.predict_array(r[None, :]), rows32, args.calls),
        "booster_twin_3_outputs": latency(lambda r: twin.predict_array(r[None, :]), rows64, args.calls),
        "booster_predict_trees_only_3_outputs": latency(
            lambda z: [b.predict(z[None, :], num_threads=1) for b in boosters], Z, args.calls
        ),
    }
    big = np.tile(X, (max(1, 200_000 // len(X)), 1))
    result["twin_batch_rows_per_s"] = {
        "onnxruntime": rate(lambda: onnx.predict_array(big), len(big)),
        "booster_predict": rate(lambda: twin.predict_array(big), len(big)),
    }
    result["twin_parity_max_abs_diff"] = dict(
        zip(
            twin.outputs,
            np.abs(onnx.predict_array(X) - twin.predict_array(X)).max(axis=0).round(6).tolist(),
            strict=True,
        )
    )
    result["twin_holdout"] = {k: v.as_dict() for k, v in twin.evaluate(test).items()}
    plain = Twin.for_asset_type("hvac", derived=(), ridge=None).fit(train)
    result["twin_holdout_trees_on_raw_inputs"] = {k: v.as_dict() for k, v in plain.evaluate(test).items()}
    result["twin_holdout_noise_ceiling_r2"] = {k: ceiling(test, k) for k in twin.outputs}

    windows = np.random.default_rng(0).standard_normal((10_000, 2048))
    defects = defect_frequencies(BearingGeometry(9, 0.3126, 1.537), 30.0)
    result["features_windows_per_s"] = {
        "time_stats_and_7_bands": rate(lambda: vibration_features(windows, 12_000.0), len(windows)),
        "with_envelope_defect_amplitudes": rate(
            lambda: vibration_features(windows, 12_000.0, defects=defects), len(windows)
        ),
    }

    rng = np.random.default_rng(1)
    data = rng.standard_normal((20_000, 20))
    detectors = {
        "pitstop.mad": RobustZScoreDetector,
        "pitstop.pca": PcaDetector,
        "pitstop.reconstruction": ReconstructionDetector,
        "pitstop.iforest": lambda: IsolationForestDetector(random_state=0),
    }
    speeds: dict[str, object] = {
        name: rate(lambda make=make: make().fit(data).score(data), len(data)) for name, make in detectors.items()
    }
    if optional("pyod") is not None:
        from pyod.models.ecod import ECOD
        from pyod.models.hbos import HBOS
        from pyod.models.iforest import IForest
        from pyod.models.pca import PCA

        for name, make in (("pyod.HBOS", HBOS), ("pyod.ECOD", ECOD), ("pyod.PCA", PCA), ("pyod.IForest", IForest)):
            speeds[name] = rate(lambda make=make: make().fit(data).decision_function(data), len(data))
    else:
        speeds["pyod"] = "not installed (pip install -e .[bench])"
    if optional("river") is not None:
        from river import anomaly

        def hst() -> None:
            model = anomaly.HalfSpaceTrees(seed=0)
            for row in (data[:5000] / 8 + 0.5).tolist():
                x = dict(enumerate(row))
                model.score_one(x)
                model.learn_one(x)

        speeds["river.HalfSpaceTrees (5,000 rows)"] = rate(hst, 5000)
    else:
        speeds["river"] = "not installed (pip install -e .[bench])"
    result["detector_fit_score_samples_per_s_20k_x_20"] = speeds
    emit(result)


if __name__ == "__main__":
    main()
