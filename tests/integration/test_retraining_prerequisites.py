"""The guide's retraining prerequisites, with real training on small simulated data.

Readings of the demo plant's two air-handling units (the simulator's coil, one row every 10
minutes) are written to storage; the clock is a FrozenClock moved by the tests. Covered: too few
samples and bad inputs (missing, flat, out of range) train nothing and are recorded with their
numbers; an absolute floor rejects a candidate that beats the champion; `rebaseline` re-takes the
drift reference; a `drift_exclude` input drifts without triggering; an equipment change triggers
retraining without the asset's old readings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from pitstop.api import create_app
from pitstop.app import Pitstop
from pitstop.config import Settings
from pitstop.core.types import Role
from pitstop.errors import ConfigError, InvalidInput, NotFound
from pitstop.ml.registry.lifecycle import PrerequisitesFailed
from pitstop.ml.twins import HVAC_INPUTS, HVAC_OUTPUTS
from pitstop.sim.hvac import HvacModel
from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.storage.schema import readings
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY, auth
from tests.integration.test_models_watch import plant

NAME = "hvac-twin"
START = datetime(2026, 3, 2, tzinfo=UTC)
STEP_S = 600.0
UNITS = ((3, "ahu-1"), (4, "ahu-2"))


def coil(start: datetime, rows: int, *, seed: int, asset: str = "ahu-1") -> pd.DataFrame:
    """Simulated readings of one coil every 10 minutes (signal plus its sensor noise)."""
    t = start.timestamp() + np.arange(rows, dtype=np.float64) * STEP_S
    signals = HvacModel(seed, asset, "north-plant", ()).signals(t, np.arange(rows, dtype=np.int64))
    rng = np.random.default_rng(seed)
    columns = {name: value + rng.normal(0.0, 1.0, rows) * sd for name, (value, sd) in signals.items()}
    return pd.DataFrame(columns, index=pd.to_datetime(t, unit="s", utc=True))[list(HVAC_INPUTS + HVAC_OUTPUTS)]


def store(pitstop: Pitstop, frame: pd.DataFrame, asset: str) -> None:
    """Write a frame's columns as the asset's readings; a missing value (NaN) is a reading not sent."""
    ids = {s.name: s.id for s in pitstop.assets.sensors(asset)}
    for column in frame.columns:
        values = frame[column].dropna()
        ts = pd.DatetimeIndex(values.index).as_unit("us").asi8
        pitstop.readings.write(ReadingBatch.of(np.full(len(ts), ids[column]), ts, values.to_numpy()))


def store_units(pitstop: Pitstop, start: datetime, rows: int, **change: Any) -> dict[str, pd.DataFrame]:
    """`rows` rows of each unit from `start`; `change[asset]` edits that unit's frame before it is stored."""
    frames = {}
    for seed, asset in UNITS:
        frame = coil(start, rows, seed=seed, asset=asset)
        if asset in change:
            frame = change[asset](frame)
        store(pitstop, frame, asset)
        frames[asset] = frame
    return frames


def configured(**model: Any) -> dict[str, Any]:
    """Models settings with one configured twin: few trees, no health checks, the given settings."""
    retrain = {"trees": 20, **model.pop("retrain", {})}
    return {"twins": {NAME: {"monitor": False, "retrain": retrain, **model}}}


def champion(pitstop: Pitstop, rows: int = 600) -> None:
    """A first version (v1, champion) trained directly on the earliest stored rows, no gates."""
    frame = pitstop.model_data.frame(NAME).iloc[:rows]
    pitstop.models.retrain(NAME, frame, trigger="initial", params={"n_estimators": 5}, rules=[])


