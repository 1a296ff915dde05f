"""Vibration features per window, vectorized over batches of windows.

``windows`` is always a 2-D array ``(n_windows, n_samples)`` (a 1-D array is one window).
Large batches are processed in chunks of `CHUNK` windows, so that every temporary stays in
cache-sized memory instead of a fresh array of the whole batch per step; there is no per-window
Python loop. `vibration_features` computes everything in one pass per chunk: the moments once
(kurtosis and skewness share them), one real FFT for the band powers (each band a contiguous
slice of the frequency grid, summed per window — no BLAS call, whose threads fight other work
on a busy machine), and for the envelope the Hilbert transform by a real FFT and a real inverse
FFT (no complex FFT of the full length), then one more real FFT.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

CHUNK = 256
_EPS = 1e-12


def _as_windows(windows: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(windows, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"expected windows of shape (n_windows, n_samples >= 2), got {arr.shape}")
    return arr


def _chunked(func: Callable[[FloatArray], FloatArray], windows: FloatArray) -> FloatArray:
    if len(windows) <= CHUNK:
        return func(windows)
    return np.concatenate([func(windows[i : i + CHUNK]) for i in range(0, len(windows), CHUNK)])


def rms(windows: npt.ArrayLike) -> FloatArray:
    """Root mean square per window.

    Examples
    --------
    >>> rms([[3.0, -3.0], [1.0, 1.0]]).tolist()
    [3.0, 1.0]
    """
    w = _as_windows(windows)
    result: FloatArray = np.sqrt(np.einsum("ij,ij->i", w, w) / w.shape[1])
    return result


def _peak(w: FloatArray) -> FloatArray:
    result: FloatArray = np.maximum(w.max(axis=1), -w.min(axis=1))
    return result


def peak(windows: npt.ArrayLike) -> FloatArray:
    """Largest absolute value per window."""
    return _chunked(_peak, _as_windows(windows))


def crest_factor(windows: npt.ArrayLike) -> FloatArray:
    """Peak over RMS per window (0 for an all-zero window).

    Examples
    --------
    >>> crest_factor([[1.0, -1.0, 1.0, -1.0]]).tolist()
    [1.0]
    """
    w = _as_windows(windows)
    r = rms(w)
    return np.divide(peak(w), r, out=np.zeros_like(r), where=r > _EPS)


def _centred_moments(centred: FloatArray) -> FloatArray:
    """Second, third and fourth central moments per window as columns ``(n, 3)``."""
    n = centred.shape[1]
    sq = centred * centred
    return np.column_stack(
        [sq.sum(axis=1) / n, np.einsum("ij,ij->i", sq, centred) / n, np.einsum("ij,ij->i", sq, sq) / n]
    )


def _moments(w: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    m = _chunked(lambda c: _centred_moments(c - c.mean(axis=1, keepdims=True)), w)
    return m[:, 0], m[:, 1], m[:, 2]


def _ratio(num: FloatArray, den: FloatArray, valid: FloatArray) -> FloatArray:
    return np.divide(num, den, out=np.zeros_like(num), where=valid > _EPS)


def kurtosis(windows: npt.ArrayLike) -> FloatArray:
    """Pearson kurtosis per window (3 for Gaussian noise; 0 for a constant window).

    Examples
    --------
    >>> float(kurtosis([[1.0, -1.0, 1.0, -1.0]])[0])
    1.0
    """
    m2, _, m4 = _moments(_as_windows(windows))
    return _ratio(m4, m2 * m2, m2)


def skewness(windows: npt.ArrayLike) -> FloatArray:
    """Skewness per window (0 for a symmetric or constant window)."""
    m2, m3, _ = _moments(_as_windows(windows))
    return _ratio(m3, m2**1.5, m2)


def band_energies(windows: npt.ArrayLike, fs: float, bands: Sequence[tuple[float, float]]) -> FloatArray:
    """Spectral energy per window in each band ``[lo, hi)`` Hz, shape ``(n_windows, n_bands)``.

    The energy is the one-sided power spectrum (Hann window, Parseval-scaled so that the bands
    of ``[0, fs/2]`` add up to about the mean square of the window).

    Examples
    --------
    >>> t = np.arange(1024) / 1024.0
    >>> e = band_energies(np.sin(2 * np.pi * 100 * t), fs=1024, bands=[(0, 50), (50, 150), (150, 512)])
    >>> int(np.argmax(e[0]))
    1
    """
    w = _as_windows(windows)
    spectrum = _Spectrum(w.shape[1], fs, bands)
    return _chunked(lambda c: spectrum.bands(c - c.mean(axis=1, keepdims=True)), w)


class _Spectrum:
    """What a window length, sampling rate and band list fix once: taper, scale, band matrix."""

    def __init__(self, n: int, fs: float, bands: Sequence[tuple[float, float]]) -> None:
        if fs <= 0:
            raise ValueError("fs must be positive")
        self.n = n
        self.freqs: FloatArray = np.fft.rfftfreq(n, 1.0 / fs).astype(np.float64)
        # The grid is sorted, so each band [lo, hi) is one index range.
        self.band_ranges = [
            (int(np.searchsorted(self.freqs, lo, "left")), int(np.searchsorted(self.freqs, hi, "left")))
            for lo, hi in bands
        ]
        self.taper = np.hanning(n) if n > 2 else np.ones(n)
        self.scale = 2.0 / (n * np.sum(self.taper * self.taper))
        # The analytic signal is x + i·H(x). The Hilbert transform H(x) is real: turn the
        # positive frequencies by -90° (times -i), drop DC and Nyquist, and invert the half
        # spectrum with a real inverse FFT.
        self.hilbert = np.full(n // 2 + 1, -1j)
        self.hilbert[0] = 0.0
        if n % 2 == 0:
            self.hilbert[-1] = 0.0

    def bands(self, centred: FloatArray) -> FloatArray:
        power = np.abs(np.fft.rfft(centred * self.taper, axis=1)) ** 2
        result = np.zeros((len(power), len(self.band_ranges)))
        for k, (i, j) in enumerate(self.band_ranges):
            if j > i:
                result[:, k] = power[:, i:j].sum(axis=1)
        return result * self.scale

    def envelope(self, centred: FloatArray) -> FloatArray:
        """Amplitude spectrum of each window's envelope (magnitude of its analytic signal)."""
        turned = np.fft.irfft(np.fft.rfft(centred, axis=1) * self.hilbert, n=self.n, axis=1)
        envelope = np.sqrt(centred * centred + turned * turned)
        envelope -= envelope.mean(axis=1, keepdims=True)
        result: FloatArray = np.abs(np.fft.rfft(envelope, axis=1)) * (2.0 / self.n)
        return result


