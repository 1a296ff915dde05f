"""Drift: PSI + KS for 20 features, 1 M reference rows x 100 k current rows.

    python bench/drift.py [--reference 1000000] [--current 100000] [--features 20] [--repeat 3]

Times (median of --repeat) pitstop's drift from scratch (reference profile: quantile edges, bin
counts, sorted sample; then the comparison) and with the profile cached (the monitoring case),
scipy's ks_2samp on the full samples for comparison, and checks PSI against a plain numpy
histogram over the same edges. Evidently is compared only when it is already importable (it is
never a dependency of pitstop).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import ks_2samp

from _common import emit, optional, timed
from pitstop.ml.drift import ReferenceProfile, compare
from pitstop.ml.drift.psi import SHARE_FLOOR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=int, default=1_000_000)
    parser.add_argument("--current", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(args.features)]
    reference = {n: rng.normal(0, 1, args.reference) for n in names}
    current = {n: rng.normal(0.1 * (i % 4), 1 + 0.05 * i, args.current) for i, n in enumerate(names)}

    scratch_s, _ = timed(lambda: compare(ReferenceProfile.of(reference), current), args.repeat)
    profile = ReferenceProfile.of(reference)
    cached_s, report = timed(lambda: compare(profile, current), args.repeat)
    ks_s, ks = timed(lambda: [ks_2samp(reference[n], current[n]).statistic for n in names], 1)

    # PSI against a plain numpy histogram over the same edges (with the same floor).
    worst = 0.0
    for f in report.features:
        edges = np.concatenate([[-np.inf], profile.features[f.feature].edges, [np.inf]])
        p = np.maximum(np.histogram(reference[f.feature], edges)[0] / args.reference, SHARE_FLOOR)
        q = np.maximum(np.histogram(current[f.feature], edges)[0] / args.current, SHARE_FLOOR)
        worst = max(worst, abs(float(np.sum((q - p) * np.log(q / p))) - f.psi))
    ks_gap = max(abs(f.ks_statistic - k) for f, k in zip(report.features, ks, strict=True))

    result = {
        "features": args.features,
        "reference_rows": args.reference,
        "current_rows": args.current,
        "pitstop_psi_ks_from_scratch_s": round(scratch_s, 4),
        "pitstop_psi_ks_cached_profile_s": round(cached_s, 4),
        "scipy_ks_2samp_full_s": round(ks_s, 4),
        "psi_max_abs_diff_vs_numpy_histogram": worst,
        "ks_max_abs_diff_vs_scipy_full_sample": round(ks_gap, 6),
        "drifted_share": report.drifted_share,
        "evidently": "not installed (not compared; never a pitstop dependency)",
    }
    if optional("evidently") is not None:
        result["evidently"] = "installed but not run by this script: compare in its own environment"
    emit(result)


if __name__ == "__main__":
    main()
