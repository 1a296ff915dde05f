"""Counter-based randomness: every random number is a pure function of (key, index).

The simulator never keeps random state. A sample's noise is drawn from its stream key (seed,
asset, sensor) and its sample index, so generating one day at once or minute by minute gives the
same values, and a fault on one signal leaves every other signal bit-for-bit unchanged.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * np.pi


def key(*parts: object) -> int:
    """A stable 64-bit stream key (Python's hash() is salted per process, this is not)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finalizer: a bijection that scrambles every bit (array arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniform(stream: int, index: npt.ArrayLike) -> F64:
    """Uniform in (0, 1), one per index."""
    idx = np.asarray(index, dtype=np.int64).astype(np.uint64)
    h = _mix(_mix(idx * _GOLDEN + np.full_like(idx, stream & 0xFFFFFFFFFFFFFFFF)))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2**53)


def normal(stream: int, index: npt.ArrayLike) -> F64:
    """Standard normal, one per index (Box-Muller on two uniforms)."""
    idx = np.asarray(index, dtype=np.int64)
    u1, u2 = uniform(stream, 2 * idx), uniform(stream, 2 * idx + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)


def smooth(stream: int, t: F64, knot_s: float) -> F64:
    """A smooth random curve of about unit size: normal values at knots `knot_s` apart, eased between."""
    x = t / knot_s
    k = np.floor(x)
    f = x - k
    k64 = k.astype(np.int64)
    v0, v1 = normal(stream, k64), normal(stream, k64 + 1)
    return v0 + (v1 - v0) * (f * f * (3.0 - 2.0 * f))


def steps(stream: int, t: F64, knot_s: float) -> F64:
    """A random staircase: a new normal value every `knot_s` seconds (operators changing a set point)."""
    return normal(stream, np.floor(t / knot_s).astype(np.int64))
