"""Scoring on the stream: each asset's new readings are judged against its own baseline.

One detection stack for every asset, configured by asset type and sensor ranges, never per
data set:

1. **Expected values.** An asset type with loop twins (`pitstop.ml.twins.LOOPS`; HVAC: what
   the controller should drive the valve and fan to given the conditions and the set point, and
   what the coil should make of the water and air going through it) is judged on the twins'
   residuals, measured minus predicted: a colder day or a new set point moves the predictions
   with the readings, a stuck valve or a fouled coil does not. Other assets are judged on their
   signals themselves.
2. **Persistence.** Each residual is smoothed by a rolling median over ``window`` (15 min): a
   row scores high only when most of the quarter hour before it does, so spikes and single bad
   readings never alarm, whatever the sampling rate.
3. **Per-signal scale.** A robust z-score per signal against the baseline's smoothed residuals
   (out-of-fold for the twins: blocked folds in time, so the scale is what the twin does on data
   it did not see), never below half a percent of the sensor's span (`SPAN_SHARE`): a change
   smaller than that is not one a technician would act on.
4. **Self-calibrated cut-off.** Peaks over threshold (`PotThreshold`, tail no heavier than
   exponential) on the baseline's scores, at the risk that gives ``false_per_week`` false alarms
   per asset-week at the asset's sampling period, times ``margin`` for operating states the
   baseline did not hold (wider while the baseline is young: `StreamScorer._margin`). The risk is
   per scored row, so a run of flagged rows counts as many: counting excursions instead (runs
   declustering) was measured and rejected (bench/README, "Plant scorecard").
5. **A baseline that grows, then follows.** The first baseline is the asset's first
   ``baseline`` (24 h) of readings; each further day scored, it is refitted on everything so far
   but the findings' evidence, until it spans ``grow_for`` (7 days): a week's weather, loads and
   set points. From then on it is refitted each day on that first ``grow_for`` and the latest
   ``grow_for`` of scored readings, the findings' evidence left out: the latest week follows the
   season (April is not judged by a week of March), the first keeps what the asset was when
   scoring began (a level that comes back after a long excursion is not new). What was flagged
   never becomes normal; a fault never flagged in a week of scoring becomes part of the latest
   week, which is why slow losses have checks of their own (`coil_ua`, `heat_balance`, the
   prognostics' trends).

An asset is *learning* until its readings span ``baseline`` (`StreamScorer.status`); it raises
nothing meanwhile. `report` opens (or updates) the incident ``asset.anomaly:<asset>`` with the
evidence window and the signals to look at first, and stores the finding in the ``findings``
table. `StreamScorer.run_asset` does both for one asset from where the last run stopped, whichever
process ran it; `run` does it for every asset.

The settings (window, span share, margin, growth) were chosen on simulated plants (seeds 1-3 of
``bench/scenarios/all-faults.toml``, 30 days) and measured on others (seeds 4-6; bench/README,
"Plant scorecard").

State survives restarts and moves between processes: each asset's fitted baseline (detector,
threshold, loop twins) is stored whole, as compressed JSON, in its ``scorer_baselines`` row with
the sensors and the fit window it was fitted on, a version counting its refits and how far the
stream has been scored. Worker processes on several machines share that row, not a data
directory: a worker keeps a model in memory while the row's version is the one it loaded, and
advances how far the stream was scored by compare-and-set, so that when two of them score one
asset (a hand-over, a redelivered job) one of them reports each window and the other stops
(`StreamScorer.run_asset`). The baseline is refitted only when the asset's sensors change, when
the baseline length asked for changes, when it was stored by an older version (rows written
before the state moved into the database have none), or when it is older than ``refit_after``
(then on the latest ``baseline`` of readings already scored).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pitstop.core.types import Severity, from_epoch_us, to_epoch_us
from pitstop.ml.base import Estimator
from pitstop.ml.detectors import RobustZScoreDetector
from pitstop.ml.detectors.base import Detector
from pitstop.ml.explanations import Contribution, explain
from pitstop.ml.thresholds import PotThreshold, Threshold
from pitstop.ml.twins import LOOPS, Twin, loop_labels
from pitstop.storage.schema import findings, scorer_baselines

if TYPE_CHECKING:
    from pitstop.core.clock import Clock
    from pitstop.incidents import IncidentRegistry
    from pitstop.storage.engine import Database
    from pitstop.storage.repos.assets import AssetRepo
    from pitstop.storage.repos.readings import ReadingRepo

STATE_FORMAT = 4  # 2: smoothed residual z-scores and a peaks-over-threshold cut-off; 3: one twin per
# loop; 4: in the database row, twins inside
TWIN_MIN_ROWS = 200  # loop twins are fitted only on a baseline at least this long
TWIN_FOLDS = 3  # blocked folds in time for the twin's out-of-fold residuals
SPAN_SHARE = 0.005  # a deviation under this share of a sensor's span never scores high
WEEK_S = 7 * 86_400.0
_RESTORABLE: dict[str, type[Estimator]] = {
    "RobustZScoreDetector": RobustZScoreDetector,
    "PotThreshold": PotThreshold,
}


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
    explained_by: str = "deviation from baseline"  # or "twin residuals"

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "evidence": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "flagged_rows": self.flagged_rows,
            "scored_rows": self.scored_rows,
            "max_score": round(self.max_score, 3),
            "cutoff": round(self.cutoff, 3),
            "top_signals": [{"signal": c.signal, "share": c.share} for c in self.signals],
            "explained_by": self.explained_by,
        }


@dataclass(frozen=True, slots=True)
class ScoringStatus:
    """Where an asset stands with the stream scorer: ``learning`` until its readings span the
    baseline (nothing is raised meanwhile), then ``scoring`` against the baseline it learned."""

    asset: str
    state: str  # "waiting" (no readings yet), "learning" or "scoring"
    baseline_start: datetime | None = None
    baseline_end: datetime | None = None  # while learning: when the baseline will be complete
    cutoff: float | None = None
    grows_until: datetime | None = None  # it grows until then; None: first and latest days

    def describe(self) -> str:
        if self.state == "waiting":
            return "anomaly scoring waits for readings"
        if self.state == "learning":
            ready = self.baseline_end.isoformat(timespec="minutes") if self.baseline_end else "?"
            return f"learning what normal looks like: scoring starts once the baseline is complete ({ready})"
        start = self.baseline_start.isoformat(timespec="minutes") if self.baseline_start else "?"
        end = self.baseline_end.isoformat(timespec="minutes") if self.baseline_end else "?"
        grows = "; refitted each day on its first readings and its latest"
        if self.grows_until is not None:
            grows = f"; it grows with each day scored until {self.grows_until.isoformat(timespec='minutes')}"
        return f"scoring against the baseline of {start} to {end}{grows}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "baseline_start": self.baseline_start.isoformat() if self.baseline_start else None,
            "baseline_end": self.baseline_end.isoformat() if self.baseline_end else None,
            "cutoff": None if self.cutoff is None else round(self.cutoff, 3),
            "grows_until": self.grows_until.isoformat() if self.grows_until else None,
            "summary": self.describe(),
        }


@dataclass
class AssetModel:
    signals: list[str]  # what is scored: the twins' outputs, or the asset's own signals
    detector: Detector
    threshold: Threshold
    baseline_end: datetime
    twins: dict[str, Twin] = field(default_factory=dict)  # by loop name (`pitstop.ml.twins.LOOPS`)
    baseline_start: datetime | None = None
    sensors: str = ""  # `sensors_key` when fitted
    fitted_at: datetime | None = None
    version: int = 0  # the `scorer_baselines` row's version it was stored as or loaded from

    def residuals(self, frame: pd.DataFrame) -> pd.DataFrame:
        """What is scored, row by row: measured minus the twins' predictions, or the signals."""
        if not self.twins:
            return frame[self.signals]
        parts = []
        for name, twin in self.twins.items():
            outputs = list(twin.outputs)
            part = frame[outputs] - twin.predict(frame)[outputs]
            part.columns = loop_labels(name, outputs)
            parts.append(part)
        return pd.concat(parts, axis=1)[self.signals]

    @property
    def columns(self) -> set[str]:
        """The readings scoring needs."""
        if not self.twins:
            return set(self.signals)
        return {column for twin in self.twins.values() for column in (*twin.inputs, *twin.outputs)}