def test_too_few_samples_train_nothing_and_the_record_says_how_many(
    db: Database, clock: FrozenClock, tmp_path: Any
) -> None:
    pitstop = plant(db, clock, tmp_path, configured())  # min_samples: the guide's 10,000 by default
    assert pitstop.model_watch.config(NAME).prerequisites.min_samples == 10_000
    store_units(pitstop, START, 4_500)
    clock.set(START + timedelta(days=32))
    champion(pitstop)
    registry = pitstop.models.registry

    with pytest.raises(PrerequisitesFailed, match="9,000 samples < 10,000") as failed:
        pitstop.model_watch.retrain(NAME, trigger="manual", actor="tester")
    assert "champion v1 stays" in str(failed.value)
    assert [v.version for v in registry.versions(NAME)] == [1]  # no candidate was trained
    assert registry.alias(NAME, "champion") == 1 and registry.alias(NAME, "challenger") is None
    record = registry.decisions(NAME)[-1]
    assert record["kind"] == "prerequisites" and record["candidate"] is None and record["champion"] == 1
    assert not record["passed"] and record["trigger"] == "manual"
    assert record["failed_rules"] == ["min_samples: 9,000 samples < 10,000"]
    samples = next(v for v in record["verdicts"] if v["rule"]["rule"] == "min_samples")
    assert (samples["value"], samples["limit"], samples["passed"]) == (9000.0, 10000.0, False)
    # the data-quality prerequisites were measured too, and passed
    assert {v["rule"]["rule"]: v["passed"] for v in record["verdicts"]} == {
        "min_samples": False,
        "missing": True,
        "flat": True,
        "out_of_range": True,
    }
    # the decision's listeners ran: the maintenance log has the model_training entry with the numbers
    entry = pitstop.maintenance.log.entries(kind="model_training")[-1]
    assert "9,000 samples < 10,000" in entry.issues and entry.result == "failed"
    assert entry.ref == f"model-decision:{failed.value.decision_id}"

    # With enough samples allowed, the same data trains a candidate whose record lists the prerequisites.
    result = pitstop.model_watch.retrain(NAME, trigger="manual", actor="tester", min_samples=9_000)
    assert result.version.version == 2
    passed = registry.decisions(NAME)[-1]
    assert passed["kind"] == "gates" and passed["candidate"] == 2
    assert passed["prerequisites"][0]["note"] == "9,000 samples >= 9,000"
    pitstop.close()


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(UCWF=0.3)


def _mostly_missing(frame: pd.DataFrame) -> pd.DataFrame:
    # UCWIT reported in 1 row of 3 (the other sensors in every row)
    return frame.assign(UCWIT=frame["UCWIT"].where(np.arange(len(frame)) % 3 == 0))


def _out_of_range(frame: pd.DataFrame) -> pd.DataFrame:
    # humidity above 100 % in a tenth of the rows: the inventory's range is 0..100
    return frame.assign(UCAIH=frame["UCAIH"].where(np.arange(len(frame)) % 10 != 0, 120.0))


