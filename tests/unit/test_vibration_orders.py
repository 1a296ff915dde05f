"""Order-domain bearing features and the shaft-speed estimate (issue 16, item 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pitstop.features import (
    BearingGeometry,
    defect_frequencies,
    defect_orders,
    envelope_amplitudes,
    estimate_shaft_hz,
    order_features,
)
from pitstop.features import vibration as vib

DATASETS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()
CWRU_DE = BearingGeometry(n_balls=9, ball_diameter=0.3126, pitch_diameter=1.537)  # SKF 6205-2RS
FS = 12_000.0


def dataset(rel: str) -> Path:
    p = DATASETS / rel
    if not p.exists():
        pytest.skip(f"benchmark data not found: {p} (see shared/datasets/README.md)")
    return p


def _machine(
    shaft_hz: float,
    defect_order: float | None,
    *,
    n: int = 8192,
    seed: int = 0,
    modulated: bool = False,
    fs: float = FS,
) -> np.ndarray:
    """Shaft harmonics, 60 Hz mains, noise and, optionally, impacts at ``defect_order`` × speed.

    Each impact rings a 3 kHz resonance (the structure's, fixed in Hz whatever the speed);
    ``modulated`` scales the impacts with the shaft angle, as an inner-race defect passing
    through the load zone once per turn.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    x = 0.2 * rng.standard_normal(n)
    for k, a in ((1, 0.6), (2, 0.25), (3, 0.1)):
        x += a * np.sin(2 * np.pi * k * shaft_hz * t + k)
    x += 0.3 * np.sin(2 * np.pi * 60.0 * t)
    if defect_order is not None:
        for start in np.arange(0.0, t[-1], 1.0 / (defect_order * shaft_hz)):
            tail = t - start
            on = tail >= 0
            gain = 1.0 + 0.8 * np.cos(2 * np.pi * shaft_hz * start) if modulated else 1.0
            x[on] += gain * np.exp(-tail[on] * 800.0) * np.sin(2 * np.pi * 3000.0 * tail[on])
    return x


def test_defect_orders_are_the_published_multiples_of_the_6205() -> None:
    o = defect_orders(CWRU_DE)
    assert (o.bpfo, o.bpfi, o.bsf, o.ftf) == pytest.approx((3.5848, 5.4152, 2.3567, 0.39828), abs=2e-4)
    f = defect_frequencies(CWRU_DE, 1772 / 60)
    assert f.bpfo == pytest.approx(o.bpfo * 1772 / 60)


@pytest.mark.parametrize("defect", ["bpfo", "bpfi", "bsf"])
def test_a_defect_gives_the_same_order_features_at_two_speeds(defect: str) -> None:
    orders = defect_orders(CWRU_DE).as_dict()
    order = 2 * orders[defect] if defect == "bsf" else orders[defect]  # a ball hits both races
    speeds = (1797 / 60, 1500 / 60)
    feats = [order_features(_machine(s, order), FS, s, CWRU_DE) for s in speeds]
    names = ["env_bpfo_h1", "env_bpfi_h1", "env_bsf_h2", "env_ftf_h1"]
    strongest = {"bpfo": "env_bpfo_h1", "bpfi": "env_bpfi_h1", "bsf": "env_bsf_h2"}[defect]
    for f in feats:
        # The defect's own order stands well above the envelope spectrum's level (log ratio)
        # and above the other defects' orders.
        assert f[strongest][0] > 2.0
        assert f[strongest][0] > max(f[n][0] for n in names if n != strongest) + 1.0
    # ... and reads about the same at both speeds (log ratio; fewer impacts per window at the
    # lower speed lower it a little).
    assert feats[0][strongest][0] == pytest.approx(feats[1][strongest][0], abs=0.3)


def test_hz_domain_amplitudes_lose_the_defect_when_the_speed_changes() -> None:
    """Why the order domain: at the configured frequencies of another speed the peak is missed."""
    order = defect_orders(CWRU_DE).bpfo
    fitted_at = defect_frequencies(CWRU_DE, 1797 / 60).as_dict()
    same = envelope_amplitudes(_machine(1797 / 60, order), FS, fitted_at)["bpfo"][0]
    other = envelope_amplitudes(_machine(1200 / 60, order), FS, fitted_at)["bpfo"][0]
    assert other < same / 3
    ordered = [order_features(_machine(s, order), FS, s, CWRU_DE)["env_bpfo_h1"][0] for s in (1797 / 60, 1200 / 60)]
    assert ordered[1] == pytest.approx(ordered[0], abs=0.35)


def test_inner_race_modulation_shows_in_the_sidebands() -> None:
    order = defect_orders(CWRU_DE).bpfi
    for s in (1797 / 60, 1500 / 60):
        plain = order_features(_machine(s, order), FS, s, CWRU_DE)
        turned = order_features(_machine(s, order, modulated=True), FS, s, CWRU_DE)
        assert turned["env_bpfi_sidebands"][0] > plain["env_bpfi_sidebands"][0] + 0.7


def test_order_features_do_not_depend_on_the_signal_scale() -> None:
    w = np.stack([_machine(29.5, defect_orders(CWRU_DE).bpfo, seed=s) for s in range(3)])
    a = order_features(w, FS, 29.5, CWRU_DE)
    b = order_features(1e3 * w + 5.0, FS, 29.5, CWRU_DE)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-7, atol=1e-7, err_msg=name)


