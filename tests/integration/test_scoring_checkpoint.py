"""The stream scorer's checkpoint in the database: processes that share only the database take an
asset over from each other without refitting or reporting again, and a window is reported once
however often, and by however many processes, the asset is run (at-least-once delivery)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import Column, Float, MetaData, String, Table, Text, inspect, select, text

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import to_epoch_us
from pitstop.ml.scoring import Finding, StreamScorer, sensors_key
from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.storage.schema import UtcDateTime, findings, scorer_baselines
from pitstop.testing.clock import FrozenClock

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ASSET = "press-1"
KEY = f"asset.anomaly:{ASSET}"


def hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


@pytest.fixture
def plant(pitstop: Pitstop) -> Pitstop:
    """One asset scored on its own signals (no loop twins: fits in well under a second)."""
    spec = inventory.InventorySpec.model_validate(
        {
            "sites": [{"name": "works"}],
            "assets": [
                {
                    "name": ASSET,
                    "site": "works",
                    "type": "press",
                    "sensors": [
                        {"name": "force", "unit": "kN", "min": 0, "max": 100, "period_s": 60},
                        {"name": "oil_temp", "unit": "degC", "min": 0, "max": 100, "period_s": 60},
                    ],
                }
            ],
        }
    )
    inventory.apply(pitstop.db, spec, actor="test", now=pitstop.clock.now())
    return pitstop


@pytest.fixture
def other(plant: Pitstop, clock: FrozenClock, tmp_path: Path) -> Iterator[Pitstop]:
    """A second process: its own engine on the same database, its own data directory."""
    url = plant.db.url.render_as_string(hide_password=False)
    second = build(Settings(data_dir=tmp_path / "other-machine"), clock=clock, db=Database(url))
    yield second
    second.close()


def write(p: Pitstop, start_h: float, end_h: float, faults: tuple[tuple[float, float], ...] = ()) -> None:
    """A minute of readings per sensor from ``start_h`` to ``end_h`` (hours after T0): a daily
    cycle and noise, the press force 15 kN up in each of ``faults`` (from, to in hours)."""
    index = p.assets.sensor_index()
    ts = np.arange(to_epoch_us(hours(start_h)), to_epoch_us(hours(end_h)), 60_000_000, dtype=np.int64)
    h = (ts - to_epoch_us(T0)) / 3.6e9
    rng = np.random.default_rng(int(start_h * 100))
    force = 50 + 2 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 0.5, len(ts))
    for lo, hi in faults:
        force[(h >= lo) & (h < hi)] += 15
    oil = 40 + rng.normal(0, 0.5, len(ts))
    ids = np.r_[np.full(len(ts), index[(ASSET, "force")].id), np.full(len(ts), index[(ASSET, "oil_temp")].id)]
    p.readings.write(ReadingBatch.of(ids, np.r_[ts, ts], np.r_[force, oil]))


def scorer(p: Pitstop, cls: type[StreamScorer] = StreamScorer, **settings: Any) -> StreamScorer:
    return cls(
        db=p.db,
        clock=p.clock,
        assets=p.assets,
        readings=p.readings,
        incidents=p.incidents,
        baseline=timedelta(hours=24),
        **settings,
    )


def checkpoint(p: Pitstop) -> tuple[int, datetime | None]:
    """The stored (version, scored_until) of the asset."""
    with p.db.connect() as conn:
        row = conn.execute(
            select(scorer_baselines.c.version, scorer_baselines.c.scored_until).where(scorer_baselines.c.asset == ASSET)
        ).one()
    return row.version, row.scored_until


def stored_findings(p: Pitstop) -> list[tuple[datetime, datetime, str]]:
    with p.db.connect() as conn:
        rows = conn.execute(
            select(findings.c.start_at, findings.c.end_at, findings.c.incident_key).order_by(findings.c.start_at)
        ).all()
    return [(r.start_at, r.end_at, r.incident_key) for r in rows]


def timeline(p: Pitstop) -> list[list[str]]:
    """Per incident of the asset, oldest first, the actions on its timeline."""
    incidents = sorted((i for i in p.incidents.list() if i.key == KEY), key=lambda i: i.id)
    return [[e.action for e in p.incidents.timeline(i.id)] for i in incidents]


def test_another_process_continues_from_the_checkpoint_without_refitting_or_reporting_again(
    plant: Pitstop, other: Pitstop
) -> None:
    write(plant, 0, 30, faults=((26, 27),))
    first = scorer(plant)
    (found,) = first.run_asset(ASSET, hours(30))
    assert hours(26) <= found.start < found.end <= hours(27.25)
    fitted = first.models[ASSET]
    assert checkpoint(plant) == (1, hours(30))

    # The other machine: nothing on its disk, everything from the row.
    second = scorer(other)
    assert second.run_asset(ASSET, hours(30)) == []  # scored already: not reported again
    model = second.model(ASSET)
    assert model is not None and model is not fitted
    assert (model.version, model.fitted_at, model.baseline_end) == (1, fitted.fitted_at, fitted.baseline_end)
    assert model.threshold.cutoff_ == fitted.threshold.cutoff_
    assert second.scored_until[ASSET] == hours(30)

    write(plant, 30, 33, faults=((31, 32),))
    (later,) = second.run_asset(ASSET, hours(33))
    assert hours(31) <= later.start and later.end < hours(33)
    assert checkpoint(plant) == (1, hours(33))  # continued where the first stopped, same baseline
    assert [(s, e) for s, e, _ in stored_findings(plant)] == [(found.start, found.end), (later.start, later.end)]
    assert all(key == KEY for _, _, key in stored_findings(plant))
    assert timeline(plant) == [["opened", "updated"]]  # one incident, told of the second finding


def test_running_an_asset_again_for_the_same_time_does_nothing(plant: Pitstop, other: Pitstop) -> None:
    write(plant, 0, 30, faults=((26, 27),))
    first = scorer(plant)
    assert len(first.run_asset(ASSET, hours(30))) == 1
    before = (checkpoint(plant), stored_findings(plant), timeline(plant))

    # Redelivered: to the same scorer, to a restarted one, to another process; or an older job.
    assert first.run_asset(ASSET, hours(30)) == []
    assert scorer(plant).run_asset(ASSET, hours(30)) == []
    assert scorer(other).run_asset(ASSET, hours(30)) == []
    assert scorer(other).run_asset(ASSET, hours(28)) == []
    assert (checkpoint(plant), stored_findings(plant), timeline(plant)) == before
    assert checkpoint(plant)[1] == hours(30)  # never moved back


@dataclass(kw_only=True)
class Overtaken(StreamScorer):
    """A scorer that another process overtakes once: after it has read the checkpoint and before
    it commits its window, the rival runs the asset up to each of ``rival_runs``."""

    rival: StreamScorer | None = None
    rival_runs: tuple[datetime, ...] = ()

    def score_asset(self, asset: str, since: datetime | None = None, until: datetime | None = None) -> Finding | None:
        rival, self.rival = self.rival, None
        for now in self.rival_runs if rival is not None else ():
            rival.run_asset(asset, now)
        return super().score_asset(asset, since, until)


def test_two_processes_racing_on_an_asset_report_its_finding_once(plant: Pitstop, other: Pitstop) -> None:
    write(plant, 0, 30, faults=((26, 27),))
    winner = scorer(other)
    loser = scorer(plant, Overtaken, rival=winner, rival_runs=(hours(30),))
    assert loser.run_asset(ASSET, hours(30)) == []  # overtaken: its compare-and-set found the row moved
    assert ASSET not in loser.models and ASSET not in loser.scored_until  # it let go of the asset
    assert checkpoint(plant) == (1, hours(30))
    ((start, end, key),) = stored_findings(plant)
    assert key == KEY and hours(26) <= start < end < hours(28)
    assert timeline(plant) == [["opened"]]  # the same finding did not update it a second time


def test_a_process_overtaken_past_the_resolution_does_not_reopen_the_incident(plant: Pitstop, other: Pitstop) -> None:
    """The rival reports the finding, scores on and resolves the incident an hour of quiet later;
    the process it overtook must not open the incident again for the window it scored."""
    write(plant, 0, 30, faults=((26, 27),))
    winner = scorer(other)
    loser = scorer(plant, Overtaken, rival=winner, rival_runs=(hours(30), hours(30.5)))
    assert loser.run_asset(ASSET, hours(30)) == []
    assert checkpoint(plant) == (1, hours(30.5))
    assert len(stored_findings(plant)) == 1
    assert timeline(plant) == [["opened", "resolved"]]
    assert plant.incidents.active(KEY) is None
    # and the overtaken one, run again, goes on from the rival's checkpoint
    write(plant, 30, 31)
    assert loser.run_asset(ASSET, hours(31)) == []
    assert checkpoint(plant) == (1, hours(31)) and timeline(plant) == [["opened", "resolved"]]


def test_a_finding_stored_but_not_yet_opened_is_opened_by_the_next_run(plant: Pitstop, other: Pitstop) -> None:
    """A process that stops between storing a window's finding and opening its incident: the
    asset's next run, in any process, opens it, once."""
    write(plant, 0, 30, faults=((26, 27),))
    first = scorer(plant)
    assert first.model(ASSET) is not None
    finding = first.score_asset(ASSET, first.models[ASSET].baseline_end, hours(30))
    assert finding is not None
    with plant.db.begin() as conn:  # what `run_asset` commits before it opens the incident
        conn.execute(scorer_baselines.update().where(scorer_baselines.c.asset == ASSET).values(scored_until=hours(30)))
        first._store(conn, finding)
    assert stored_findings(plant)[0][2] == "" and timeline(plant) == []

    assert scorer(other).run_asset(ASSET, hours(30)) == []  # redelivered elsewhere: nothing to score
    assert stored_findings(plant) == [(finding.start, finding.end, KEY)]
    assert timeline(plant) == [["opened"]]
    assert scorer(plant).run_asset(ASSET, hours(30)) == [] and timeline(plant) == [["opened"]]


