"""PSI with quantile bins from the reference and a floor on bin counts; KS from the sorted reference.

The reference profile (bin edges, bin counts, a sorted sample of the reference) is computed once,
stored with the model version, and reused for every comparison: only the current window is binned
and sorted at monitoring time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pitstop.errors import InvalidInput

# PSI bands: below 0.1 stable, 0.1-0.2 monitor, 0.2-0.5 warn, 0.5 and above critical.
BANDS: tuple[tuple[float, str], ...] = ((0.5, "critical"), (0.2, "warn"), (0.1, "monitor"))
DEFAULT_BINS = 10
# A bin's share never counts below this (half an observation in a 1,000-row window): a few rows in
# an empty bin must not cry wolf.
SHARE_FLOOR = 5e-4
# Sorted reference kept for KS: at most this many evenly spaced order statistics.
KS_SAMPLE = 10_000
KS_ALPHA = 0.05


def band(psi: float) -> str:
    for limit, name in BANDS:
        if psi >= limit:
            return name
    return "stable"


@dataclass(frozen=True, slots=True)
class FeatureProfile:
    edges: npt.NDArray[np.float64]  # inner edges (bins - 1), strictly increasing
    counts: npt.NDArray[np.int64]
    sorted_sample: npt.NDArray[np.float64]
    rows: int

    @classmethod
    def of(cls, values: npt.ArrayLike, bins: int = DEFAULT_BINS) -> FeatureProfile:
        data = _finite(values)
        inner = np.unique(np.quantile(data, np.linspace(0, 1, bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(inner, data, side="right"), minlength=len(inner) + 1)
        ordered = np.sort(data)
        if len(ordered) > KS_SAMPLE:
            ordered = ordered[np.linspace(0, len(ordered) - 1, KS_SAMPLE).round().astype(np.int64)]
        return cls(inner.astype(np.float64), counts.astype(np.int64), ordered, len(data))

    def as_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "sorted_sample": self.sorted_sample.tolist(),
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureProfile:
        return cls(
            np.asarray(data["edges"], dtype=np.float64),
            np.asarray(data["counts"], dtype=np.int64),
            np.asarray(data["sorted_sample"], dtype=np.float64),
            int(data["rows"]),
        )


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    features: dict[str, FeatureProfile]

    @classmethod
    def of(cls, columns: Mapping[str, npt.ArrayLike], bins: int = DEFAULT_BINS) -> ReferenceProfile:
        return cls({name: FeatureProfile.of(values, bins) for name, values in columns.items()})

    def as_dict(self) -> dict[str, Any]:
        return {name: p.as_dict() for name, p in self.features.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        return cls({name: FeatureProfile.from_dict(p) for name, p in data.items()})


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    feature: str
    psi: float
    band: str
    ks_statistic: float
    ks_drifted: bool
    reference_share: list[float]
    current_share: list[float]

    @property
    def drifted(self) -> bool:
        return self.band in ("warn", "critical")

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "psi": round(self.psi, 6),
            "band": self.band,
            "drifted": self.drifted,
            "ks_statistic": round(self.ks_statistic, 6),
            "ks_drifted": self.ks_drifted,
            "reference_share": [round(s, 6) for s in self.reference_share],
            "current_share": [round(s, 6) for s in self.current_share],
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Input drift per feature and, for twins, drift of the residuals (measured minus predicted,
    per output) against the hold-out residuals. `band` is the worse of the two."""

    features: list[FeatureDrift]
    current_rows: int
    residuals: list[FeatureDrift] = field(default_factory=list)
    residual_rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def drifted_share(self) -> float:
        return sum(f.drifted for f in self.features) / len(self.features) if self.features else 0.0

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features), default=0.0)

    @property
    def residual_max_psi(self) -> float:
        return max((f.psi for f in self.residuals), default=0.0)

    @property
    def band(self) -> str:
        return band(max(self.max_psi, self.residual_max_psi))

    def as_dict(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "max_psi": round(self.max_psi, 6),
            "input_band": band(self.max_psi),
            "drifted_share": round(self.drifted_share, 4),
            "current_rows": self.current_rows,
            "features": [f.as_dict() for f in self.features],
            "residual_max_psi": round(self.residual_max_psi, 6),
            "residual_band": band(self.residual_max_psi) if self.residuals else None,
            "residual_rows": self.residual_rows,
            "residuals": [f.as_dict() for f in self.residuals],
            "notes": list(self.notes),
        }


def psi(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike, floor: float = SHARE_FLOOR) -> float:
    """Population stability index of two count vectors over the same bins."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    p = np.maximum(ref / max(ref.sum(), 1.0), floor)
    q = np.maximum(cur / max(cur.sum(), 1.0), floor)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_statistic(sorted_reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic between a sorted reference and a current sample."""
    cur = np.sort(current)
    points = np.concatenate([sorted_reference, cur])
    f_ref = np.searchsorted(sorted_reference, points, side="right") / len(sorted_reference)
    f_cur = np.searchsorted(cur, points, side="right") / len(cur)
    return float(np.max(np.abs(f_ref - f_cur)))


def compare(profile: ReferenceProfile, current: Mapping[str, npt.ArrayLike]) -> DriftReport:
    """Drift of every profiled feature in ``current`` (columns by name) against the reference."""
    missing = sorted(set(profile.features) - set(current))
    if missing:
        raise InvalidInput(f"current data lacks features {missing}")
    results: list[FeatureDrift] = []
    rows = 0
    for name, ref in profile.features.items():
        data = _finite(current[name])
        rows = len(data)
        counts = np.bincount(np.searchsorted(ref.edges, data, side="right"), minlength=len(ref.edges) + 1)
        value = psi(ref.counts, counts)
        d = ks_statistic(ref.sorted_sample, data)
        n, m = min(ref.rows, KS_SAMPLE), len(data)
        critical = np.sqrt(-np.log(KS_ALPHA / 2) / 2) * np.sqrt((n + m) / (n * m))
        results.append(
            FeatureDrift(
                name,
                value,
                band(value),
                d,
                bool(d > critical),
                (ref.counts / ref.counts.sum()).tolist(),
                (counts / counts.sum()).tolist(),
            )
        )
    return DriftReport(results, rows)


def _finite(values: npt.ArrayLike | Sequence[float]) -> npt.NDArray[np.float64]:
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if len(data) < 2:
        raise InvalidInput("drift needs at least 2 finite values per feature")
    return data
