"""A freshly trained model judged on data from its own distribution raises no drift (issue 16, item 3).

The real path: the fleet simulator writes the demo plant's air-handling units into storage (minute
readings, no faults), the model is trained the way the product trains it (`models.retrain` on
`ModelData.frame`, as `pitstop models retrain` and the demo do), five more minutes arrive, and the
health round runs the drift check through the alert policy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Status
from pitstop.sim.fleet import Simulator, assets_of_database
from pitstop.sim.publish import DatabasePublisher
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY

NAME = "hvac-twin"
START = datetime(2026, 3, 2, tzinfo=UTC)


def simulated_plant(db: Database, tmp_path: Path, days: float, seed: int) -> tuple[Pitstop, FrozenClock, Simulator]:
    end = START + timedelta(days=days)
    clock = FrozenClock(end)
    settings = Settings(data_dir=tmp_path, models={"twins": {NAME: {}}, "schedule": False})
    pitstop = build(settings, clock=clock, db=db)
    inventory.apply(pitstop.db, inventory.read_file(DEMO_INVENTORY), actor="test", now=clock.now())
    hvac = [a for a in assets_of_database(pitstop.assets) if a.type == "hvac"]
    sim = Simulator(hvac, seed=seed)
    publisher = DatabasePublisher(sim, assets=pitstop.assets, readings=pitstop.readings, ingest=pitstop.ingest)
    for batch in sim.chunks(START, end):
        publisher.publish(batch)
    return pitstop, clock, sim


def five_more_minutes(pitstop: Pitstop, clock: FrozenClock, sim: Simulator) -> None:
    before = clock.now()
    clock.advance(timedelta(minutes=5))
    publisher = DatabasePublisher(sim, assets=pitstop.assets, readings=pitstop.readings, ingest=pitstop.ingest)
    publisher.publish(sim.batch(before, clock.now()))


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("days", "share", "seed"),
    [
        (4.0, 0.5, 2),  # the first half, as the demo's champion: was critical (UCWIT PSI 0.70)
        (6.0, 0.5, 7),  # was warn
        (4.0, 1.0, 2),  # all history, as `pitstop models retrain`: was monitor, stays quiet
        pytest.param(
            3.0,
            0.5,
            7,
            marks=pytest.mark.xfail(
                strict=True,
                reason="1.2 days of training: the out-of-fold residuals of a twin that saw one day are wider "
                "than its residuals on the next days; residual UCAF still reads as warn (was critical, PSI 0.86)",
            ),
        ),
    ],
)
def test_a_fresh_model_on_its_own_distribution_raises_no_drift(
    db: Database, tmp_path: Path, days: float, share: float, seed: int
) -> None:
    pitstop, clock, sim = simulated_plant(db, tmp_path, days, seed)
    frame = pitstop.model_data.frame(NAME)
    part = frame.iloc[: int(len(frame) * share)]  # the demo trains its champion on the first half
    result = pitstop.models.retrain(
        NAME, part, trigger="test", excluded=pitstop.model_data.faulty_periods(NAME), params={"n_estimators": 30}
    )
    assert result.promoted
    five_more_minutes(pitstop, clock, sim)

    outcome = pitstop.health.run_round()
    (drift,) = [r for r in outcome.results if r.check == "drift"]
    assert drift.status is Status.HEALTHY, drift.summary
    assert pitstop.incidents.active(f"model.drift:{NAME}") is None
    report = pitstop.models.drift(NAME, pitstop.model_data.frame(NAME, since=clock.now() - timedelta(days=7)))
    assert report.band in ("stable", "monitor"), report.as_dict()
    pitstop.close()
