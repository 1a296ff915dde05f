"""Input drift: PSI on bins fixed by the reference, KS as a second opinion, per feature and overall."""

from pitstop.ml.drift.psi import (
    BANDS,
    DriftReport,
    FeatureDrift,
    FeatureProfile,
    ReferenceProfile,
    band,
    compare,
)

__all__ = ["BANDS", "DriftReport", "FeatureDrift", "FeatureProfile", "ReferenceProfile", "band", "compare"]
