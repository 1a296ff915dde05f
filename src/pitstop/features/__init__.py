"""Features: pure, vectorized functions over batches of windows (no per-window Python loops).

Windows are rows of a 2-D array ``(n_windows, n_samples)``; every function returns one value
(or one vector) per window. See `vibration` for waveform features and bearing defect
frequencies (also in the order domain, speed-independent), and `rolling` for rolling statistics over series.
"""

from __future__ import annotations

from pitstop.features.rolling import rolling_stats, sliding_windows
from pitstop.features.vibration import (
    BearingGeometry,
    DefectFrequencies,
    band_energies,
    crest_factor,
    defect_frequencies,
    defect_orders,
    envelope_amplitudes,
    envelope_spectrum,
    estimate_shaft_hz,
    kurtosis,
    order_features,
    peak,
    rms,
    skewness,
    vibration_features,
)

__all__ = [
    "BearingGeometry",
    "DefectFrequencies",
    "band_energies",
    "crest_factor",
    "defect_frequencies",
    "defect_orders",
    "envelope_amplitudes",
    "envelope_spectrum",
    "estimate_shaft_hz",
    "kurtosis",
    "order_features",
    "peak",
    "rms",
    "rolling_stats",
    "skewness",
    "sliding_windows",
    "vibration_features",
]
