"""C-MAPSS scorers against the conformance numbers in shared/datasets/README.md (section 1)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pitstop.ml.base import InvalidInputError
from pitstop.ml.rul.base import RulEstimate
from pitstop.ml.rul.cmapss import load
from pitstop.ml.rul.evaluation import cap_truth, coverage_of, early_late, interval_coverage, nasa_score, report, rmse

CMAPSS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "cmapss").resolve()

# predictor -> subset -> (RMSE, NASA score)
TABLE = {
    "A_raw": {"FD001": (48.230074, 123472.176379), "FD003": (48.194398, 114386.458175)},
    "A_capped": {"FD001": (47.525467, 123372.416914), "FD003": (47.143610, 114231.427050)},
    "B": {"FD001": (10.0, 171.828183), "FD003": (10.0, 171.828183)},
    "C": {"FD001": (10.0, 115.810553), "FD003": (10.0, 115.810553)},
    "D_raw": {"FD001": (37.600000, 25389.772772), "FD003": (46.988616, 128338.616701)},
}


@pytest.fixture(scope="module")
def cmapss() -> Path:
    if not CMAPSS.exists():
        pytest.skip(f"C-MAPSS not found at {CMAPSS} (absent on some clones; see shared/datasets/README.md)")
    return CMAPSS


@pytest.mark.parametrize("subset", ["FD001", "FD003"])
def test_conformance_table(cmapss: Path, subset: str) -> None:
    _, test, truth = load(cmapss, subset)
    assert len(test) == len(truth) == 100
    last_cycle = np.array([h.t[-1] for h in test])
    predictors = {
        "A_raw": (np.full(100, 100.0), truth),
        "A_capped": (np.full(100, 100.0), cap_truth(truth, 125)),
        "B": (truth + 10, truth),
        "C": (truth - 10, truth),
        "D_raw": (np.clip(200 - last_cycle, 0, 125), truth),
    }
    for name, (predicted, y) in predictors.items():
        want_rmse, want_nasa = TABLE[name][subset]
        assert rmse(predicted, y) == pytest.approx(want_rmse, abs=1e-6), name
        assert nasa_score(predicted, y) == pytest.approx(want_nasa, abs=1e-6), name
    late = early_late(np.full(100, 100.0), truth)
    assert (late["late"] + np.sum(truth == 100), late["early"]) == ((67, 33) if subset == "FD001" else (68, 32))


def test_nasa_score_is_a_sum_and_penalises_late_more() -> None:
    assert nasa_score([110.0, 110.0], [100.0, 100.0]) == pytest.approx(2 * math.expm1(1.0))
    assert nasa_score([90.0], [100.0]) == pytest.approx(math.expm1(10 / 13))
    assert nasa_score([100.0], [100.0]) == 0.0
    assert nasa_score([110.0], [100.0]) > nasa_score([90.0], [100.0])


def test_coverage_and_errors() -> None:
    assert interval_coverage([0, 5, 10], [10, 6, 20], [5, 7, 10]) == pytest.approx(2 / 3)
    estimates = [RulEstimate(10, 5, 20, 0.8), RulEstimate(50, 40, 60, 0.8)]
    assert coverage_of(estimates, [21, 45]) == 0.5
    r = report(estimates, [200, 45], cap=125)
    assert r["coverage"] == 0.5 and r["rmse"] == pytest.approx(math.sqrt((115**2 + 5**2) / 2))
    errors = early_late([12, 8, 10], [10, 10, 10])
    assert (errors["late"], errors["early"], errors["mean_error"]) == (1, 1, 0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        rmse([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInputError):
        nasa_score([np.nan], [1.0])
    with pytest.raises(InvalidInputError):
        rmse([], [])