def envelope_spectrum(windows: npt.ArrayLike, fs: float) -> tuple[FloatArray, FloatArray]:
    """Amplitude spectrum of the envelope (magnitude of the analytic signal) of each window.

    Returns ``(freqs, amplitudes)`` with amplitudes of shape ``(n_windows, n_freqs)``. Impacts
    from a bearing defect modulate high-frequency resonances; the envelope spectrum shows the
    impact rate (BPFO, BPFI, ...) as peaks.
    """
    w = _as_windows(windows)
    spectrum = _Spectrum(w.shape[1], fs, ())
    return spectrum.freqs, _chunked(lambda c: spectrum.envelope(c - c.mean(axis=1, keepdims=True)), w)


@dataclass(frozen=True, slots=True)
class BearingGeometry:
    """Rolling-element bearing geometry: element count, ball and pitch diameters, contact angle.

    Diameters share one unit (only their ratio matters). The SKF 6205-2RS drive-end bearing of
    the CWRU test rig is ``BearingGeometry(n_balls=9, ball_diameter=0.3126, pitch_diameter=1.537)``.
    """

    n_balls: int
    ball_diameter: float
    pitch_diameter: float
    contact_angle_deg: float = 0.0


@dataclass(frozen=True, slots=True)
class DefectFrequencies:
    """Characteristic defect frequencies in Hz at one shaft speed."""

    bpfo: float  # ball pass frequency, outer race
    bpfi: float  # ball pass frequency, inner race
    bsf: float  # ball spin frequency
    ftf: float  # fundamental train (cage) frequency

    def as_dict(self) -> dict[str, float]:
        return {"bpfo": self.bpfo, "bpfi": self.bpfi, "bsf": self.bsf, "ftf": self.ftf}


def defect_frequencies(geometry: BearingGeometry, shaft_hz: float) -> DefectFrequencies:
    """BPFO, BPFI, BSF and FTF from the bearing geometry and the shaft speed (Hz).

    Examples
    --------
    >>> f = defect_frequencies(BearingGeometry(9, 0.3126, 1.537), shaft_hz=1797 / 60)
    >>> round(f.bpfo, 1), round(f.bpfi, 1), round(f.bsf, 1), round(f.ftf, 2)
    (107.4, 162.2, 70.6, 11.93)
    """
    if geometry.n_balls < 1 or geometry.ball_diameter <= 0 or geometry.pitch_diameter <= geometry.ball_diameter:
        raise ValueError("bearing geometry needs n_balls >= 1 and 0 < ball_diameter < pitch_diameter")
    if shaft_hz <= 0:
        raise ValueError("shaft_hz must be positive")
    ratio = geometry.ball_diameter / geometry.pitch_diameter * math.cos(math.radians(geometry.contact_angle_deg))
    n = geometry.n_balls
    return DefectFrequencies(
        bpfo=n / 2 * shaft_hz * (1 - ratio),
        bpfi=n / 2 * shaft_hz * (1 + ratio),
        bsf=geometry.pitch_diameter / (2 * geometry.ball_diameter) * shaft_hz * (1 - ratio * ratio),
        ftf=shaft_hz / 2 * (1 - ratio),
    )


