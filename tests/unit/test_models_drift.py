"""PSI and KS on reference profiles: values, bands, the count floor, hostile input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from pitstop.errors import InvalidInput
from pitstop.ml.drift import ReferenceProfile, band, compare
from pitstop.ml.drift.psi import psi


def test_bands() -> None:
    assert [band(v) for v in (0.0, 0.1, 0.19, 0.2, 0.49, 0.5, 3.0)] == [
        "stable",
        "monitor",
        "monitor",
        "warn",
        "warn",
        "critical",
        "critical",
    ]


def test_psi_matches_the_formula_and_the_floor_bounds_empty_bins() -> None:
    ref, cur = np.array([25, 25, 25, 25]), np.array([10, 20, 30, 40])
    p, q = ref / 100, cur / 100
    assert psi(ref, cur) == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=1e-12)
    assert np.isfinite(psi(ref, np.array([0, 0, 0, 100])))


def test_same_distribution_is_stable_and_a_shift_is_critical() -> None:
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.of({"x": rng.normal(0, 1, 50_000), "y": rng.uniform(0, 1, 50_000)})
    same = compare(profile, {"x": rng.normal(0, 1, 5_000), "y": rng.uniform(0, 1, 5_000)})
    assert same.band == "stable" and same.drifted_share == 0.0
    shifted_x = rng.normal(1.5, 1, 5_000)
    shifted = compare(profile, {"x": shifted_x, "y": rng.uniform(0, 1, 5_000)})
    assert shifted.features[0].band == "critical" and shifted.features[0].ks_drifted
    assert shifted.drifted_share == 0.5
    # KS from the stored sorted sample agrees with scipy on the same sample.
    sample = profile.features["x"].sorted_sample
    assert shifted.features[0].ks_statistic == pytest.approx(ks_2samp(sample, shifted_x).statistic, abs=1e-9)


def test_profile_survives_a_round_trip() -> None:
    rng = np.random.default_rng(1)
    profile = ReferenceProfile.of({"x": rng.normal(0, 1, 1_000)})
    again = ReferenceProfile.from_dict(profile.as_dict())
    current = {"x": rng.normal(0.3, 1, 500)}
    assert compare(again, current).as_dict() == compare(profile, current).as_dict()


def test_missing_features_and_empty_data_are_refused() -> None:
    profile = ReferenceProfile.of({"x": np.arange(100.0)})
    with pytest.raises(InvalidInput, match="lacks features"):
        compare(profile, {"y": np.arange(10.0)})
    with pytest.raises(InvalidInput, match="at least 2 finite"):
        compare(profile, {"x": np.array([np.nan, np.inf])})


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=60),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=60),
)
def test_hostile_values_give_a_finite_psi_or_a_clear_error(ref: list[float], cur: list[float]) -> None:
    try:
        report = compare(ReferenceProfile.of({"x": ref}), {"x": cur})
    except InvalidInput:
        return
    assert np.isfinite(report.max_psi) and 0.0 <= report.features[0].ks_statistic <= 1.0
