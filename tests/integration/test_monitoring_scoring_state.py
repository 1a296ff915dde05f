"""Stream-scorer state: baselines persist across scorers, refit only when stale or when sensors change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from pitstop import inventory
from pitstop.app import Pitstop
from pitstop.ml.scoring import StreamScorer, asset_frame
from pitstop.sim import Simulator, assets_of_database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.storage.schema import scorer_baselines

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEMO = Path(__file__).resolve().parents[2] / "src" / "pitstop" / "data" / "demo-inventory.toml"


def _scorer(pitstop: Pitstop, **settings: Any) -> StreamScorer:
    return StreamScorer(
        db=pitstop.db,
        clock=pitstop.clock,
        assets=pitstop.assets,
        readings=pitstop.readings,
        incidents=pitstop.incidents,
        **settings,
    )


def _backfill(pitstop: Pitstop, types: tuple[str, ...], start: datetime, end: datetime) -> None:
    simulator = Simulator([a for a in assets_of_database(pitstop.assets) if a.type in types], seed=2)
    index = pitstop.assets.sensor_index()
    for batch in simulator.chunks(start, end):
        ids = np.array([index[key].id for key in batch.keys], dtype=np.int32)[batch.key]
        pitstop.readings.write(ReadingBatch.of(ids, batch.ts_us, batch.value))


def test_baselines_persist_and_refit_only_when_stale_or_sensors_change(demo_pitstop: Pitstop) -> None:
    _backfill(demo_pitstop, ("hvac",), T0, T0 + timedelta(hours=30))
    first = _scorer(demo_pitstop, baseline=timedelta(hours=24), refit_after=timedelta(days=7))
    model = first.model("ahu-2")
    assert model is not None and model.twins and model.fitted_at is not None
    first.run(T0 + timedelta(hours=30))

    # A new scorer (a restart) reuses the stored baseline and where the stream was scored.
    second = _scorer(demo_pitstop, baseline=timedelta(hours=24), refit_after=timedelta(days=7))
    again = second.model("ahu-2")
    assert again is not None and again.fitted_at == model.fitted_at
    assert second.scored_until["ahu-2"] == T0 + timedelta(hours=30)
    assert again.twins

    # A different baseline length is a different fit.
    other = _scorer(demo_pitstop, baseline=timedelta(hours=12)).model("ahu-2")
    assert other is not None and other.baseline_end < model.baseline_end

    # Stale: refitted on the latest baseline window of scored readings.
    fresh = _scorer(demo_pitstop, baseline=timedelta(hours=24), refit_after=timedelta(days=7))
    demo_pitstop.clock.advance(timedelta(days=8))  # type: ignore[attr-defined]
    refitted = fresh.model("ahu-2")
    assert refitted is not None and refitted.fitted_at != model.fitted_at

    # A new sensor on the asset: the stored baseline no longer applies (refitted once data allows).
    spec = inventory.read_file(DEMO)
    ahu = next(a for a in spec.assets if a.name == "ahu-2")
    ahu.sensors.append(inventory.SensorSpec(name="UCFAN", unit="%", period_s=60))
    inventory.apply(demo_pitstop.db, spec, actor="test", now=demo_pitstop.clock.now())
    changed = _scorer(demo_pitstop, baseline=timedelta(hours=24))
    assert changed.model("ahu-2") is None  # the new sensor has no readings yet: nothing to fit on
    assert "ahu-2" not in changed.scored_until


def test_scores_of_a_restored_baseline_equal_the_fitted_ones(demo_pitstop: Pitstop) -> None:
    _backfill(demo_pitstop, ("hvac",), T0, T0 + timedelta(hours=30))
    fitted = _scorer(demo_pitstop, baseline=timedelta(hours=24)).model("ahu-1")
    restored = _scorer(demo_pitstop, baseline=timedelta(hours=24)).model("ahu-1")
    assert fitted is not None and restored is not None and fitted is not restored
    frame = asset_frame(demo_pitstop.assets, demo_pitstop.readings, "ahu-1", T0 + timedelta(hours=24))
    X = fitted.residuals(frame).to_numpy()
    np.testing.assert_allclose(restored.residuals(frame).to_numpy(), X)
    np.testing.assert_allclose(restored.detector.score(X), fitted.detector.score(X))
    assert restored.threshold.cutoff_ == fitted.threshold.cutoff_
    assert fitted.twins and restored.twins
    assert set(restored.twins) == set(fitted.twins) == {"", "coil"}
    for name, twin in fitted.twins.items():
        np.testing.assert_allclose(restored.twins[name].residuals(frame).to_numpy(), twin.residuals(frame).to_numpy())


def test_an_anomaly_incident_resolves_after_an_hour_without_findings(demo_pitstop: Pitstop) -> None:
    """Issue 16: `asset.anomaly:<asset>` never resolved, so a later fault on the same asset could not
    open an incident of its own (bench/plant.py: 6-8 of 10 faults per seed were lost that way). It
    resolves once no finding has ended within the scorer's `clear_after` (1 h)."""
    from pitstop.ml.explanations import Contribution
    from pitstop.ml.scoring import Finding

    _backfill(demo_pitstop, ("hvac",), T0, T0 + timedelta(hours=30))
    scorer = _scorer(demo_pitstop, baseline=timedelta(hours=24))
    scorer.run(T0 + timedelta(hours=30))
    start, end = T0 + timedelta(hours=29), T0 + timedelta(hours=29, minutes=30)
    scorer.report(Finding("ahu-1", start, end, 12, 60, 9.0, 3.0, [Contribution("UCWF", 1.0)]))
    key = "asset.anomaly:ahu-1"
    assert demo_pitstop.incidents.active(key) is not None
    scorer.run(T0 + timedelta(hours=30, minutes=10))  # 40 minutes after the finding: still open
    assert demo_pitstop.incidents.active(key) is not None
    scorer.run(T0 + timedelta(hours=31))
    assert demo_pitstop.incidents.active(key) is None
    (incident,) = demo_pitstop.incidents.list(area="asset")
    assert incident.key == key and incident.state.value == "resolved"


