"""PSI and KS on reference profiles: values, bands, the count floor, hostile input."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from pitstop.errors import InvalidInput
from pitstop.ml.drift import ReferenceProfile, band, compare
from pitstop.ml.drift.psi import MIN_CURRENT_ROWS, psi


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


# -- the judgement takes the sample size into account (issue 16, item 3) ---------------------------


def test_small_windows_of_the_same_distribution_do_not_alarm_and_a_shift_still_does() -> None:
    rng = np.random.default_rng(5)
    profile = ReferenceProfile.of({"x": rng.normal(0, 1, 50_000)})
    reports = [compare(profile, {"x": rng.normal(0, 1, 120)}) for _ in range(400)]
    # PSI itself is biased upward on 120 rows: about (bins - 1) / 120 = 0.075 under no drift.
    assert np.mean([r.max_psi for r in reports]) > 0.05
    assert sum(r.band in ("warn", "critical") for r in reports) == 0
    # The expected noise: (bins - 1) * (1/n_ref + 1/n_cur), the rows' count at most halved for
    # independent rows (the blocking estimate of their autocorrelation time is about 1).
    assert all(9 / 120 < r.features[0].noise < 2 * 9 * (1 / 50_000 + 1 / 120) for r in reports)
    shifted = compare(profile, {"x": rng.normal(1.5, 1, 120)})
    assert shifted.band == "critical" and shifted.features[0].drifted


def test_too_few_current_rows_are_not_enough_data_instead_of_a_band() -> None:
    rng = np.random.default_rng(6)
    profile = ReferenceProfile.of({"x": rng.normal(0, 1, 5_000)})
    few = compare(profile, {"x": rng.normal(3, 1, MIN_CURRENT_ROWS - 1)})
    assert few.band == "insufficient" and not few.enough and few.features[0].band == "insufficient"
    assert few.drifted_share == 0.0 and few.as_dict()["band"] == "insufficient"
    enough = compare(profile, {"x": rng.normal(3, 1, MIN_CURRENT_ROWS)})
    assert enough.enough and enough.band == "critical"


def ar1(rng: np.random.Generator, n: int, rho: float) -> npt.NDArray[np.float64]:
    shocks = rng.normal(0, np.sqrt(1 - rho**2), n)
    out = np.empty(n)
    out[0] = rng.normal()
    for i in range(1, n):
        out[i] = rho * out[i - 1] + shocks[i]
    return out


def test_autocorrelated_readings_count_as_fewer_independent_rows() -> None:
    """Readings a minute apart of a slow process (memory ~400 rows): PSI between two stretches of the
    same process is often past 0.2, because neighbouring rows repeat each other; judged on the
    effective sample size none alarms, while a shift of 3 standard deviations is still critical."""
    rng = np.random.default_rng(7)
    alarms_by_raw_psi, alarms, shifted = 0, 0, []
    for _ in range(20):
        reference, current = ar1(rng, 20_000, 0.995), ar1(rng, 8_000, 0.995)
        profile = ReferenceProfile.of({"x": reference})
        assert profile.features["x"].effective_rows < 20_000 / 100
        feature = compare(profile, {"x": current}).features[0]
        alarms_by_raw_psi += band(feature.psi) in ("warn", "critical")
        alarms += feature.drifted
        shifted.append(compare(profile, {"x": current + 3.0}).band)
    assert alarms_by_raw_psi >= 3  # the statistic is unchanged: by the fixed bands these would alarm
    assert alarms == 0
    assert set(shifted) == {"critical"}
    # Independent rows keep (about) their count.
    plain = ReferenceProfile.of({"x": rng.normal(0, 1, 20_000)}).features["x"]
    assert plain.effective_rows > 20_000 / 2.5


def test_profiles_stored_before_effective_rows_read_as_independent_rows() -> None:
    rng = np.random.default_rng(8)
    stored = ReferenceProfile.of({"x": rng.normal(0, 1, 1_000)}).as_dict()
    del stored["x"]["effective_rows"]
    assert ReferenceProfile.from_dict(stored).features["x"].effective_rows == 1_000
