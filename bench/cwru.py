"""CWRU bearings, 10 classes at 1797 rpm, leakage-safe split: first 60% of each recording trains.

    python bench/cwru.py

Windows of 2,048 drive-end samples (12 kHz) never cross the 60% boundary. Training windows
overlap (step 512); test windows do not. Features: pitstop.features.vibration_features (time
statistics, 7 broad bands, envelope amplitudes at BPFO/BPFI/BSF/FTF with 3 harmonics) plus
log energies in 48 equal bands of 0-6 kHz; classifier: LightGBM with fixed, untuned settings.
Prints JSON (accuracy, macro-F1, confusion matrix).
"""

from __future__ import annotations

import time

import lightgbm as lgb
import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from _common import dataset, emit
from pitstop.features import BearingGeometry, band_energies, defect_frequencies, sliding_windows, vibration_features

FS = 12_000.0
WINDOW = 2048
TRAIN_SHARE = 0.6
CLASSES = ["Normal", "B_7", "B_14", "B_21", "IR_7", "IR_14", "IR_21", "OR@6_7", "OR@6_14", "OR@6_21"]
GEOMETRY = BearingGeometry(n_balls=9, ball_diameter=0.3126, pitch_diameter=1.537)  # SKF 6205-2RS, drive end
FINE_BANDS = [(lo, lo + 125.0) for lo in np.arange(0.0, 6000.0, 125.0)]


def features(windows: np.ndarray) -> np.ndarray:
    feats = vibration_features(windows, FS, defects=defect_frequencies(GEOMETRY, 1797 / 60))
    fine = np.log(band_energies(windows, FS, FINE_BANDS) + 1e-12)
    return np.column_stack([*feats.values(), fine])


def main() -> None:
    folder = dataset("cwru/Data/1797 RPM")
    x_train, y_train, x_test, y_test = [], [], [], []
    started = time.perf_counter()
    n_windows = 0
    for label, name in enumerate(CLASSES):
        file = folder / ("1797_Normal.npz" if name == "Normal" else f"1797_{name}_DE12.npz")
        signal = np.load(file)["DE"][:, 0]
        cut = int(len(signal) * TRAIN_SHARE)
        train_w = sliding_windows(signal[:cut], WINDOW, 512)
        test_w = sliding_windows(signal[cut:], WINDOW, WINDOW)
        n_windows += len(train_w) + len(test_w)
        x_train.append(features(train_w))
        x_test.append(features(test_w))
        y_train += [label] * len(train_w)
        y_test += [label] * len(test_w)
    feature_s = time.perf_counter() - started
    model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=15, random_state=0, verbose=-1)
    model.fit(np.vstack(x_train), np.array(y_train))
    predicted = model.predict(np.vstack(x_test))
    truth = np.array(y_test)
    emit(
        {
            "benchmark": "cwru",
            "classes": CLASSES,
            "split": "first 60% of each recording trains, last 40% tests; no window crosses the cut",
            "window": WINDOW,
            "train_windows": len(y_train),
            "test_windows": len(y_test),
            "accuracy": round(float((predicted == truth).mean()), 4),
            "macro_f1": round(float(f1_score(truth, predicted, average="macro")), 4),
            "feature_windows_per_s": round(n_windows / feature_s),
            "confusion": confusion_matrix(truth, predicted).tolist(),
        }
    )


if __name__ == "__main__":
    main()