def test_a_refit_in_one_process_makes_the_other_reload(plant: Pitstop, other: Pitstop, clock: FrozenClock) -> None:
    write(plant, 0, 30)
    refitting = scorer(plant, refit_after=timedelta(days=1))
    following = scorer(other)
    assert refitting.run_asset(ASSET, hours(30)) == []
    held = following.model(ASSET)
    assert held is not None and held.version == 1

    clock.advance(timedelta(days=2))
    refitted = refitting.model(ASSET)  # stale: refitted on the latest day scored
    assert refitted is not None and refitted.version == 2 and refitted.baseline_end > held.baseline_end
    assert checkpoint(plant) == (2, hours(30))

    reloaded = following.model(ASSET)
    assert reloaded is not None and reloaded is not held
    assert (reloaded.version, reloaded.baseline_end, reloaded.fitted_at) == (2, refitted.baseline_end, clock.now())
    assert reloaded.threshold.cutoff_ == refitted.threshold.cutoff_
    assert following.model(ASSET) is reloaded  # the same version: the one in memory
    write(plant, 30, 31)
    assert following.run_asset(ASSET, hours(31)) == []
    assert checkpoint(plant) == (2, hours(31))


def test_two_processes_fitting_the_first_baseline_at_once_keep_one(plant: Pitstop, other: Pitstop) -> None:
    """Both find no row and fit; the second to store loses the insert and takes the stored one."""
    write(plant, 0, 30)

    @dataclass(kw_only=True)
    class FitsLate(StreamScorer):
        rival: StreamScorer | None = None

        def _fit(self, asset: str, reference: Any) -> Any:
            rival, self.rival = self.rival, None
            if rival is not None:
                rival.model(asset)
            return super()._fit(asset, reference)

    first = scorer(other)
    late = scorer(plant, FitsLate, rival=first)
    model = late.model(ASSET)
    assert model is not None and model.version == 1
    assert model.fitted_at == first.models[ASSET].fitted_at and checkpoint(plant) == (1, None)