@pytest.mark.parametrize(
    ("change", "rule", "note"),
    [
        (_flat, "flat", "flat: ahu-1/UCWF: 100.0% of 1,000 values at 0.3 (zero variance) (limit 90.0%)"),
        (_mostly_missing, "missing", "missing: ahu-1/UCWIT: 66.6% of 1,000 rows missing (limit 20.0%)"),
        (_out_of_range, "out_of_range", "out_of_range: ahu-1/UCAIH: 10.0% of 1,000 values outside [0, 100]"),
    ],
)
def test_bad_inputs_of_one_asset_fail_data_quality_before_training(
    db: Database, clock: FrozenClock, tmp_path: Any, change: Any, rule: str, note: str
) -> None:
    pitstop = plant(db, clock, tmp_path, configured(prerequisites={"min_samples": 500}))
    store_units(pitstop, START, 1_000, **{"ahu-1": change})
    clock.set(START + timedelta(days=8))
    with pytest.raises(PrerequisitesFailed) as failed:
        pitstop.model_watch.retrain(NAME, trigger="manual", actor="tester")
    assert "no champion" in str(failed.value)
    assert pitstop.models.registry.versions(NAME) == []
    record = pitstop.models.registry.decisions(NAME)[-1]
    assert record["kind"] == "prerequisites" and record["candidate"] is None
    failing = [f for f in record["failed_rules"] if not f.startswith("min_samples")]
    assert len(failing) == 1 and failing[0].startswith(note), record["failed_rules"]
    verdict = next(v for v in record["verdicts"] if v["rule"]["rule"] == rule)
    assert not verdict["passed"] and verdict["value"] > verdict["limit"]
    assert "ahu-2" not in verdict["note"]  # the other unit is fine

    # A looser limit lets the same data through (flat: 1.0 allows a constant input).
    loose = {"flat": "max_flat_share", "missing": "max_missing_share", "out_of_range": "max_out_of_range_share"}
    lenient = plant(db, clock, tmp_path, configured(prerequisites={"min_samples": 300, loose[rule]: 1.0}))
    result = lenient.model_watch.retrain(NAME, trigger="manual", actor="tester")
    assert result.version.version == 1
    rows = 2_000 if rule != "missing" else 1_000 + 334  # training used the complete rows only
    assert result.version.envelope["training"]["rows"] + result.decision.holdout_rows == rows
    lenient.close()
    pitstop.close()


def test_an_absolute_floor_rejects_a_candidate_that_beats_the_champion(
    db: Database, clock: FrozenClock, tmp_path: Any
) -> None:
    pitstop = plant(db, clock, tmp_path, configured(floors={"r2": 0.99}, prerequisites={"min_samples": 1_000}))
    store_units(pitstop, START, 1_500)
    clock.set(START + timedelta(days=11))
    # a weak champion: 1 tree on the first day
    pitstop.models.retrain(NAME, pitstop.model_data.frame(NAME).iloc[:300], params={"n_estimators": 1}, rules=[])
    clock.advance(timedelta(hours=1))

    result = pitstop.model_watch.retrain(NAME, trigger="manual", actor="tester")
    decision = result.decision
    mine, theirs = decision.candidate_metrics, decision.champion_metrics
    assert theirs is not None and mine["r2"] > theirs["r2"] and mine["mae"] < theirs["mae"]  # it beats the champion
    assert mine["r2"] < 0.99
    assert decision.failed_rules == ["floor(metric=r2,value=0.99)"]
    assert not result.promoted and pitstop.models.registry.alias(NAME, "champion") == 1
    floor = next(v for v in decision.verdicts if v.rule["rule"] == "floor")
    assert floor.limit == 0.99 and floor.value == mine["r2"] and "absolute floor" in floor.note
    assert pitstop.models.registry.decisions(NAME)[-1]["failed_rules"] == ["floor(metric=r2,value=0.99)"]
    pitstop.close()