def asset_frame(
    assets: AssetRepo, readings: ReadingRepo, asset: str, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Every sensor of an asset in [start, end) as columns, on the timestamps all of them share."""
    start_us = to_epoch_us(start) if start is not None else None
    end_us = to_epoch_us(end) if end is not None else None
    parts = [readings.window(s.id, start_us, end_us)["value"].rename(s.name) for s in assets.sensors(asset)]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, axis=1, join="inner").dropna().sort_index()


# -- fitted state as JSON ----------------------------------------------------------------------


def _dump(estimator: Estimator) -> dict[str, Any]:
    """Class, parameters and fitted attributes (numpy arrays and numbers) of an estimator."""
    state: dict[str, Any] = {}
    for key, value in vars(estimator).items():
        if not key.endswith("_") or key.startswith("_"):
            continue
        if isinstance(value, np.ndarray):
            state[key] = {"array": value.tolist(), "dtype": str(value.dtype)}
        else:
            state[key] = value.item() if isinstance(value, np.generic) else value
    return {"class": type(estimator).__name__, "params": estimator.get_params(), "state": state}


def _restore(data: dict[str, Any]) -> Any:
    cls = _RESTORABLE.get(data["class"])
    if cls is None:
        raise ValueError(f"unknown estimator {data['class']!r} in a scoring baseline")
    estimator = cls(**data["params"])
    for key, value in data["state"].items():
        if isinstance(value, dict) and "array" in value:
            value = np.asarray(value["array"], dtype=value["dtype"])
        setattr(estimator, key, value)
    return estimator


def sensors_key(assets: AssetRepo, asset: str) -> str:
    """A fingerprint of the asset's sensors (ids and names): it changes when a sensor is added,
    removed or renamed."""
    names = sorted((s.id, s.name) for s in assets.sensors(asset))
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()


def _stored_finding(row: Row[Any]) -> Finding:
    """The `Finding` of a ``findings`` row."""
    explanation = json.loads(row.explanation)
    return Finding(
        row.asset,
        row.start_at,
        row.end_at,
        row.flagged_rows,
        row.scored_rows,
        row.score,
        row.cutoff,
        [Contribution(s["signal"], s["share"]) for s in explanation.get("top_signals", [])],
        explanation.get("explained_by", "deviation from baseline"),
    )


@dataclass(kw_only=True)
class StreamScorer:
    """Scores each asset's new readings against its baseline (module docstring). It reads the
    inventory and the readings, keeps its state in the database (``scorer_baselines``,
    ``findings``; what it holds in memory is a cache of it), and opens and resolves
    ``asset.anomaly:<asset>`` through the incident registry. Several of them, in processes on
    different machines, may score the same assets: `run_asset` says how they stay out of each
    other's way."""

    db: Database
    clock: Clock
    assets: AssetRepo
    readings: ReadingRepo
    incidents: IncidentRegistry
    baseline: timedelta = timedelta(hours=24)
    window: timedelta = timedelta(minutes=15)
    false_per_week: float = 0.05
    margin: float = 1.5
    # The baseline grows: refitted each `grow_every` of scored readings on everything so far
    # (findings' evidence left out) until it spans `grow_for`, so it comes to hold the weather,
    # loads and set points of a whole week, not only those of its first day; then each
    # `grow_every` on the first and the latest `grow_for`, so it follows the season.
    grow_for: timedelta = timedelta(days=7)
    grow_every: timedelta = timedelta(days=1)
    refit_after: timedelta | None = None
    # An open `asset.anomaly` resolves after this long without a finding: a later fault on the
    # asset then opens an incident of its own instead of disappearing into a stale one.
    clear_after: timedelta = timedelta(hours=1)
    twin_trees: int = 100
    models: dict[str, AssetModel] = field(default_factory=dict)
    scored_until: dict[str, datetime] = field(default_factory=dict)
    grow_tried: dict[str, datetime] = field(default_factory=dict)

    # -- baselines -------------------------------------------------------------------------------
    def model(self, asset: str) -> AssetModel | None:
        """The asset's model: in memory while the stored row's version is the one loaded, else the
        stored baseline if still valid, else fitted on the asset's first ``baseline`` of readings
        once they exist (and stored). It is refitted each ``grow_every`` of scored readings on the
        first and the latest ``grow_for`` of them but the findings' evidence (`_grown`). Reading
        the row also refreshes how far the stream was scored (`scored_until`), by any process."""
        for _ in range(3):
            settled, model = self._model(asset)
            if settled:
                return model
        return None  # other processes kept refitting it under this one: the next run tries again

    def _model(self, asset: str) -> tuple[bool, AssetModel | None]:
        """(True, the model or None while learning), or (False, None) when another process stored
        a refit first (this one's is dropped; the caller looks again)."""
        key = sensors_key(self.assets, asset)
        row = self._row(asset)
        fits = row is not None and row.sensors == key and row.window_s == self.baseline.total_seconds()
        if row is not None and fits and row.scored_until is not None:
            self.scored_until[asset] = row.scored_until
        else:
            self.scored_until.pop(asset, None)
        known = self.models.pop(asset, None)
        if known is not None and (row is None or not fits or known.version != row.version):
            known = None  # refitted by another process, or no longer the asset's baseline
        stale = row is not None and self._stale(row.fitted_at)
        if known is not None and not stale and not self._due(asset, known):
            self.models[asset] = known
            return True, known
        model: AssetModel | None = None
        window: pd.DataFrame | None = None
        if row is not None and fits:
            if not stale:
                model = known or self._load(asset)
                if model is not None and self._due(asset, model):
                    grown = self._grown(asset, model.baseline_start or model.baseline_end)
                    self.grow_tried[asset] = self.scored_until[asset]
                    if len(grown) > 1 and grown.index[-1] - grown.index[0] >= self.baseline:
                        window, model = grown, None
                    # else: mostly flagged since; keep the baseline, try again a `grow_every` later
            elif row.scored_until is not None:
                window = asset_frame(
                    self.assets, self.readings, asset, row.scored_until - self.baseline, row.scored_until
                )
        if model is None:
            if window is None or window.empty:
                span = self._reading_span(asset)
                if span is None or span[1] - span[0] < self.baseline:
                    return True, None  # still learning (found without reading the readings themselves)
                frame = asset_frame(self.assets, self.readings, asset)
                if frame.empty or frame.index[-1] - frame.index[0] < self.baseline:
                    return True, None
                window = frame[frame.index < frame.index[0] + self.baseline]
            model = self._fit(asset, window)
            if not self._save(asset, key, model, row, keep_scored=fits):
                return False, None
        self.models[asset] = model
        return True, model

    def _row(self, asset: str) -> Row[*tuple[Any, ...]] | None:
        """The asset's ``scorer_baselines`` row without its state: the cheap look before each use."""
        c = scorer_baselines.c
        query = select(c.sensors, c.window_s, c.fit_start, c.fit_end, c.fitted_at, c.version, c.scored_until)
        with self.db.connect() as conn:
            return conn.execute(query.where(c.asset == asset)).first()

    def forget(self, asset: str) -> None:
        """Drop what this scorer holds in memory for the asset (its model, how far it was scored):
        another process scores it now, and the next use here reads the database again."""
        self.models.pop(asset, None)
        self.scored_until.pop(asset, None)
        self.grow_tried.pop(asset, None)

    def _due(self, asset: str, model: AssetModel) -> bool:
        """A further ``grow_every`` of readings has been scored since the baseline's end (or since
        the last refit that found too little to refit on)."""
        scored = self.scored_until.get(asset)
        since = max(model.baseline_end, self.grow_tried.get(asset, model.baseline_end))
        return scored is not None and scored - since >= self.grow_every

    def _grown(self, asset: str, start: datetime) -> pd.DataFrame:
        """The first ``grow_for`` of readings from ``start`` (the first baseline's) and the latest
        ``grow_for`` scored (all of them while the asset is younger than twice that), without the
        findings' evidence windows: what was flagged never becomes normal."""
        until = self.scored_until[asset]
        first_end = min(start + self.grow_for, until)
        frame = pd.concat(
            [
                asset_frame(self.assets, self.readings, asset, start, first_end),
                asset_frame(self.assets, self.readings, asset, max(first_end, until - self.grow_for), until),
            ]
        )
        with self.db.connect() as conn:
            flagged = conn.execute(
                select(findings.c.start_at, findings.c.end_at).where(
                    findings.c.asset == asset, findings.c.end_at >= start
                )
            ).all()
        keep = np.ones(len(frame), dtype=bool)
        for lo, hi in flagged:
            keep &= ~((frame.index >= pd.Timestamp(lo) - self.window) & (frame.index <= pd.Timestamp(hi)))
        return frame[keep]

    def status(self, asset: str) -> ScoringStatus:
        """Learning or scoring, without fitting anything (a page can ask for it on every view)."""
        known = self.models.get(asset)
        if known is not None:
            start = known.baseline_start or known.baseline_end
            cutoff = known.threshold.cutoff_
            return ScoringStatus(
                asset, "scoring", start, known.baseline_end, cutoff, self._grows_until(start, known.baseline_end)
            )
        with self.db.connect() as conn:
            row = conn.execute(select(scorer_baselines).where(scorer_baselines.c.asset == asset)).first()
        if row is not None and row.sensors == sensors_key(self.assets, asset):
            grows_until = self._grows_until(row.fit_start, row.fit_end)
            return ScoringStatus(asset, "scoring", row.fit_start, row.fit_end, None, grows_until)
        span = self._reading_span(asset)
        if span is None:
            return ScoringStatus(asset, "waiting")
        return ScoringStatus(asset, "learning", span[0], span[0] + self.baseline)

    def _reading_span(self, asset: str) -> tuple[datetime, datetime] | None:
        """From when every sensor of the asset has readings to the last time all of them had one;
        None while one of them has none."""
        ids = [s.id for s in self.assets.sensors(asset)]
        ends = self.readings.span(ids)
        if not ids or len(ends) < len(ids):
            return None
        return from_epoch_us(max(a for a, _ in ends.values())), from_epoch_us(min(b for _, b in ends.values()))

    def _grows_until(self, start: datetime, end: datetime) -> datetime | None:
        """When a baseline of ``start`` to ``end`` will span ``grow_for``; None once it does
        (less half a refit: the readings never end exactly on the hour)."""
        return None if end - start >= self.grow_for - self.grow_every / 2 else start + self.grow_for

    def _stale(self, fitted_at: datetime | None) -> bool:
        if self.refit_after is None or fitted_at is None:
            return False
        return self.clock.now() - fitted_at > self.refit_after

    def _smooth(self, residuals: pd.DataFrame) -> pd.DataFrame:
        return residuals.rolling(self.window).median()

    def _fit(self, asset: str, reference: pd.DataFrame) -> AssetModel:
        spans = {
            s.name: s.max_value - s.min_value
            for s in self.assets.sensors(asset)
            if s.min_value is not None and s.max_value is not None
        }
        row = self.assets.get_asset(asset)
        loops = LOOPS.get(row.type, ()) if row is not None else ()
        needed = {column for loop in loops for column in (*loop.inputs, *loop.outputs)}
        twins: dict[str, Twin] = {}
        if len(reference) >= TWIN_MIN_ROWS and needed <= set(reference.columns):
            twins = {loop.name: Twin.for_loop(loop, n_estimators=self.twin_trees) for loop in loops}
        sensor_of: dict[str, str] = {}  # each scored signal's sensor (a loop residual's output)
        if twins:
            signals = [label for loop in loops for label in loop.labels()]
            sensor_of = {
                label: output for loop in loops for label, output in zip(loop.labels(), loop.outputs, strict=True)
            }
            parts = []
            for name, twin in twins.items():
                part = self._out_of_fold(twin, reference)
                part.columns = loop_labels(name, list(part.columns))
                parts.append(part)
                twin.fit(reference)
            residuals = pd.concat(parts, axis=1)
        else:
            # a signal constant while learning is scored only if its span says how much a change is
            signals = [c for c in reference.columns if reference[c].std() > 1e-9 or spans.get(c, 0.0) > 0]
            residuals = reference[signals]
        smooth = self._smooth(residuals)
        smooth = smooth[smooth.index >= smooth.index[0] + self.window]  # whole windows only
        if len(smooth) < 2:
            smooth = self._smooth(residuals)
        floor = [SPAN_SHARE * spans.get(sensor_of.get(c, c), 0.0) for c in signals]
        detector = RobustZScoreDetector(floor=floor).fit(smooth.to_numpy())
        steps = pd.Series(reference.index).diff().dropna()
        period_s = pd.Timedelta(steps.median()).total_seconds() if len(steps) else 60.0
        risk = min(max(self.false_per_week * period_s / WEEK_S, 1e-9), 0.01)
        threshold = PotThreshold(risk=risk, margin=self._margin(reference), max_shape=0.0)
        threshold = threshold.fit(detector.score(smooth.to_numpy()))
        return AssetModel(
            signals,
            detector,
            threshold,
            reference.index[-1].to_pydatetime(),
            twins,
            reference.index[0].to_pydatetime(),
        )

    def _margin(self, reference: pd.DataFrame) -> float:
        """``margin`` once the baseline spans ``grow_for``; wider while it is younger, by the
        square root of how much of it is still to come (a one-day baseline of a seven-day
        growth: 2.6 times), since a young baseline has seen fewer of the asset's states."""
        span = (reference.index[-1] - reference.index[0]).total_seconds() if len(reference) > 1 else 0.0
        young = self.grow_for.total_seconds() / max(span, 3600.0)
        return float(self.margin * max(young, 1.0) ** 0.5)

    @staticmethod
    def _out_of_fold(twin: Twin, reference: pd.DataFrame) -> pd.DataFrame:
        """The twin's residuals on each block of the reference from a twin fitted on the others:
        what it does on data it did not learn from, which is what scoring will ask of it."""
        outputs = list(twin.outputs)
        blocks = twin.blocked_folds(reference, TWIN_FOLDS)
        assert blocks is not None, "a loop twin is fitted on TWIN_MIN_ROWS rows or more"
        return pd.concat([block[outputs] - fold.predict(block)[outputs] for fold, block in blocks])

    def _save(
        self, asset: str, key: str, model: AssetModel, seen: Row[*tuple[Any, ...]] | None, *, keep_scored: bool
    ) -> bool:
        """Store a model fitted here as the asset's baseline, one version after the row ``seen``
        when this one looked (inserted when there was none); how far the stream was scored stays
        unless the row was another baseline's (``keep_scored`` False: other sensors or length).
        False when another process stored a baseline since: theirs stands, this one is dropped."""
        now = self.clock.now()
        values: dict[str, Any] = {
            "sensors": key,
            "window_s": self.baseline.total_seconds(),
            "fit_start": model.baseline_start or model.baseline_end,
            "fit_end": model.baseline_end,
            "fitted_at": now,
            "state": self._encode(asset, model),
        }
        if not keep_scored:
            values["scored_until"] = None
        version = 1 if seen is None else seen.version + 1
        try:
            with self.db.begin() as conn:
                if seen is None:
                    conn.execute(insert(scorer_baselines).values(asset=asset, version=version, **values))
                else:
                    stored = conn.execute(
                        update(scorer_baselines)
                        .where(scorer_baselines.c.asset == asset, scorer_baselines.c.version == seen.version)
                        .values(version=version, **values)
                    ).rowcount
                    if stored != 1:
                        return False
        except IntegrityError:  # another process inserted the asset's first baseline
            return False
        model.sensors, model.fitted_at, model.version = key, now, version
        return True

    @staticmethod
    def _encode(asset: str, model: AssetModel) -> bytes:
        """The whole baseline as zlib-compressed JSON (no pickle: a row never runs code when read)."""
        role = {"asset": asset, "role": "loop twin of the scoring baseline"}
        state = {
            "format": STATE_FORMAT,
            "kind": "pitstop.scoring-baseline",
            "asset": asset,
            "signals": model.signals,
            "baseline_start": (model.baseline_start or model.baseline_end).isoformat(),
            "baseline_end": model.baseline_end.isoformat(),
            "detector": _dump(model.detector),
            "threshold": _dump(model.threshold),
            "twins": {name: twin.to_dict(metadata=role) for name, twin in model.twins.items()},
        }
        return zlib.compress(json.dumps(state).encode())

    def _load(self, asset: str) -> AssetModel | None:
        """The stored model with the row's version, or None when the row holds none or one this
        version cannot read (then it is refitted)."""
        c = scorer_baselines.c
        with self.db.connect() as conn:
            row = conn.execute(select(c.state, c.version, c.sensors, c.fitted_at).where(c.asset == asset)).first()
        if row is None or row.state is None:
            return None
        try:
            state = json.loads(zlib.decompress(row.state))
            if state.get("kind") != "pitstop.scoring-baseline" or state.get("format") != STATE_FORMAT:
                return None
            twins = {name: Twin.from_dict(envelope) for name, envelope in state["twins"].items()}
            return AssetModel(
                list(state["signals"]),
                _restore(state["detector"]),
                _restore(state["threshold"]),
                datetime.fromisoformat(state["baseline_end"]),
                twins,
                datetime.fromisoformat(state["baseline_start"]),
                sensors=row.sensors,
                fitted_at=row.fitted_at,
                version=row.version,
            )
        except (zlib.error, ValueError, KeyError, TypeError):
            return None

    # -- scoring -----------------------------------------------------------------------------------
    def score_asset(self, asset: str, since: datetime | None = None, until: datetime | None = None) -> Finding | None:
        model = self.model(asset)
        if model is None:
            return None
        start = max(since, model.baseline_end) if since is not None else model.baseline_end
        # the window before `start` too, so the first new row is smoothed over a whole window
        frame = asset_frame(self.assets, self.readings, asset, start - self.window, until)
        needed = model.columns
        if frame.empty or not needed <= set(frame.columns):
            return None
        smooth = self._smooth(model.residuals(frame))
        # `until` is exclusive: a row at one run's end is the next run's first
        smooth = smooth[(smooth.index >= start) & (smooth.index > model.baseline_end)]
        if smooth.empty:
            return None
        X = smooth.to_numpy()
        scores = model.detector.score(X)
        flagged = model.threshold.is_anomalous(scores)
        if not flagged.any():
            return None
        rows = np.flatnonzero(flagged)
        return Finding(
            asset,
            smooth.index[rows[0]].to_pydatetime(),
            smooth.index[rows[-1]].to_pydatetime(),
            int(flagged.sum()),
            len(X),
            float(scores.max()),
            model.threshold.cutoff_,
            explain(model.detector, X[flagged], model.signals),
            "twin residuals" if model.twins else "deviation from baseline",
        )

    def report(self, finding: Finding) -> None:
        """Store the finding (once per evidence window) and open or update ``asset.anomaly:<asset>``
        from it."""
        with self.db.begin() as conn:
            self._store(conn, finding)
        self._open_pending(finding.asset)

    def _store(self, conn: Connection, finding: Finding) -> None:
        """The finding in ``findings``, not yet opened (``incident_key`` ""), unless its evidence
        window is there already."""
        known = conn.execute(
            select(findings.c.id).where(
                findings.c.asset == finding.asset,
                findings.c.start_at == finding.start,
                findings.c.end_at == finding.end,
            )
        ).first()
        if known is not None:
            return
        values = {
            "asset": finding.asset,
            "start_at": finding.start,
            "end_at": finding.end,
            "score": finding.max_score,
            "cutoff": finding.cutoff,
            "flagged_rows": finding.flagged_rows,
            "scored_rows": finding.scored_rows,
            "explanation": json.dumps(
                {
                    "explained_by": finding.explained_by,
                    "top_signals": [{"signal": c.signal, "share": c.share} for c in finding.signals],
                }
            ),
            "incident_key": "",
            "created_at": self.clock.now(),
        }
        try:
            with conn.begin_nested():
                conn.execute(insert(findings).values(**values))
        except IntegrityError:
            pass  # stored meanwhile by another writer: the same evidence window, once

    def _open_pending(self, asset: str) -> None:
        """Open or update ``asset.anomaly:<asset>`` for each of the asset's stored findings not yet
        opened, oldest first, then mark each opened. The incident is made from the stored row, so
        opening one twice (a crash between the two steps) sends the same detail, which changes
        nothing."""
        key = f"asset.anomaly:{asset}"
        with self.db.connect() as conn:
            pending = conn.execute(
                select(findings)
                .where(findings.c.asset == asset, findings.c.incident_key == "")
                .order_by(findings.c.start_at, findings.c.id)
            ).all()
        for row in pending:
            finding = _stored_finding(row)
            top = finding.signals[0].signal if finding.signals else "?"
            self.incidents.open_or_update(
                key,
                severity=Severity.WARNING,
                title=f"{asset} behaves abnormally; look at {top} first",
                detail=json.dumps(finding.as_dict()),
                source="monitoring",
            )
            with self.db.begin() as conn:
                conn.execute(
                    update(findings)
                    .where(findings.c.id == row.id, findings.c.incident_key == "")
                    .values(incident_key=key)
                )

    def findings(self, asset: str, *, since: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Stored findings of an asset, newest first."""
        query = select(findings).where(findings.c.asset == asset)
        if since is not None:
            query = query.where(findings.c.end_at >= since)
        query = query.order_by(findings.c.start_at.desc(), findings.c.id.desc()).limit(max(1, limit))
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "id": r.id,
                "asset": r.asset,
                "start": r.start_at.isoformat(),
                "end": r.end_at.isoformat(),
                "score": round(r.score, 3),
                "cutoff": round(r.cutoff, 3),
                "flagged_rows": r.flagged_rows,
                "scored_rows": r.scored_rows,
                "explanation": json.loads(r.explanation),
                "incident_key": r.incident_key,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]

    def run(self, now: datetime) -> list[Finding]:
        """`run_asset` for every asset of the inventory."""
        found = []
        for asset in self.assets.list_assets():
            found += self.run_asset(asset.name, now)
        return found

    def run_asset(self, asset: str, now: datetime) -> list[Finding]:
        """Score the asset's readings from where the stream was last scored (by any process) up
        to ``now``; store and report what is found; resolve its anomaly incident once quiet.

        A long gap (the first start on a history, a restart after downtime) is caught up a
        ``grow_every`` at a time, so the baseline grows through it as it would have live instead
        of one young baseline judging days it never grew into.

        Safe to run again and in two processes at once (at-least-once delivery, a hand-over): it
        returns what this call reported, [] when the stream was scored up to ``now`` already (a
        job delivered again), or from where another process took over the asset."""
        # Each window's effects happen once, however often and wherever the asset is run:
        # 1. score the window (reads only);
        # 2. one transaction: move `scored_until` from what this run read to the window's end
        #    (compare-and-set) and store the finding, not yet opened. No match: another process
        #    scored from there first; nothing is stored, this scorer forgets the asset and stops.
        # 3. open the incident from the stored finding, then mark the finding opened.
        # Window and finding commit together, so a window is never marked scored without its
        # finding (mark-then-report loses it in a crash between the two) nor its finding stored
        # twice (report-then-mark stores it again when the mark is lost). The incident cannot join
        # that transaction (the registry commits its own): a crash between 2 and 3 leaves the
        # finding not opened, and the asset's next run, in whichever process, opens it first.
        # Opening is idempotent (one unresolved incident per key; the same detail changes
        # nothing), and a process that lost the compare-and-set never gets to 3, so it cannot
        # reopen an incident the winner has resolved since. Left open: a process that stalls
        # between its 2 and 3 while another opens its finding, scores on and resolves the
        # incident (an hour of quiet readings later) reopens it when it resumes.
        self._open_pending(asset)
        row = self._row(asset)
        if row is not None and row.scored_until is not None and row.scored_until >= now:
            return []
        model = self.model(asset)  # also reads how far the stream was scored
        if model is None:
            return []
        since = self.scored_until.get(asset)  # as the row has it: the compare-and-set's expectation
        start = since or model.baseline_end
        found = []
        while start < now:
            until = min(start + self.grow_every, now)
            finding = self.score_asset(asset, start, until)
            if not self._advance(asset, since, until, finding):
                self.forget(asset)
                break
            if finding is not None:
                self._open_pending(asset)
                found.append(finding)
            else:
                self._clear(asset, now)
            since = start = until
            if self.model(asset) is None:
                break
        return found

    def _advance(self, asset: str, since: datetime | None, until: datetime, finding: Finding | None) -> bool:
        """Mark the asset scored up to ``until`` if the row still says ``since``, and store the
        window's finding with it, in one transaction; False (and nothing stored) when the row has
        moved on: another process scored the window."""
        c = scorer_baselines.c
        with self.db.begin() as conn:
            moved = conn.execute(
                update(scorer_baselines)
                .where(c.asset == asset, c.scored_until.is_not_distinct_from(since))
                .values(scored_until=until)
            ).rowcount
            if moved != 1:
                return False
            if finding is not None:
                self._store(conn, finding)
        self.scored_until[asset] = until
        return True

    def _clear(self, asset: str, now: datetime) -> None:
        """Resolve the asset's anomaly incident once no finding has ended within ``clear_after``."""
        key = f"asset.anomaly:{asset}"
        if self.incidents.active(key) is None:
            return
        with self.db.connect() as conn:
            last = conn.execute(select(func.max(findings.c.end_at)).where(findings.c.asset == asset)).scalar()
        if last is None or now - last >= self.clear_after:
            quiet = f"no anomaly in the readings since {last.isoformat(timespec='minutes')}" if last else "no anomaly"
            self.incidents.resolve(key, reason=quiet, actor="monitoring")
