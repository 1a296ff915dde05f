from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pitstop.features import (
    BearingGeometry,
    band_energies,
    crest_factor,
    defect_frequencies,
    envelope_amplitudes,
    envelope_spectrum,
    kurtosis,
    peak,
    rms,
    rolling_stats,
    skewness,
    sliding_windows,
    vibration_features,
)
from pitstop.features import vibration as vib

RNG = np.random.default_rng(0)
CWRU_DE = BearingGeometry(n_balls=9, ball_diameter=0.3126, pitch_diameter=1.537)


def test_moments_match_scipy() -> None:
    w = RNG.standard_normal((50, 512)) ** 3
    np.testing.assert_allclose(kurtosis(w), scipy.stats.kurtosis(w, axis=1, fisher=False), rtol=1e-10)
    np.testing.assert_allclose(skewness(w), scipy.stats.skew(w, axis=1), rtol=1e-10)
    np.testing.assert_allclose(rms(w), np.sqrt((w**2).mean(axis=1)))
    np.testing.assert_allclose(peak(w), np.abs(w).max(axis=1))
    np.testing.assert_allclose(crest_factor(w), peak(w) / rms(w))


def test_constant_window_gives_zero_not_nan() -> None:
    w = np.zeros((2, 64))
    for f in (crest_factor, kurtosis, skewness):
        assert np.all(f(w) == 0.0)


def test_chunking_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    w = RNG.standard_normal((10, 256))
    whole = band_energies(w, 1000.0, [(0, 100), (100, 500)])
    monkeypatch.setattr(vib, "CHUNK", 3)
    np.testing.assert_allclose(band_energies(w, 1000.0, [(0, 100), (100, 500)]), whole)


def test_band_energies_add_up_to_mean_square() -> None:
    w = RNG.standard_normal((20, 2048))
    total = band_energies(w, 2048.0, [(0.0, 1025.0)])[:, 0]
    # Hann taper plus Parseval scaling: within a few percent of the variance.
    np.testing.assert_allclose(total, w.var(axis=1), rtol=0.1)


def test_envelope_matches_scipy_hilbert() -> None:
    w = RNG.standard_normal((4, 1000))
    env = np.abs(scipy.signal.hilbert(w - w.mean(axis=1, keepdims=True), axis=1))
    env -= env.mean(axis=1, keepdims=True)
    expected = np.abs(np.fft.rfft(env, axis=1)) * 2 / 1000
    np.testing.assert_allclose(envelope_spectrum(w, 1000.0)[1], expected, atol=1e-10)


def test_defect_frequencies_of_the_cwru_bearing() -> None:
    f = defect_frequencies(CWRU_DE, 1797 / 60)
    # Published multiples of shaft speed for the 6205-2RS: BPFO 3.5848, BPFI 5.4152, FTF 0.39828.
    assert f.bpfo / (1797 / 60) == pytest.approx(3.5848, abs=1e-3)
    assert f.bpfi / (1797 / 60) == pytest.approx(5.4152, abs=1e-3)
    assert f.ftf / (1797 / 60) == pytest.approx(0.39828, abs=1e-4)
    assert f.bpfo + f.bpfi == pytest.approx(9 * 1797 / 60)