def test_rebaseline_retakes_the_reference_and_keeps_the_old_one(
    db: Database, clock: FrozenClock, tmp_path: Any
) -> None:
    pitstop = plant(db, clock, tmp_path, configured(), health={"default_checks": False})
    store_units(pitstop, datetime(2026, 1, 5, tzinfo=UTC), 1_000)
    clock.set(datetime(2026, 1, 12, tzinfo=UTC))
    pitstop.models.retrain(NAME, pitstop.model_data.frame(NAME), params={"n_estimators": 10}, rules=[])
    summer = datetime(2026, 6, 1, tzinfo=UTC)
    store_units(pitstop, summer, 1_008)  # 7 days
    clock.set(summer + timedelta(days=7))
    registry, watch = pitstop.models.registry, pitstop.model_watch
    stored_profile = registry._profile(NAME, 1).as_dict()

    _, before = watch.drift(NAME)
    assert before.max_psi > 1.0 and before.input_band == "critical"  # summer against the winter reference

    with pytest.raises(InvalidInput, match="reason"):
        watch.rebaseline(NAME, actor="tester", reason=" ")
    with pytest.raises(InvalidInput, match="at least 100"):
        watch.rebaseline(NAME, actor="tester", reason="too short", days=0.2)
    with pytest.raises(InvalidInput, match="not before"):
        watch.rebaseline(NAME, actor="tester", reason="x", start=summer, end=summer)
    row = watch.rebaseline(NAME, actor="tester", reason="summer operation is normal")
    assert row["version"] == 1 and row["rows"] == 2 * 1_008 and row["actor"] == "tester"
    assert row["window_end"] == clock.now().isoformat()
    assert row["window_start"] == (clock.now() - timedelta(days=7)).isoformat()  # models.drift_window_days

    _, after = watch.drift(NAME)
    assert after.max_psi < 0.05 and after.input_band in ("stable", "monitor"), after.as_dict()

    # the old reference stays: the version's own profile is untouched, the rebaseline is a row
    assert registry._profile(NAME, 1).as_dict() == stored_profile
    assert [(r["version"], r["reason"]) for r in registry.references(NAME)] == [(1, "summer operation is normal")]
    entry = pitstop.maintenance.log.entries(kind="note")[-1]
    assert entry.actor == "tester" and "drift reference re-taken" in entry.summary
    assert entry.ref == f"model-reference:{row['id']}"

    # A later rebaseline on the winter readings brings the winter reference (and the drift) back.
    watch.rebaseline(
        NAME,
        actor="tester",
        reason="back to winter",
        start=datetime(2026, 1, 5, tzinfo=UTC),
        end=datetime(2026, 1, 12, tzinfo=UTC),
    )
    _, again = watch.drift(NAME)
    assert again.max_psi > 1.0 and len(registry.references(NAME)) == 2
    pitstop.close()