def envelope_amplitudes(
    windows: npt.ArrayLike,
    fs: float,
    frequencies: Mapping[str, float],
    *,
    tolerance_hz: float = 3.0,
    harmonics: int = 1,
) -> dict[str, FloatArray]:
    """Envelope-spectrum amplitude at each named frequency, per window.

    For each frequency f, takes the largest envelope amplitude within ``±tolerance_hz`` of
    f, 2f, ... ``harmonics``·f and sums over the harmonics.
    """
    w = _as_windows(windows)
    spectrum = _Spectrum(w.shape[1], fs, ())
    picks = _defect_ranges(spectrum.freqs, frequencies, tolerance_hz, harmonics)
    values = _chunked(lambda c: _pick(spectrum.envelope(c - c.mean(axis=1, keepdims=True)), picks), w)
    return {name: values[:, i] for i, name in enumerate(frequencies)}


def _defect_ranges(
    freqs: FloatArray, frequencies: Mapping[str, float], tolerance_hz: float, harmonics: int
) -> list[list[tuple[int, int]]]:
    """Per frequency, the index range ``[i, j)`` of the grid within tolerance of each harmonic."""
    ranges = []
    for f in frequencies.values():
        found = []
        for k in range(1, harmonics + 1):
            band = np.flatnonzero(np.abs(freqs - k * f) <= tolerance_hz)
            if len(band):
                found.append((int(band[0]), int(band[-1]) + 1))
        ranges.append(found)
    return ranges


def _pick(amplitudes: FloatArray, ranges: list[list[tuple[int, int]]]) -> FloatArray:
    """Sum over harmonics of the largest amplitude in each range, one column per frequency."""
    out = np.zeros((len(amplitudes), len(ranges)))
    for col, found in enumerate(ranges):
        for i, j in found:
            out[:, col] += amplitudes[:, i:j].max(axis=1)
    return out


DEFAULT_BANDS_HZ: tuple[tuple[float, float], ...] = (
    (0.0, 250.0),
    (250.0, 500.0),
    (500.0, 1000.0),
    (1000.0, 2000.0),
    (2000.0, 3000.0),
    (3000.0, 4000.0),
    (4000.0, 6000.0),
)


def vibration_features(
    windows: npt.ArrayLike,
    fs: float,
    *,
    bands: Sequence[tuple[float, float]] = DEFAULT_BANDS_HZ,
    defects: DefectFrequencies | None = None,
    harmonics: int = 3,
) -> dict[str, FloatArray]:
    """All window features by name: rms, peak, crest, kurtosis, skewness, band_<lo>_<hi>, env_<defect>.

    One pass per chunk of windows: the same values as the single-feature functions above.
    """
    w = _as_windows(windows)
    spectrum = _Spectrum(w.shape[1], fs, bands)
    named = defects.as_dict() if defects is not None else {}
    picks = _defect_ranges(spectrum.freqs, named, 3.0, harmonics)

    def chunk(c: FloatArray) -> FloatArray:
        n = c.shape[1]
        r = np.sqrt(np.einsum("ij,ij->i", c, c) / n)
        top = _peak(c)
        centred = c - c.mean(axis=1, keepdims=True)
        m = _centred_moments(centred)
        m2 = m[:, 0]
        columns = [
            r[:, np.newaxis],
            top[:, np.newaxis],
            _ratio(top, r, r)[:, np.newaxis],
            _ratio(m[:, 2], m2 * m2, m2)[:, np.newaxis],
            _ratio(m[:, 1], m2**1.5, m2)[:, np.newaxis],
            spectrum.bands(centred),
        ]
        if picks:
            columns.append(_pick(spectrum.envelope(centred), picks))
        return np.hstack(columns)

    values = _chunked(chunk, w)
    names = ["rms", "peak", "crest", "kurtosis", "skewness"]
    names += [f"band_{lo:g}_{hi:g}" for lo, hi in bands]
    names += [f"env_{name}" for name in named]
    return {name: values[:, i] for i, name in enumerate(names)}
