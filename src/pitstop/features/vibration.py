"""Vibration features per window, vectorized over batches of windows.

``windows`` is always a 2-D array ``(n_windows, n_samples)`` (a 1-D array is one window).
Large batches are processed in chunks of `CHUNK` windows to bound memory; there is no
per-window Python loop.
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


def peak(windows: npt.ArrayLike) -> FloatArray:
    """Largest absolute value per window."""
    result: FloatArray = np.abs(_as_windows(windows)).max(axis=1)
    return result


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


def _moments(w: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    centred = w - w.mean(axis=1, keepdims=True)
    sq = centred * centred
    m2 = sq.mean(axis=1)
    m3 = (sq * centred).mean(axis=1)
    m4 = (sq * sq).mean(axis=1)
    return m2, m3, m4


def kurtosis(windows: npt.ArrayLike) -> FloatArray:
    """Pearson kurtosis per window (3 for Gaussian noise; 0 for a constant window).

    Examples
    --------
    >>> float(kurtosis([[1.0, -1.0, 1.0, -1.0]])[0])
    1.0
    """
    m2, _, m4 = _moments(_as_windows(windows))
    return np.divide(m4, m2 * m2, out=np.zeros_like(m2), where=m2 > _EPS)


def skewness(windows: npt.ArrayLike) -> FloatArray:
    """Skewness per window (0 for a symmetric or constant window)."""
    m2, m3, _ = _moments(_as_windows(windows))
    return np.divide(m3, m2**1.5, out=np.zeros_like(m2), where=m2 > _EPS)


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
    if fs <= 0:
        raise ValueError("fs must be positive")
    n = w.shape[1]
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    mask = np.array([(freqs >= lo) & (freqs < hi) for lo, hi in bands], dtype=np.float64).reshape(len(bands), -1)
    taper = np.hanning(n) if n > 2 else np.ones(n)
    scale = 2.0 / (n * np.sum(taper * taper))

    def chunk(c: FloatArray) -> FloatArray:
        centred = c - c.mean(axis=1, keepdims=True)
        power = np.abs(np.fft.rfft(centred * taper, axis=1)) ** 2 * scale
        result: FloatArray = power @ mask.T
        return result

    return _chunked(chunk, w)


def envelope_spectrum(windows: npt.ArrayLike, fs: float) -> tuple[FloatArray, FloatArray]:
    """Amplitude spectrum of the envelope (magnitude of the analytic signal) of each window.

    Returns ``(freqs, amplitudes)`` with amplitudes of shape ``(n_windows, n_freqs)``. Impacts
    from a bearing defect modulate high-frequency resonances; the envelope spectrum shows the
    impact rate (BPFO, BPFI, ...) as peaks.
    """
    w = _as_windows(windows)
    if fs <= 0:
        raise ValueError("fs must be positive")
    n = w.shape[1]
    # Analytic signal through the FFT: keep DC (and Nyquist), double positive, zero negative.
    h = np.zeros(n)
    h[0] = 1.0
    if n % 2 == 0:
        h[n // 2] = 1.0
        h[1 : n // 2] = 2.0
    else:
        h[1 : (n + 1) // 2] = 2.0

    def chunk(c: FloatArray) -> FloatArray:
        centred = c - c.mean(axis=1, keepdims=True)
        envelope = np.abs(np.fft.ifft(np.fft.fft(centred, axis=1) * h, axis=1))
        envelope -= envelope.mean(axis=1, keepdims=True)
        result: FloatArray = np.abs(np.fft.rfft(envelope, axis=1)) * (2.0 / n)
        return result

    freqs: FloatArray = np.fft.rfftfreq(n, 1.0 / fs).astype(np.float64)
    return freqs, _chunked(chunk, w)


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
    freqs, amp = envelope_spectrum(windows, fs)
    out: dict[str, FloatArray] = {}
    for name, f in frequencies.items():
        total = np.zeros(len(amp))
        for k in range(1, harmonics + 1):
            band = np.abs(freqs - k * f) <= tolerance_hz
            if band.any():
                total += amp[:, band].max(axis=1)
        out[name] = total
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
    """All window features by name: rms, peak, crest, kurtosis, skewness, band_<lo>_<hi>, env_<defect>."""
    w = _as_windows(windows)
    out: dict[str, FloatArray] = {
        "rms": rms(w),
        "peak": peak(w),
        "crest": crest_factor(w),
        "kurtosis": kurtosis(w),
        "skewness": skewness(w),
    }
    energies = band_energies(w, fs, bands)
    for i, (lo, hi) in enumerate(bands):
        out[f"band_{lo:g}_{hi:g}"] = energies[:, i]
    if defects is not None:
        for name, values in envelope_amplitudes(w, fs, defects.as_dict(), harmonics=harmonics).items():
            out[f"env_{name}"] = values
    return out