def test_an_asset_is_learning_until_its_baseline_is_complete(demo_pitstop: Pitstop) -> None:
    """Issue 16, item 1: a warm-up state that says "learning" instead of alarming. Before a
    day of readings the scorer raises nothing and says when scoring starts; then it scores."""
    scorer = _scorer(demo_pitstop, baseline=timedelta(hours=24))
    assert scorer.status("ahu-1").state == "waiting"

    _backfill(demo_pitstop, ("hvac",), T0, T0 + timedelta(hours=12))
    learning = scorer.status("ahu-1")
    assert learning.state == "learning" and learning.baseline_end == T0 + timedelta(hours=24)
    assert "learning" in learning.describe() and learning.as_dict()["baseline_end"] == learning.baseline_end.isoformat()
    assert scorer.run(T0 + timedelta(hours=12)) == []
    assert demo_pitstop.incidents.list() == []
    with demo_pitstop.db.connect() as conn:  # asking fits nothing
        assert conn.execute(select(func.count()).select_from(scorer_baselines)).scalar_one() == 0

    _backfill(demo_pitstop, ("hvac",), T0 + timedelta(hours=12), T0 + timedelta(hours=26))
    scorer.run(T0 + timedelta(hours=26))
    scoring = scorer.status("ahu-1")
    assert scoring.state == "scoring" and scoring.cutoff is not None and scoring.cutoff > 0
    assert scoring.baseline_start == T0 and scoring.baseline_end is not None
    assert T0 + timedelta(hours=23) < scoring.baseline_end < T0 + timedelta(hours=24)
    # a restarted scorer reads the same from the stored baseline, still without fitting
    restarted = _scorer(demo_pitstop, baseline=timedelta(hours=24)).status("ahu-1")
    assert restarted.state == "scoring" and restarted.baseline_end == scoring.baseline_end


