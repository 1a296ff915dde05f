"""Pumps, fans and motors: vibration features per window, and bearings that wear out.

A healthy machine vibrates at a base level that follows its load. After a bearing_wear fault's
onset the defect grows exponentially until the failure time, when the RMS velocity reaches
FAILURE_FACTOR times its healthy level. Kurtosis and crest factor rise early (impacts from a
small spall) and fall back as the damage spreads; the bearing runs hotter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pitstop.sim import climate, noise
from pitstop.sim.noise import F64, I64
from pitstop.sim.scenario import Fault, FaultKind

FAILURE_FACTOR = 5.0  # vib_rms at failure / healthy vib_rms
GROWTH = 5.0  # exponential rate over the life from onset to failure
SIGNALS = ("vib_rms", "vib_kurtosis", "vib_crest", "bearing_temp")

# type: (healthy RMS range mm/s, shaft Hz, bearing temperature °C at full load)
_TYPES = {
    "pump": ((2.0, 3.0), 24.7, 42.0),
    "fan": ((1.2, 2.0), 16.3, 34.0),
    "motor": ((0.8, 1.5), 49.3, 45.0),
}
# A 6205-like deep-groove ball bearing: 9 balls, 7.94 mm balls on a 39 mm pitch circle.
BALLS, BALL_D, PITCH_D = 9, 7.94, 39.0
BPFO_PER_SHAFT = BALLS / 2.0 * (1.0 - BALL_D / PITCH_D)


@dataclass(frozen=True, slots=True)
class Waveform:
    """A raw vibration window (velocity, mm/s) with what produced it."""

    samples: F64
    fs: float
    shaft_hz: float
    bpfo_hz: float
    wear: float  # 0 healthy .. 1 failed


class RotatingModel:
    def __init__(self, seed: int, asset: str, site: str, kind: str, faults: tuple[Fault, ...]) -> None:
        (lo, hi), self.shaft_hz, self.temp = _TYPES[kind]
        rng = np.random.default_rng(noise.key(seed, asset, "machine"))
        self.rms0 = float(rng.uniform(lo, hi))
        self.seed, self.asset, self.site = seed, asset, site
        self.wear_faults = tuple(f for f in faults if f.kind is FaultKind.BEARING_WEAR)

    def load(self, t: F64) -> F64:
        return (
            0.85
            + 0.07 * noise.smooth(noise.key(self.seed, self.asset, "load"), t, 3 * 3600)
            + 0.08 * (climate.daytime(t) - 0.5)
        )

    def progress(self, t: F64) -> F64:
        """Fraction of the bearing's life from onset to failure that has passed (0..1)."""
        p = np.zeros_like(t)
        for f in self.wear_faults:
            onset, failure = f.start.timestamp(), f.failure_time.timestamp()  # type: ignore[union-attr]
            p = np.maximum(p, np.clip((t - onset) / (failure - onset), 0.0, 1.0))
        return p

    def wear(self, t: F64) -> F64:
        """Damage 0..1, growing exponentially with progress."""
        growth: F64 = np.expm1(GROWTH * self.progress(t))
        return growth / float(np.expm1(GROWTH))

    def signals(self, t: F64, k: I64) -> dict[str, tuple[F64, F64 | float]]:
        load, p, w = self.load(t), self.progress(t), self.wear(t)
        rms = self.rms0 * load * (1.0 + (FAILURE_FACTOR - 1.0) * w)
        kurtosis = 3.0 + 9.0 * (p / 0.4) * np.exp(1.0 - p / 0.4)
        crest = 3.1 + 0.35 * (kurtosis - 3.0) + 1.0 * w
        ambient = climate.ambient(self.seed, self.site, t)
        temp = self.temp + 8.0 * (load - 0.85) + 0.3 * (ambient - 11.0) + 30.0 * w
        return {
            "vib_rms": (rms, 0.03 * rms),
            "vib_kurtosis": (kurtosis, 0.12),
            "vib_crest": (crest, 0.05),
            "bearing_temp": (temp, 0.2),
        }

    def waveform(self, at: float, n: int = 2048, fs: float = 25_600.0) -> Waveform:
        """One window of raw velocity: shaft harmonics, noise and, once worn, outer-race impacts at BPFO."""
        t0 = np.array([at])
        load, w = float(self.load(t0)[0]), float(self.wear(t0)[0])
        rms = self.rms0 * load * (1.0 + (FAILURE_FACTOR - 1.0) * w)
        stream = noise.key(self.seed, self.asset, "waveform", round(at * 1e6))
        tt = np.arange(n) / fs
        bpfo = BPFO_PER_SHAFT * self.shaft_hz
        shaft = np.sin(2 * np.pi * self.shaft_hz * tt) + 0.3 * np.sin(2 * np.pi * 2 * self.shaft_hz * tt + 0.7)
        x = shaft + 0.3 * noise.normal(stream, np.arange(n))
        if w > 0:
            since = tt % (1.0 / bpfo)  # time since the last impact, each exciting a 4 kHz resonance
            x = x + 12.0 * np.sqrt(w) * np.exp(-since / 0.0004) * np.sin(2 * np.pi * 4000.0 * since)
        x = x * (rms / float(np.sqrt(np.mean(x**2))))
        return Waveform(x, fs, self.shaft_hz, bpfo, w)
