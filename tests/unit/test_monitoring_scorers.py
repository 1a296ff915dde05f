"""The benchmark scorers against the conformance numbers in shared/datasets/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitstop.ml.evaluation import (
    NAB_PROFILES,
    SKAB_PROFILES,
    nab_file_score,
    nab_normalised,
    nab_window_rows,
    rates,
    skab_changepoint_file,
    skab_changepoint_score,
    skab_outlier_metrics,
)

DATASETS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()


def dataset(rel: str) -> Path:
    p = DATASETS / rel
    if not p.exists():
        pytest.skip(f"benchmark data not found: {p} (see shared/datasets/README.md)")
    return p


THRESHOLDS = {
    "numenta": {
        "standard": 0.5421876907348634,
        "reward_low_FP_rate": 0.5751955032348636,
        "reward_low_FN_rate": 0.5421876907348634,
    },
    "windowedGaussian": dict.fromkeys(NAB_PROFILES, 1.0),
}

# (file, detector) -> raw scores per profile, README's per-file table.
PER_FILE = {
    ("artificialNoAnomaly/art_daily_small_noise.csv", "numenta"): (-0.22, -0.44, -0.22),
    ("artificialNoAnomaly/art_daily_small_noise.csv", "windowedGaussian"): (0.0, 0.0, 0.0),
    ("realAWSCloudwatch/ec2_cpu_utilization_fe7f93.csv", "numenta"): (0.7442697021, -1.1375963558, -0.2557302979),
    ("realAWSCloudwatch/ec2_cpu_utilization_fe7f93.csv", "windowedGaussian"): (
        0.6387577918,
        0.5287577918,
        -0.3612422082,
    ),
    ("realTweets/Twitter_volume_AAPL.csv", "numenta"): (1.2638979149, 0.7097337380, 0.2638979149),
    ("realTweets/Twitter_volume_AAPL.csv", "windowedGaussian"): (1.5139968363, -0.8188744474, 1.5139968363),
}


def _nab_file(rel: str, detector: str) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    windows = json.loads(dataset("nab/labels/combined_windows.json").read_text())[rel]
    category, name = rel.split("/")
    frame = pd.read_csv(dataset(f"nab/results/{detector}/{category}/{detector}_{name}"))
    ts = pd.to_datetime(frame["timestamp"]).to_numpy()
    return frame, nab_window_rows(ts, [tuple(w) for w in windows])


@pytest.mark.parametrize(("rel", "detector"), list(PER_FILE))
def test_nab_per_file_raw_scores(rel: str, detector: str) -> None:
    frame, rows = _nab_file(rel, detector)
    for profile_name, expected in zip(NAB_PROFILES, PER_FILE[rel, detector], strict=True):
        flags = frame["anomaly_score"].to_numpy() >= THRESHOLDS[detector][profile_name]
        got = nab_file_score(flags, rows, NAB_PROFILES[profile_name])
        assert got.raw == pytest.approx(expected, abs=1e-9)
        assert got.raw == pytest.approx(frame[f"S(t)_{profile_name}"].sum(), abs=1e-9)


def test_nab_window_rows_match_the_label_column() -> None:
    frame, rows = _nab_file("realTweets/Twitter_volume_AAPL.csv", "numenta")
    label = np.zeros(len(frame), dtype=int)
    for left, right in rows:
        label[left : right + 1] = 1
    assert np.array_equal(label, frame["label"].to_numpy())


@pytest.mark.slow
def test_nab_corpus_normalised_scores() -> None:
    windows = json.loads(dataset("nab/labels/combined_windows.json").read_text())
    expected = {
        ("numenta", "standard"): 72.9672677258,
        ("numenta", "reward_low_FP_rate"): 65.8289034237,
        ("numenta", "reward_low_FN_rate"): 76.8235393086,
        ("windowedGaussian", "standard"): 44.7999373967,
        ("windowedGaussian", "reward_low_FP_rate"): 23.0242415360,
        ("windowedGaussian", "reward_low_FN_rate"): 53.5779651373,
    }
    for detector in ("numenta", "windowedGaussian"):
        totals = dict.fromkeys(NAB_PROFILES, 0.0)
        for rel in windows:
            frame, rows = _nab_file(rel, detector)
            for profile_name, profile in NAB_PROFILES.items():
                flags = frame["anomaly_score"].to_numpy() >= THRESHOLDS[detector][profile_name]
                totals[profile_name] += nab_file_score(flags, rows, profile).raw
        n = sum(len(w) for w in windows.values())
        assert n == 97
        for profile_name, profile in NAB_PROFILES.items():
            assert nab_normalised(totals[profile_name], n, profile) == pytest.approx(
                expected[detector, profile_name], abs=1e-7
            )


def _skab_test_parts() -> list[pd.DataFrame]:
    files = sorted(dataset("skab/data/valve1").glob("*.csv")) + sorted(dataset("skab/data/valve2").glob("*.csv"))
    return [pd.read_csv(f, sep=";", parse_dates=["datetime"]).iloc[400:] for f in files]


@pytest.mark.parametrize(
    ("name", "outlier", "changepoint"),
    [
        ("all_ones", (0.70, 100.0, 0.0, 7826, 0, 6646, 0), (0, 79, 20, -1.39, -2.78, -0.93)),
        ("delayed_10", (0.97, 3.01, 2.56, 7626, 6446, 200, 200), (40, 39, 0, 48.39, 48.17, 49.14)),
        ("all_zeros", (0.0, 0.0, 100.0, 0, 6646, 0, 7826), (0, 79, 0, 0.0, 0.0, 0.0)),
    ],
)
def test_skab_conformance(name: str, outlier: tuple, changepoint: tuple) -> None:
    parts = _skab_test_parts()

    def predict(df: pd.DataFrame) -> np.ndarray:
        if name == "all_ones":
            return np.ones(len(df))
        if name == "all_zeros":
            return np.zeros(len(df))
        return df["anomaly"].shift(10).fillna(0).to_numpy()

    preds = [predict(df) for df in parts]
    c = skab_outlier_metrics([(p, df["anomaly"].to_numpy()) for p, df in zip(preds, parts, strict=True)])
    assert (*c.summary().values(), c.tp, c.tn, c.fp, c.fn) == outlier
    scores = []
    for profile in SKAB_PROFILES.values():
        files = [
            skab_changepoint_file(df["datetime"].to_numpy(), p, df["changepoint"].to_numpy(), profile)
            for p, df in zip(preds, parts, strict=True)
        ]
        scores.append(skab_changepoint_score(files, profile))
    std = [
        skab_changepoint_file(df["datetime"].to_numpy(), p, df["changepoint"].to_numpy(), SKAB_PROFILES["standard"])
        for p, df in zip(preds, parts, strict=True)
    ]
    counts = (sum(f.true_positives for f in std), sum(f.missed for f in std), sum(f.false_positives for f in std))
    assert (*counts, *scores) == changepoint
    if name == "delayed_10":
        assert sum(f.score_sum for f in std) == pytest.approx(-2.543525, abs=1e-6)


def test_rates() -> None:
    assert rates([1, 1, 0, 0], [1, 0, 0, 1]) == {"tpr": 0.5, "fpr": 0.5, "tp": 1, "fn": 1, "fp": 1, "tn": 1}
