"""Retraining prerequisites: what the data must be before a candidate is trained.

Checked on the rows training would use (known-faulty periods and maintenance windows already left
out), so nothing is trained on bad data:

- ``min_samples``: complete rows (every input and output present) at least this many;
- ``missing``: per asset and input, the share of the asset's rows (timestamps at which any of the
  model's sensors of the asset reported) without the input, at most ``max_missing_share``;
- ``flat``: per asset and input, the share of its values equal to its most common value, at most
  ``max_flat_share`` (an input with zero variance has 1.0; so has a sensor stuck at one value for
  the whole window);
- ``out_of_range``: per asset and input, the share of its values outside the sensor's physical
  min/max in the inventory, at most ``max_out_of_range_share`` (ingest quarantines such readings,
  so this finds readings stored before a range was set or narrowed, and frames given directly).

Each is a `Verdict` with the worst value, its limit and a note with the numbers, e.g.
``9,000 samples < 10,000`` or ``ahu-1/UCWF: 100.0 % of 9,000 values at 0.3 (zero variance)``.
A frame with an ``asset`` column is judged per asset; without one, as one asset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pitstop.config.lifecycle import PrerequisiteSettings
from pitstop.ml.registry.gates import Verdict

ASSET = "asset"  # the column naming each row's asset in a training frame (`ModelData.training_frame`)
Range = tuple[float | None, float | None]
MAX_LISTED = 10  # offending (asset, input) pairs named in a note


def usable(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The rows with every column present, without the asset column: what a twin trains on."""
    present = [c for c in columns if c in frame]
    data = frame.drop(columns=[ASSET]) if ASSET in frame else frame
    return data.dropna(subset=present) if present else data


def check(
    frame: pd.DataFrame,
    inputs: Sequence[str],
    outputs: Sequence[str],
    settings: PrerequisiteSettings,
    ranges: Mapping[str, Mapping[str, Range]] | None = None,
) -> list[Verdict]:
    """Every prerequisite's verdict on ``frame``. ``ranges``: per asset, per sensor, (min, max) from
    the inventory; a frame without an asset column is held to the widest range of each sensor."""
    columns = [*inputs, *outputs]
    samples = len(usable(frame, columns)) if all(c in frame for c in columns) else 0
    verdicts = [
        Verdict(
            {"rule": "min_samples", "value": settings.min_samples},
            float(samples),
            float(settings.min_samples),
            samples >= settings.min_samples,
            f"{samples:,} samples {'>=' if samples >= settings.min_samples else '<'} {settings.min_samples:,}",
        )
    ]
    missing: list[tuple[str, float, str]] = []
    flat: list[tuple[str, float, str]] = []
    outside: list[tuple[str, float, str]] = []
    for asset, group in _groups(frame):
        limits = (ranges or {}).get(asset) if asset else _widest(ranges or {})
        for name in inputs:
            subject = f"{asset}/{name}" if asset else name
            column = group[name] if name in group else pd.Series(np.nan, index=group.index)
            values = column.to_numpy(dtype=np.float64)
            present = values[np.isfinite(values)]
            rows = len(values)
            if rows == 0:
                continue
            gone = 1.0 - len(present) / rows
            missing.append((subject, gone, f"{subject}: {gone:.1%} of {rows:,} rows missing"))
            if len(present) == 0:
                continue
            uniques, counts = np.unique(present, return_counts=True)
            top = int(np.argmax(counts))
            share = float(counts[top]) / len(present)
            what = " (zero variance)" if len(uniques) == 1 else ""
            flat.append(
                (subject, share, f"{subject}: {share:.1%} of {len(present):,} values at {uniques[top]:g}{what}")
            )
            low, high = (limits or {}).get(name, (None, None))
            if low is not None or high is not None:
                bad = np.zeros(len(present), dtype=bool)
                if low is not None:
                    bad |= present < low
                if high is not None:
                    bad |= present > high
                off = float(bad.mean())
                span = f"[{'' if low is None else f'{low:g}'}, {'' if high is None else f'{high:g}'}]"
                outside.append((subject, off, f"{subject}: {off:.1%} of {len(present):,} values outside {span}"))
    verdicts.append(_worst("missing", missing, settings.max_missing_share))
    verdicts.append(_worst("flat", flat, settings.max_flat_share))
    verdicts.append(_worst("out_of_range", outside, settings.max_out_of_range_share))
    return verdicts


def _groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if ASSET not in frame:
        return [("", frame)]
    return [(str(asset), group) for asset, group in frame.groupby(ASSET, sort=True)]


def _widest(ranges: Mapping[str, Mapping[str, Range]]) -> dict[str, Range]:
    """Per sensor name, the widest range over the assets (an open end stays open)."""
    out: dict[str, Range] = {}
    for per_asset in ranges.values():
        for name, (low, high) in per_asset.items():
            if name not in out:
                out[name] = (low, high)
                continue
            was_low, was_high = out[name]
            out[name] = (
                None if low is None or was_low is None else min(low, was_low),
                None if high is None or was_high is None else max(high, was_high),
            )
    return out


def _worst(rule: str, measured: list[tuple[str, float, str]], limit: float) -> Verdict:
    """One verdict for the (subject, value, note) measurements of a rule: the worst value; the note
    names every subject past the limit (the first `MAX_LISTED`), or the worst when none is."""
    spec = {"rule": rule, "value": limit}
    if not measured:
        return Verdict(spec, None, limit, True, "nothing to measure")
    worst = max(measured, key=lambda m: m[1])
    failing = sorted((m for m in measured if m[1] > limit), key=lambda m: -m[1])
    if not failing:
        return Verdict(spec, worst[1], limit, True, f"worst {worst[2]} (limit {limit:.1%})")
    notes = [m[2] for m in failing[:MAX_LISTED]]
    if len(failing) > MAX_LISTED:
        notes.append(f"and {len(failing) - MAX_LISTED} more")
    return Verdict(spec, worst[1], limit, False, f"{'; '.join(notes)} (limit {limit:.1%})")