def test_order_features_names_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    w = rng.standard_normal((9, 2048))
    whole = order_features(w, FS, 29.95, CWRU_DE, harmonics=2)
    expected = {"kurtosis", "crest", "band_kurtosis", "band_rms_ratio", "rotational_ratio", "share_0_250"}
    expected |= {f"env_{d}_h{k}" for d in ("shaft", "ftf", "bsf", "bpfo", "bpfi") for k in (1, 2)}
    assert expected | {"env_bpfi_sidebands"} <= set(whole)
    assert "env_bpfo_h3" not in whole
    monkeypatch.setattr(vib, "CHUNK", 4)
    chunked = order_features(w, FS, 29.95, CWRU_DE, harmonics=2)
    for name, values in whole.items():
        assert values.shape == (9,)
        np.testing.assert_allclose(chunked[name], values, rtol=1e-12, err_msg=name)


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=64), elements=st.floats(-1e6, 1e6)
    )
)
def test_order_features_of_any_finite_batch_are_finite(w: np.ndarray) -> None:
    feats = order_features(w, 1000.0, 10.0, CWRU_DE)
    assert all(np.all(np.isfinite(v)) and v.shape == (len(w),) for v in feats.values())


def test_order_features_refuse_bad_settings() -> None:
    w = np.zeros((2, 256))
    with pytest.raises(ValueError, match="shaft_hz"):
        order_features(w, FS, 0.0, CWRU_DE)
    with pytest.raises(ValueError, match="band_hz"):
        order_features(w, FS, 30.0, CWRU_DE, band_hz=(3000.0, 1000.0))
    with pytest.raises(ValueError, match="harmonics"):
        order_features(w, FS, 30.0, CWRU_DE, harmonics=0)


@pytest.mark.parametrize("rpm", [1797.0, 1772.0, 1500.0])
def test_speed_estimate_within_one_percent_on_a_synthetic_machine(rpm: float) -> None:
    shaft = rpm / 60
    x = _machine(shaft, defect_orders(CWRU_DE).bpfo, n=int(5 * FS), seed=int(rpm))
    assert estimate_shaft_hz(x, FS, 24.0, 31.0) == pytest.approx(shaft, rel=0.01)


def test_speed_estimate_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="16 samples"):
        estimate_shaft_hz(np.zeros(4), FS, 24.0, 31.0)
    with pytest.raises(ValueError, match="lo_hz"):
        estimate_shaft_hz(np.zeros(1000), FS, 31.0, 24.0)
    with pytest.raises(ValueError, match="fs / 2"):
        estimate_shaft_hz(np.zeros(1000), 100.0, 24.0, 31.0)


@pytest.mark.parametrize(("rpm", "fault"), [(1797, "B_7"), (1797, "IR_7"), (1772, "OR@6_7"), (1772, "IR_14")])
def test_speed_estimate_within_one_percent_on_cwru(rpm: int, fault: str) -> None:
    path = dataset(f"cwru/Data/{rpm} RPM/{rpm}_{fault}_DE12.npz")
    signal = np.load(path)["DE"][:, 0]
    assert estimate_shaft_hz(signal, FS, 24.0, 31.0) * 60 == pytest.approx(rpm, rel=0.01)
