"""Input drift: PSI on bins fixed by the reference, KS as a second opinion, per feature and overall;
judged against the noise expected for the (effective) sample sizes."""

from pitstop.ml.drift.psi import (
    BAND_RANK,
    BANDS,
    INSUFFICIENT,
    MIN_CURRENT_ROWS,
    DriftReport,
    FeatureDrift,
    FeatureProfile,
    ReferenceProfile,
    band,
    compare,
    effective_rows,
    expected_psi,
)

__all__ = [
    "BANDS",
    "BAND_RANK",
    "INSUFFICIENT",
    "MIN_CURRENT_ROWS",
    "DriftReport",
    "FeatureDrift",
    "FeatureProfile",
    "ReferenceProfile",
    "band",
    "compare",
    "effective_rows",
    "expected_psi",
]
