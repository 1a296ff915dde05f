"""Drift against Evidently's data-drift preset (method psi), in Evidently's own environment. Prints JSON.

Evidently is never a dependency of pitstop, not even of the bench extra; run this in a separate
virtual environment that has it, with pitstop's source on the path (its drift code needs numpy only):

    python3.11 -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install evidently "pandas<3"
    PYTHONPATH=src /tmp/evidently-venv/bin/python bench/drift_evidently.py [--reference 1000000] ...

Same data as bench/drift.py (same generator and seed: 20 features, 1 M reference and 100 k current
rows). Times, median of --repeat:

- Evidently: `Report([DataDriftPreset(method="psi")]).run(current, reference)` on pandas frames
  (what a user of it runs: PSI per column on its own bins plus the drifted-column share);
- pitstop from scratch: reference profile (quantile edges, counts, sorted sample) + PSI + KS;
- pitstop monitoring: the stored profile reused, only the current window binned (PSI + KS);
- pitstop PSI only, profile reused (Evidently computes no KS in this preset).

Agreement: pitstop's `psi()` on counts over Evidently's own bins (equal-width, Sturges' rule on
reference + current) against Evidently's value, for every column whose bins are all non-empty
(empty bins are filled differently by design: Evidently 1e-4 or min/1e6, pitstop a 5e-4 floor).
"""

from __future__ import annotations

import argparse
import json
import platform

import numpy as np
import pandas as pd
from evidently import Report
from evidently import __version__ as evidently_version
from evidently.presets import DataDriftPreset

from _common import timed
from pitstop.ml.drift import ReferenceProfile, compare
from pitstop.ml.drift.psi import psi


def evidently_fill(shares: np.ndarray) -> np.ndarray:
    """Evidently's treatment of empty bins (legacy stattests.utils.get_binned_data, feel_zeroes)."""
    out = shares.astype(np.float64).copy()
    smallest = out[out != 0].min()
    out[out == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return out


def psi_only(profile: ReferenceProfile, current: dict[str, np.ndarray]) -> list[float]:
    values = []
    for name, ref in profile.features.items():
        counts = np.bincount(np.searchsorted(ref.edges, current[name], side="right"), minlength=len(ref.edges) + 1)
        values.append(psi(ref.counts, counts))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=int, default=1_000_000)
    parser.add_argument("--current", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)  # the same draws, in the same order, as bench/drift.py
    names = [f"f{i}" for i in range(args.features)]
    reference = {n: rng.normal(0, 1, args.reference) for n in names}
    current = {n: rng.normal(0.1 * (i % 4), 1 + 0.05 * i, args.current) for i, n in enumerate(names)}
    ref_df, cur_df = pd.DataFrame(reference), pd.DataFrame(current)

    def run_evidently() -> dict[str, float]:
        snapshot = Report([DataDriftPreset(method="psi")]).run(current_data=cur_df, reference_data=ref_df)
        found = {}
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config.get("type", "").endswith("ValueDrift"):
                found[config["column"]] = float(metric["value"])
        return found

    evidently_s, theirs = timed(run_evidently, args.repeat)
    scratch_s, _ = timed(lambda: compare(ReferenceProfile.of(reference), current), args.repeat)
    profile = ReferenceProfile.of(reference)
    cached_s, _ = timed(lambda: compare(profile, current), args.repeat)
    psi_s, _ = timed(lambda: psi_only(profile, current), args.repeat)

    gaps, with_empty, filled_gaps = [], [], []
    for n in names:
        edges = np.histogram_bin_edges(np.concatenate([reference[n], current[n]]), bins="sturges")
        ref_counts = np.histogram(reference[n], edges)[0]
        cur_counts = np.histogram(current[n], edges)[0]
        # Every column: Evidently's fill of empty bins first, then pitstop's psi() (which renormalizes).
        filled = psi(evidently_fill(ref_counts / len(reference[n])), evidently_fill(cur_counts / len(current[n])), 0.0)
        filled_gaps.append(abs(filled - theirs[n]))
        if (ref_counts == 0).any() or (cur_counts == 0).any():
            # Empty bins: Evidently fills them with 1e-4 (or min/1e6), pitstop floors every share at
            # 5e-4: the values differ by design, so these columns are counted, not compared.
            with_empty.append(n)
            continue
        gaps.append(abs(psi(ref_counts, cur_counts, floor=0.0) - theirs[n]))

    print(
        json.dumps(
            {
                "features": args.features,
                "reference_rows": args.reference,
                "current_rows": args.current,
                "evidently_version": evidently_version,
                "evidently_data_drift_preset_psi_s": round(evidently_s, 3),
                "pitstop_psi_ks_from_scratch_s": round(scratch_s, 3),
                "pitstop_psi_ks_cached_profile_s": round(cached_s, 3),
                "pitstop_psi_only_cached_profile_s": round(psi_s, 4),
                "speedup_from_scratch": round(evidently_s / scratch_s, 1),
                "speedup_cached_psi_ks": round(evidently_s / cached_s, 1),
                "speedup_cached_psi_only": round(evidently_s / psi_s, 1),
                "psi_columns_compared": len(gaps),
                "psi_max_abs_diff_same_bins": max(gaps) if gaps else None,
                "columns_with_empty_bins_not_compared": with_empty,
                "psi_max_abs_diff_same_bins_evidently_fill_all_columns": max(filled_gaps),
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