# `scorer_baselines` as revisions 0012 to 0018 made it
OLD_ROWS = Table(
    "scorer_baselines",
    MetaData(),
    Column("asset", String(200), primary_key=True),
    Column("sensors", String(64)),
    Column("window_s", Float),
    Column("fit_start", UtcDateTime),
    Column("fit_end", UtcDateTime),
    Column("fitted_at", UtcDateTime),
    Column("path", Text),
    Column("scored_until", UtcDateTime),
)


def test_an_upgrade_from_0018_refits_an_old_row_and_keeps_its_checkpoint(plant: Pitstop, tmp_path: Path) -> None:
    write(plant, 0, 30, faults=((27, 28),))
    db = plant.db
    with db.connect() as conn:
        command.downgrade(db._alembic_config(conn), "0018")
        conn.commit()
    assert "0019" not in db.current_revisions()
    # A row as pitstop wrote it before: the baseline in a file under <data_dir>/scoring/.
    with db.begin() as conn:
        conn.execute(
            OLD_ROWS.insert().values(
                asset=ASSET,
                sensors=sensors_key(plant.assets, ASSET),
                window_s=86_400.0,
                fit_start=T0,
                fit_end=hours(23.98),
                fitted_at=T0,
                path="0123456789abcdef-20260301T235900.json",
                scored_until=hours(26),
            )
        )
    db.upgrade()
    assert db.is_current()
    with db.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("scorer_baselines")}
        row = conn.execute(select(scorer_baselines.c.state, scorer_baselines.c.version)).one()
    assert {"state", "version"} <= columns and "path" not in columns
    assert row.state is None and row.version == 0
    assert checkpoint(plant) == (0, hours(26))

    s = scorer(plant)
    model = s.model(ASSET)  # no state: refitted, as a baseline stored by an older version
    assert model is not None and model.version == 1 and model.fitted_at == plant.clock.now()
    assert checkpoint(plant) == (1, hours(26))  # how far the stream was scored stays
    (found,) = s.run_asset(ASSET, hours(30))  # from there on
    assert hours(27) <= found.start and found.end < hours(28.25)
    assert checkpoint(plant) == (1, hours(30))

    # and back: an older pitstop finds no file at an empty path (it refits) and keeps the checkpoint
    with db.connect() as conn:
        command.downgrade(db._alembic_config(conn), "0018")
        conn.commit()
    with db.connect() as conn:
        assert conn.execute(text("SELECT path, scored_until IS NOT NULL FROM scorer_baselines")).one() == ("", 1)
    db.upgrade()
    assert db.is_current()


