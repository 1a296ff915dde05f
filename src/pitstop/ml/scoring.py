"""Scoring on the stream: each asset's new readings are scored against its own baseline.

`StreamScorer.score_asset` reads an asset's sensors for a time range, scores the rows with a
PCA T²+Q detector fitted on the asset's first ``baseline`` of readings, and returns a
`Finding` when at least ``min_flagged`` rows exceed the fitted threshold. The signals are
ranked by a reconstruction detector (each signal rebuilt from the others), whose residuals
point at the signal that left the pattern rather than at inputs that merely moved; `report` opens (or
updates) the incident ``asset.anomaly:<asset>`` with the evidence window and the top
contributing signals. `run` does both for every asset, from where the last run stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pitstop.core.types import Severity, to_epoch_us
from pitstop.ml.detectors import PcaDetector, ReconstructionDetector
from pitstop.ml.detectors.base import Detector
from pitstop.ml.explanations import Contribution, explain
from pitstop.ml.thresholds import QuantileThreshold, Threshold

if TYPE_CHECKING:
    from pitstop.app import Pitstop


@dataclass(frozen=True, slots=True)
class Finding:
    asset: str
    start: datetime
    end: datetime
    flagged_rows: int
    scored_rows: int
    max_score: float
    cutoff: float
    signals: list[Contribution]

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "evidence": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "flagged_rows": self.flagged_rows,
            "scored_rows": self.scored_rows,
            "max_score": round(self.max_score, 3),
            "cutoff": round(self.cutoff, 3),
            "top_signals": [{"signal": c.signal, "share": c.share} for c in self.signals],
        }


@dataclass
class AssetModel:
    signals: list[str]
    detector: Detector
    threshold: Threshold
    baseline_end: datetime
    explainer: Detector


def asset_frame(
    pitstop: Pitstop, asset: str, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Every sensor of an asset in [start, end) as columns, on the timestamps all of them share."""
    start_us = to_epoch_us(start) if start is not None else None
    end_us = to_epoch_us(end) if end is not None else None
    parts = [
        pitstop.readings.window(s.id, start_us, end_us)["value"].rename(s.name) for s in pitstop.assets.sensors(asset)
    ]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, axis=1, join="inner").dropna().sort_index()


@dataclass
class StreamScorer:
    pitstop: Pitstop
    baseline: timedelta = timedelta(hours=24)
    min_flagged: int = 10
    margin: float = 1.5
    models: dict[str, AssetModel] = field(default_factory=dict)
    scored_until: dict[str, datetime] = field(default_factory=dict)

    def model(self, asset: str) -> AssetModel | None:
        """The asset's model, fitted on its first ``baseline`` of readings once they exist."""
        if asset in self.models:
            return self.models[asset]
        frame = asset_frame(self.pitstop, asset)
        if frame.empty or frame.index[-1] - frame.index[0] < self.baseline:
            return None
        reference = frame[frame.index < frame.index[0] + self.baseline]
        varying = [c for c in reference.columns if reference[c].std() > 1e-9]
        detector = PcaDetector(variance=0.9).fit(reference[varying].to_numpy())
        threshold = QuantileThreshold(q=1.0, margin=self.margin).fit(detector.score(reference[varying].to_numpy()))
        explainer = ReconstructionDetector().fit(reference[varying].to_numpy())
        model = AssetModel(varying, detector, threshold, reference.index[-1].to_pydatetime(), explainer)
        self.models[asset] = model
        return model

    def score_asset(self, asset: str, since: datetime | None = None, until: datetime | None = None) -> Finding | None:
        model = self.model(asset)
        if model is None:
            return None
        start = max(since, model.baseline_end) if since is not None else model.baseline_end
        frame = asset_frame(self.pitstop, asset, start, until)
        frame = frame[frame.index > start] if not frame.empty else frame
        if frame.empty or not set(model.signals) <= set(frame.columns):
            return None
        X = frame[model.signals].to_numpy()
        scores = model.detector.score(X)
        flagged = model.threshold.is_anomalous(scores)
        if int(flagged.sum()) < self.min_flagged:
            return None
        rows = np.flatnonzero(flagged)
        signals = explain(model.explainer, X[flagged], model.signals)
        return Finding(
            asset,
            frame.index[rows[0]].to_pydatetime(),
            frame.index[rows[-1]].to_pydatetime(),
            int(flagged.sum()),
            len(X),
            float(scores.max()),
            model.threshold.cutoff_,
            signals,
        )

    def report(self, finding: Finding) -> None:
        top = finding.signals[0].signal if finding.signals else "?"
        self.pitstop.incidents.open_or_update(
            f"asset.anomaly:{finding.asset}",
            severity=Severity.WARNING,
            title=f"{finding.asset} behaves abnormally; look at {top} first",
            detail=json.dumps(finding.as_dict()),
            source="monitoring",
        )

    def run(self, now: datetime) -> list[Finding]:
        """Score every asset's readings since the last run, up to ``now``; report findings."""
        findings = []
        for asset in self.pitstop.assets.list_assets():
            finding = self.score_asset(asset.name, self.scored_until.get(asset.name), now)
            if self.models.get(asset.name) is not None:
                self.scored_until[asset.name] = now
            if finding is not None:
                self.report(finding)
                findings.append(finding)
        return findings