def _impacts(rate_hz: float, fs: float = 12_000.0, n: int = 4096, seed: int = 1) -> np.ndarray:
    """Decaying 3 kHz bursts at `rate_hz`, buried in noise: an outer-race defect in miniature."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    x = 0.5 * rng.standard_normal(n)
    for start in np.arange(0.0, t[-1], 1.0 / rate_hz):
        tail = t - start
        on = tail >= 0
        x[on] += np.exp(-tail[on] * 800.0) * np.sin(2 * np.pi * 3000.0 * tail[on])
    return x


def test_envelope_amplitude_peaks_at_the_defect_frequency() -> None:
    f = defect_frequencies(CWRU_DE, 1797 / 60)
    amps = envelope_amplitudes(np.stack([_impacts(f.bpfo), _impacts(f.bpfi)]), 12_000.0, f.as_dict())
    assert amps["bpfo"][0] > 3 * amps["bpfi"][0]
    assert amps["bpfi"][1] > 3 * amps["bpfo"][1]


def test_vibration_features_names_and_shapes() -> None:
    w = RNG.standard_normal((7, 2048))
    feats = vibration_features(w, 12_000.0, defects=defect_frequencies(CWRU_DE, 30.0))
    assert {"rms", "peak", "crest", "kurtosis", "skewness", "env_bpfo", "env_ftf", "band_0_250"} <= set(feats)
    assert all(v.shape == (7,) and np.all(np.isfinite(v)) for v in feats.values())


def test_rolling_stats_match_pandas() -> None:
    import pandas as pd

    x = RNG.standard_normal(500) + 100.0
    got = rolling_stats(x, 25)
    roll = pd.Series(x).rolling(25)
    for name, expected in (("mean", roll.mean()), ("std", roll.std(ddof=0)), ("min", roll.min()), ("max", roll.max())):
        np.testing.assert_allclose(got[name], expected.to_numpy(), rtol=1e-9, equal_nan=True)


def test_sliding_windows_shape() -> None:
    assert sliding_windows(np.arange(10.0), 4, 3).shape == (3, 4)
    assert sliding_windows(np.arange(3.0), 4).shape == (0, 4)


@pytest.mark.parametrize("bad", [np.zeros(1), np.zeros((2, 2, 2)), np.zeros((3, 1))])
def test_bad_window_shapes_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="windows of shape"):
        rms(bad)


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(ValueError, match="geometry"):
        defect_frequencies(BearingGeometry(9, 2.0, 1.0), 30.0)
    with pytest.raises(ValueError, match="shaft_hz"):
        defect_frequencies(CWRU_DE, 0.0)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=40), elements=st.floats(-1e6, 1e6)
    )
)
def test_features_of_any_finite_batch_are_finite(w: np.ndarray) -> None:
    feats = vibration_features(w, 1000.0, bands=[(0, 100), (100, 500)], defects=defect_frequencies(CWRU_DE, 10.0))
    assert all(np.all(np.isfinite(v)) and v.shape == (len(w),) for v in feats.values())


@pytest.mark.parametrize("n", [2048, 1001])
def test_one_pass_features_equal_the_single_feature_functions(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vib, "CHUNK", 4)  # several chunks, the last one partial
    w = RNG.standard_normal((11, n)) * 2.0 + 0.5
    defects = defect_frequencies(CWRU_DE, 30.0)
    feats = vibration_features(w, 12_000.0, defects=defects, harmonics=2)
    singles = {
        "rms": rms(w),
        "peak": peak(w),
        "crest": crest_factor(w),
        "kurtosis": kurtosis(w),
        "skewness": skewness(w),
    }
    for name, values in singles.items():
        np.testing.assert_allclose(feats[name], values, rtol=1e-12)
    energies = band_energies(w, 12_000.0, vib.DEFAULT_BANDS_HZ)
    for i, (lo, hi) in enumerate(vib.DEFAULT_BANDS_HZ):
        np.testing.assert_allclose(feats[f"band_{lo:g}_{hi:g}"], energies[:, i], rtol=1e-12)
    for name, values in envelope_amplitudes(w, 12_000.0, defects.as_dict(), harmonics=2).items():
        np.testing.assert_allclose(feats[f"env_{name}"], values, rtol=1e-12)


def test_odd_length_envelope_matches_scipy_hilbert() -> None:
    w = RNG.standard_normal((3, 999))
    env = np.abs(scipy.signal.hilbert(w - w.mean(axis=1, keepdims=True), axis=1))
    env -= env.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(envelope_spectrum(w, 1000.0)[1], np.abs(np.fft.rfft(env, axis=1)) * 2 / 999, atol=1e-10)


def test_band_energies_sum_exactly_the_bins_of_each_band() -> None:
    w = RNG.standard_normal((5, 256))
    n = w.shape[1]
    freqs = np.fft.rfftfreq(n, 1.0 / 1000.0)
    taper = np.hanning(n)
    power = np.abs(np.fft.rfft((w - w.mean(axis=1, keepdims=True)) * taper, axis=1)) ** 2 * 2.0 / (n * (taper**2).sum())
    bands = [(0.0, 100.0), (100.0, 100.0), (90.0, 300.0), (450.0, 600.0)]
    expected = np.column_stack([power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in bands])
    np.testing.assert_allclose(band_energies(w, 1000.0, bands), expected, rtol=1e-12)