def stationary(start: datetime, rows: int, *, seed: int, ambt_shift: float = 0.0) -> pd.DataFrame:
    """Inputs from fixed distributions, outputs a fixed function of them plus noise; `ambt_shift`
    moves AMBT (a warmer season) within the range the model learned, the relation unchanged."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 1.0, (rows, len(HVAC_INPUTS)))
    X[:, HVAC_INPUTS.index("AMBT")] += ambt_shift
    y = np.column_stack([X[:, 0] + 0.5 * X[:, 1], X[:, 2] - X[:, 3], 2.0 * X[:, 4] + X[:, 5]])
    y = y + rng.normal(0.0, 0.3, y.shape)
    # into the sensors' ranges (the inventory's min/max): degrees, %, m3/h
    X += np.array([10.0, 20.0, 5.0, 50.0, 10.0, 20.0])
    y += np.array([15.0, 20.0, 5000.0])
    index = pd.date_range(start, periods=rows, freq="10min", tz="UTC")
    return pd.DataFrame(np.column_stack([X, y]), index=index, columns=list(HVAC_INPUTS + HVAC_OUTPUTS))


def test_an_excluded_input_drifts_without_triggering(db: Database, clock: FrozenClock, tmp_path: Any) -> None:
    models = configured(drift_exclude=["AMBT"], retrain={"on_drift": "warn"})
    pitstop = plant(db, clock, tmp_path, models, health={"default_checks": False})
    for seed, asset in UNITS:
        store(pitstop, stationary(START, 1_000, seed=seed), asset)
    clock.set(START + timedelta(days=7))
    pitstop.models.retrain(NAME, pitstop.model_data.frame(NAME), params={"n_estimators": 20}, rules=[])
    later = START + timedelta(days=10)
    for seed, asset in UNITS:
        store(pitstop, stationary(later, 1_000, seed=seed + 10, ambt_shift=1.0), asset)
    clock.set(later + timedelta(days=7))

    watch = pitstop.model_watch
    _, report = watch.drift(NAME)
    ambt = next(f for f in report.features if f.feature == "AMBT")
    assert ambt.band == "critical" and ambt.psi > 0.5  # still reported
    assert report.excluded == {"AMBT"} and report.band in ("stable", "monitor"), report.as_dict()
    assert report.max_psi < 0.2 and report.drifted_share == 0.0
    shown = report.as_dict()
    assert shown["excluded"] == ["AMBT"]
    assert [f["feature"] for f in shown["features"] if f["excluded"]] == ["AMBT"]
    assert watch.triggers(NAME) == [] and watch.look(NAME).result is None
    # The drift check: no alarm, and its summary names the excluded input that moved.
    from pitstop.ml.registry.checks import DriftCheck

    result = DriftCheck(NAME).run(pitstop.health.context)
    assert result.status.value == "healthy" and "excluded from the verdict: AMBT" in result.summary

    # The same model without the exclusion: AMBT alone fires the trigger.
    plain = plant(db, clock, tmp_path, configured(retrain={"on_drift": "warn"}))
    assert "AMBT" not in plain.models.drift_exclude.get(NAME, frozenset())
    triggers = plain.model_watch.triggers(NAME)
    assert [t.kind for t in triggers] == ["drift"] and "AMBT" in triggers[0].detail
    plain.close()
    pitstop.close()


def test_equipment_change_triggers_retraining_without_the_old_readings(
    db: Database, clock: FrozenClock, tmp_path: Any
) -> None:
    pitstop = plant(db, clock, tmp_path, configured(prerequisites={"min_samples": 1_200}))
    store_units(pitstop, START, 1_000)
    clock.set(START + timedelta(days=7))
    champion(pitstop)
    watch, registry = pitstop.model_watch, pitstop.models.registry
    assert watch.triggers(NAME) == []

    clock.advance(timedelta(hours=1))
    with pytest.raises(NotFound):
        watch.record_event("no-such-unit", "equipment-changed", "x", actor="tester")
    with pytest.raises(InvalidInput, match="known kinds"):
        watch.record_event("ahu-1", "repainted", "x", actor="tester")
    with pytest.raises(InvalidInput, match="note"):
        watch.record_event("ahu-1", "equipment-changed", "  ", actor="tester")
    event, names = watch.record_event("ahu-1", "equipment-changed", "coil replaced", actor="tester")
    assert names == [NAME] and event.kind == "equipment_changed" and event.at == clock.now()
    entry = pitstop.maintenance.log.entries(asset="ahu-1", kind="note")[-1]
    assert entry.summary == "ahu-1: equipment changed: coil replaced" and entry.ref == f"asset-event:{event.id}"
    assert [str(t) for t in watch.triggers(NAME)] == ["equipment_changed: coil replaced (ahu-1)"]

    # Right after the change only ahu-2's readings remain: too few, nothing trained, recorded.
    look = watch.look(NAME)  # within the cool-down of v1 (24 h), but no attempt followed the change yet
    assert look.result is None and look.failed_prerequisites == ["min_samples: 1,000 samples < 1,200"]
    assert registry.decisions(NAME)[-1]["trigger"] == "equipment_changed: coil replaced (ahu-1)"
    again = watch.look(NAME)  # an attempt followed the change: the cool-down holds now
    assert again.skipped is not None and again.skipped.startswith("prerequisites failed 0.0 h ago")

    # A day of the new coil's readings later, the job retrains: the old coil's readings stay out.
    new_coil = START + timedelta(days=7, hours=2)
    store(pitstop, coil(new_coil, 300, seed=5, asset="ahu-1"), "ahu-1")
    clock.set(new_coil + timedelta(days=2))
    look = watch.look(NAME)
    assert look.result is not None, look.as_dict()
    version = look.result.version
    assert version.version == 2 and version.trigger == "equipment_changed: coil replaced (ahu-1)"
    training = version.envelope["training"]
    assert {"asset": "ahu-1", "start": START.isoformat(), "end": event.at.isoformat()} in training["excluded"]
    assert training["rows"] + look.result.decision.holdout_rows == 1_000 + 300  # ahu-2's and the new coil's
    assert watch.triggers(NAME) == []  # acted on
    pitstop.close()


def test_the_api_records_events_and_rebaselines_for_operators(db: Database, clock: FrozenClock, tmp_path: Any) -> None:
    pitstop = plant(db, clock, tmp_path, configured(), health={"default_checks": False})
    store_units(pitstop, START, 800)
    clock.set(START + timedelta(days=6))
    champion(pitstop)
    keys = {role: pitstop.keys.create(f"k-{role.value}", role, clock.now())[1] for role in Role}
    with TestClient(create_app(pitstop)) as client:
        url = "/api/assets/ahu-2/events"
        body = {"kind": "equipment-changed", "note": "fan motor replaced"}
        assert client.post(url, json=body).status_code == 401
        assert client.post(url, json=body, headers=auth(keys[Role.VIEWER])).status_code == 403
        made = client.post(url, json=body, headers=auth(keys[Role.OPERATOR]))
        assert made.status_code == 201, made.text
        assert made.json()["models"] == [NAME] and made.json()["event"]["actor"].startswith("key:k-operator:")
        operator = auth(keys[Role.OPERATOR])
        assert client.post("/api/assets/nope/events", json=body, headers=operator).status_code == 404
        bad = client.post(url, json={**body, "kind": "painted"}, headers=operator)
        assert bad.status_code == 400 and "equipment-changed" in bad.text
        assert client.post(url, json={**body, "note": ""}, headers=operator).status_code == 422
        assert client.post(url, json={**body, "note": "x" * 2001}, headers=operator).status_code == 422
        assert client.post("/api/assets/%00/events", json=body, headers=operator).status_code == 404

        rebase = f"/api/models/{NAME}/rebaseline"
        assert client.post(rebase, json={"reason": "x"}, headers=auth(keys[Role.VIEWER])).status_code == 403
        for wrong in (
            {"reason": ""},
            {"reason": "x", "days": 0},
            {"reason": "x", "days": 1e9},
            {"reason": "x", "start": "2026-01-01T00:00"},
        ):
            assert client.post(rebase, json=wrong, headers=operator).status_code == 422, wrong
        assert client.post("/api/models/nope-twin/rebaseline", json={"reason": "x"}, headers=operator).status_code in (
            400,
            404,
        )
        done = client.post(rebase, json={"reason": "new fan", "days": 2}, headers=operator)
        assert done.status_code == 200, done.text
        assert done.json()["rows"] == 2 * 224 and done.json()["actor"].startswith("key:k-operator:")
        history = client.get(f"/api/models/{NAME}/history", headers=auth(keys[Role.VIEWER])).json()
        assert [r["reason"] for r in history["references"]] == ["new fan"]
    pitstop.close()


def test_the_cli_retrains_rebaselines_and_records_an_equipment_change(tmp_path: Path) -> None:
    """On the demo data folder's SQLite database, as a user runs it."""
    from pitstop.app import build
    from pitstop.cli.main import app

    settings = tmp_path / "pitstop.toml"
    settings.write_text(
        f'data_dir = "{tmp_path}"\n\n[models.twins.hvac-twin]\nmonitor = false\n'
        "[models.twins.hvac-twin.retrain]\ntrees = 20\n"
    )
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["-c", str(settings), *args])
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output

    run("db", "upgrade")
    run("assets", "load", str(DEMO_INVENTORY))
    clock = FrozenClock(START + timedelta(days=6))
    pitstop = build(Settings(data_dir=tmp_path), clock=clock, db=Database(f"sqlite:///{tmp_path / 'pitstop.db'}"))
    store_units(pitstop, START, 800)
    pitstop.close()

    refused = runner.invoke(app, ["-c", str(settings), "models", "retrain", NAME])
    assert isinstance(refused.exception, PrerequisitesFailed) and "1,600 samples < 10,000" in str(refused.exception)
    import json

    first = json.loads(run("models", "retrain", NAME, "--min-samples", "1000", "--trigger", "initial", "--json"))
    assert first["version"] == 1 and first["promoted"]
    rebased = json.loads(
        run(
            "drift",
            "rebaseline",
            NAME,
            "--reason",
            "reviewed",
            "--start",
            START.isoformat(),
            "--end",
            (START + timedelta(days=3)).isoformat(),
            "--json",
        )
    )
    assert rebased["rows"] == 2 * 432 and rebased["actor"].startswith("cli:")
    bad = runner.invoke(
        app, ["-c", str(settings), "drift", "rebaseline", NAME, "--reason", "x", "--start", "yesterday"]
    )
    assert isinstance(bad.exception, InvalidInput)
    history = json.loads(run("models", "history", NAME, "--json"))
    assert [d["kind"] for d in history["decisions"]] == ["prerequisites", "gates"]
    assert history["references"][0]["reason"] == "reviewed"

    changed = json.loads(run("assets", "event", "ahu-1", "equipment-changed", "--note", "valve replaced", "--json"))
    assert changed["models"] == [NAME] and changed["event"]["kind"] == "equipment_changed"
    [look] = changed["looks"]  # acted on at once: ahu-2's 800 rows are fewer than 10,000
    assert look["triggers"] == ["equipment_changed: valve replaced (ahu-1)"]
    assert look["failed_prerequisites"] == ["min_samples: 800 samples < 10,000"]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"floors": {"r2": 1.5}}, "floors.r2 must be at most 1"),
        ({"floors": {"mae": -1}}, "floors.mae is an error"),
        ({"floors": {"rmse": 1}}, "floors.rmse"),
        ({"floors": {"r2": float("nan")}}, "finite"),
        ({"prerequisites": {"min_samples": -1}}, "prerequisites.min_samples"),
        ({"prerequisites": {"max_missing_share": 1.5}}, "prerequisites.max_missing_share"),
        ({"prerequisites": {"max_flat_share": 0}}, "prerequisites.max_flat_share"),
        ({"prerequisites": {"min_sample": 5}}, "prerequisites.min_sample"),
        ({"drift_exclude": ["AMBT", "AMBT"]}, "more than once"),
        ({"drift_exclude": [""]}, "drift_exclude.0"),
        ({"drift_exclude": "AMBT"}, "drift_exclude"),
    ],
)
def test_bad_prerequisite_settings_name_the_key(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(models={"twins": {NAME: model}})


def test_an_excluded_name_that_is_no_input_is_refused_at_build(db: Database, clock: FrozenClock, tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=r"models\.twins\.hvac-twin\.drift_exclude: \['UCAOT'\] not among the inputs"):
        plant(db, clock, tmp_path, configured(drift_exclude=["UCAOT"]))


def test_missing_readings_are_measured_per_asset(db: Database, clock: FrozenClock, tmp_path: Any) -> None:
    """The training frame keeps rows where a sensor did not report, so a silent sensor shows as missing."""
    pitstop = plant(db, clock, tmp_path, configured())
    store_units(pitstop, START, 200)
    sensor = {s.name: s.id for s in pitstop.assets.sensors("ahu-2")}["UCWF"]
    with pitstop.db.begin() as conn:  # ahu-2's flow meter silent for the second half
        cut = int((START + timedelta(seconds=100 * STEP_S)).timestamp() * 1_000_000)
        conn.execute(delete(readings).where(readings.c.sensor_id == sensor, readings.c.ts >= cut))
        left = conn.execute(select(func.count()).select_from(readings).where(readings.c.sensor_id == sensor)).scalar()
    assert left == 100
    frame = pitstop.model_data.training_frame(NAME)
    assert len(frame) == 400 and frame.groupby("asset")["UCWF"].apply(lambda s: s.isna().sum()).to_dict() == {
        "ahu-1": 0,
        "ahu-2": 100,
    }
    assert len(pitstop.model_data.frame(NAME)) == 300  # the monitoring frame: complete rows only
    pitstop.close()