def test_a_stored_baseline_holds_detector_threshold_and_twins_in_the_row(demo_pitstop: Pitstop) -> None:
    """An HVAC unit's baseline (with its loop twins) comes back from the row alone."""
    from pitstop.sim import Simulator, assets_of_database

    simulator = Simulator([a for a in assets_of_database(demo_pitstop.assets) if a.name == "ahu-1"], seed=2)
    index = demo_pitstop.assets.sensor_index()
    for batch in simulator.chunks(T0, hours(25)):
        ids = np.array([index[key].id for key in batch.keys], dtype=np.int32)[batch.key]
        demo_pitstop.readings.write(ReadingBatch.of(ids, batch.ts_us, batch.value))
    fitted = scorer(demo_pitstop).model("ahu-1")
    restored = scorer(demo_pitstop).model("ahu-1")
    assert fitted is not None and restored is not None and restored is not fitted
    assert set(restored.twins) == set(fitted.twins) == {"", "coil"}
    assert restored.threshold.cutoff_ == fitted.threshold.cutoff_
    with demo_pitstop.db.connect() as conn:
        size = conn.execute(select(scorer_baselines.c.state).where(scorer_baselines.c.asset == "ahu-1")).scalar_one()
    assert 0 < len(size) < 5_000_000
    assert not (Path(demo_pitstop.settings.data_dir) / "scoring").exists()  # nothing on disk