def test_the_baseline_grows_each_day_then_keeps_its_first_days_and_follows_the_latest(
    demo_pitstop: Pitstop,
) -> None:
    """Issue 16, item 1: a baseline fitted on one day does not hold a week's weather and set
    points, and one fixed week does not hold a month's. It is refitted each day of scored
    readings on everything so far but the findings' evidence until it spans `grow_for`, then
    each day on the first and the latest `grow_for` of them (the evidence still left out)."""
    from pitstop.ml.explanations import Contribution
    from pitstop.ml.scoring import Finding

    def scorer_() -> StreamScorer:
        return _scorer(demo_pitstop, baseline=timedelta(hours=24), grow_for=timedelta(hours=36))

    scorer = scorer_()
    _backfill(demo_pitstop, ("hvac",), T0, T0 + timedelta(hours=30))
    scorer.run(T0 + timedelta(hours=30))
    first = scorer.models["ahu-2"]
    assert first.baseline_start == T0 and first.baseline_end < T0 + timedelta(hours=24)
    status = scorer.status("ahu-2")
    assert status.grows_until == T0 + timedelta(hours=36) and "grows with each day" in status.describe()

    flagged = (T0 + timedelta(hours=26), T0 + timedelta(hours=27))
    scorer.report(Finding("ahu-2", *flagged, 40, 60, 9.0, 3.0, [Contribution("UCWF", 1.0)], "twin residuals"))
    _backfill(demo_pitstop, ("hvac",), T0 + timedelta(hours=30), T0 + timedelta(hours=100))
    scorer.run(T0 + timedelta(hours=100))  # caught up a day at a time: refitted at 54 h and 78 h
    follows = scorer.model("ahu-2")
    assert follows is not None and follows is not first
    assert follows.baseline_start == T0 and T0 + timedelta(hours=77) < follows.baseline_end <= T0 + timedelta(hours=78)
    kept = scorer._grown("ahu-2", T0).index  # what the next refit takes, scored up to 100 h
    evidence = (kept >= flagged[0] - scorer.window) & (kept <= flagged[1])
    assert not evidence.any()
    # the first 36 h (less the evidence) and the latest 36 h, nothing in between
    hours = (kept - pd.Timestamp(T0)) / pd.Timedelta(hours=1)
    assert hours.min() < 0.1 and hours.max() > 99.9
    assert not ((hours >= 36) & (hours < 64)).any() and ((hours >= 64) & (hours < 65)).any()
    status = scorer.status("ahu-2")
    assert status.grows_until is None and "first readings and its latest" in status.describe()
    restarted = scorer_().model("ahu-2")
    assert restarted is not None and restarted.baseline_end == follows.baseline_end


def test_a_baseline_does_not_grow_on_what_was_flagged(demo_pitstop: Pitstop) -> None:
    """When everything scored since the baseline was flagged, the growth has nothing normal to
    add: the baseline stays as it was (not refitted on less), and is tried again a day later."""
    from pitstop.ml.explanations import Contribution
    from pitstop.ml.scoring import Finding

    scorer = _scorer(demo_pitstop, baseline=timedelta(hours=24))
    _backfill(demo_pitstop, ("hvac",), T0, T0 + timedelta(hours=50))
    scorer.run(T0 + timedelta(hours=24, minutes=30))
    first = scorer.models["ahu-2"]
    everything = (first.baseline_end - timedelta(hours=12), T0 + timedelta(hours=50))
    scorer.report(Finding("ahu-2", *everything, 1500, 1560, 9.0, 3.0, [Contribution("UCWF", 1.0)], "twin residuals"))
    scorer.run(T0 + timedelta(hours=50))
    assert scorer.model("ahu-2") is not None
    kept = scorer.models["ahu-2"]
    assert kept.baseline_end == first.baseline_end  # not refitted on the 12 h left
    # tried once a day had been scored (the run catches up a day at a time), and not on every run
    assert scorer.grow_tried["ahu-2"] == T0 + timedelta(hours=48, minutes=30)
    assert scorer.model("ahu-2") is kept
