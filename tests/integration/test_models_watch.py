"""Scheduled and triggered retraining, drift and accuracy through the checks, rollback by remediation.

Readings of the demo plant's two air-handling units are written to storage (simulated coil, half
hourly); the clock is a FrozenClock moved by the tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Severity
from pitstop.incidents.windows import MuteStore, Window
from pitstop.ml.registry.watch import ModelWatch
from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY
from tests.integration.test_models_lifecycle import coil_frame

NAME = "hvac-twin"
WINTER = datetime(2026, 1, 5, tzinfo=UTC)
SUMMER = datetime(2026, 6, 1, tzinfo=UTC)


def store(pitstop: Pitstop, frame: pd.DataFrame, asset: str) -> None:
    ids = {s.name: s.id for s in pitstop.assets.sensors(asset)}
    ts = pd.DatetimeIndex(frame.index).as_unit("us").asi8
    for column in frame.columns:
        batch = ReadingBatch.of(np.full(len(ts), ids[column]), ts, frame[column].to_numpy())
        pitstop.readings.write(batch)


def store_both(pitstop: Pitstop, start: datetime, days: int) -> None:
    for seed, asset in ((3, "ahu-1"), (4, "ahu-2")):
        store(pitstop, coil_frame(start.date().isoformat(), days, seed=seed), asset)


def plant(db: Database, clock: FrozenClock, tmp_path: Any, models: dict[str, Any], **extra: Any) -> Pitstop:
    settings = Settings(data_dir=tmp_path, models=models, **extra)
    pitstop = build(settings, clock=clock, db=db)
    inventory.apply(pitstop.db, inventory.read_file(DEMO_INVENTORY), actor="test", now=clock.now())
    return pitstop


def watch(pitstop: Pitstop) -> ModelWatch:
    job = pitstop.scheduler.jobs["models"].func
    owner = getattr(job, "__self__", None)
    assert isinstance(owner, ModelWatch)
    return owner


def test_calendar_rule_retrains_with_the_configured_gates_and_records_why(
    db: Database, clock: FrozenClock, tmp_path: Any
) -> None:
    models = {
        "twins": {
            NAME: {
                "gates": [{"rule": "min", "metric": "r2", "value": 0.5}, {"rule": "size_mb", "value": 10}],
                "retrain": {"every_days": 30, "trees": 30},
                "prerequisites": {"min_samples": 1_000},  # 2 coils x 20 days, half-hourly: under the guide's 10,000
                "monitor": False,
            }
        }
    }
    pitstop = plant(db, clock, tmp_path, models)
    assert [r["rule"] for r in pitstop.models.rules_for(NAME)] == ["min", "size_mb"]
    store_both(pitstop, WINTER, 20)
    clock.set(WINTER + timedelta(days=20))
    pitstop.models.retrain(NAME, pitstop.model_data.frame(NAME), trigger="initial", params={"n_estimators": 30})
    w = watch(pitstop)

    clock.advance(timedelta(days=29))
    assert w.run()[0].triggers == [] and len(pitstop.models.registry.versions(NAME)) == 1

    clock.advance(timedelta(days=1))
    look = w.run()[0]
    assert [t.kind for t in look.triggers] == ["calendar"]
    assert look.result is not None and look.result.promoted
    version = pitstop.models.registry.get(NAME, 2)
    assert version.trigger == "calendar: champion v1 trained 30.0 days ago (every 30 days)"
    assert version.envelope["trigger"] == version.trigger
    record = pitstop.models.registry.decisions(NAME)[-1]
    assert [v["rule"]["rule"] for v in record["verdicts"]] == ["min", "size_mb"]
    assert record["trigger"] == version.trigger and record["mode"] == "managed"
    move = pitstop.models.registry.history(NAME, "champion")[-1]
    assert move.actor == "scheduler:models" and "calendar" in move.reason
    pitstop.close()


def test_drift_trigger_in_manual_mode_leaves_a_challenger_and_keeps_excluded_periods_out(
    db: Database, clock: FrozenClock, tmp_path: Any
) -> None:
    models = {
        "twins": {
            NAME: {
                "mode": "manual",
                "retrain": {"on_drift": "warn", "trees": 30, "window_days": 30},
                "prerequisites": {"min_samples": 1_000},  # under the guide's 10,000: half-hourly test data
            }
        },
        "drift_window_days": 10,
    }
    pitstop = plant(db, clock, tmp_path, models, health={"default_checks": False})
    store_both(pitstop, WINTER, 20)
    clock.set(WINTER + timedelta(days=20))
    pitstop.models.retrain(NAME, pitstop.model_data.frame(NAME), trigger="initial", params={"n_estimators": 30})
    store_both(pitstop, SUMMER, 20)
    # A maintenance window on ahu-1 and a fault on ahu-2: both periods stay out of training.
    window = Window(
        "coil cleaning",
        {"asset": "ahu-1"},
        "once",
        timedelta(0),
        starts_at=SUMMER + timedelta(days=5),
        ends_at=SUMMER + timedelta(days=6),
    )
    MuteStore(pitstop.db).add_window(window, now=clock.now())
    clock.set(SUMMER + timedelta(days=8))
    pitstop.incidents.open_or_update("asset.anomaly:ahu-2", severity=Severity.WARNING, title="fault")
    clock.set(SUMMER + timedelta(days=9))
    pitstop.incidents.resolve("asset.anomaly:ahu-2", reason="repaired", actor="test")
    clock.set(SUMMER + timedelta(days=20))

    # The drift check goes through the alert policy: model.drift opens with the check as its source.
    pitstop.health.run_round()
    incident = pitstop.incidents.active(f"model.drift:{NAME}")
    assert incident is not None and incident.source == "check:drift"
    assert incident.severity in (Severity.WARNING, Severity.CRITICAL)

    look = watch(pitstop).run()[0]
    assert [t.kind for t in look.triggers] == ["drift"] and look.result is not None
    assert not look.result.promoted
    registry = pitstop.models.registry
    assert registry.alias(NAME, "champion") == 1 and registry.alias(NAME, "challenger") == 2
    version = registry.get(NAME, 2)
    assert version.trigger.startswith("drift: v1 ") and "at or past warn" in version.trigger
    training = version.envelope["training"]
    excluded = {(p["start"], p["end"]) for p in training["excluded"]}
    assert ((SUMMER + timedelta(days=5)).isoformat(), (SUMMER + timedelta(days=6)).isoformat()) in excluded
    assert any(s == (SUMMER + timedelta(days=8)).isoformat() for s, _ in excluded)
    assert datetime.fromisoformat(training["start"]) >= SUMMER - timedelta(days=10)
    assert registry.decisions(NAME)[-1]["mode"] == "manual"
    # Half-hourly rows of two coils over 20 summer days, minus 2 days excluded, 80 % for training.
    assert training["rows"] <= int(2 * 48 * 18 * 0.8) + 2

    # Within the cool-down the trigger is seen again but nothing is trained.
    again = watch(pitstop).run()[0]
    assert again.triggers and again.skipped and "registered" in again.skipped
    assert len(registry.versions(NAME)) == 2
    pitstop.close()


def test_accuracy_below_the_floor_opens_an_incident_and_rollback_model_heals_it(
    db: Database, clock: FrozenClock, tmp_path: Any
) -> None:
    models = {"twins": {NAME: {"retrain": {"accuracy_drop": 0.2}, "accuracy_floor": 0.6}}}
    pitstop = plant(db, clock, tmp_path, models, health={"default_checks": False})
    assert any(r.match == f"model.accuracy:{NAME}" for r in pitstop.remediation.rules.rules)
    assert "remediation" in pitstop.scheduler.jobs
    store_both(pitstop, WINTER, 20)
    store_both(pitstop, SUMMER, 20)
    clock.set(SUMMER + timedelta(days=20))
    registry = pitstop.models.registry
    summer = pitstop.model_data.frame(NAME, since=SUMMER)
    everything = pitstop.model_data.frame(NAME)
    winter = everything[everything.index < SUMMER]
    pitstop.models.retrain(NAME, summer, trigger="initial", params={"n_estimators": 40}, rules=[])
    # A version trained on winter readings only is promoted (no gates): good on its hold-out, poor now.
    pitstop.models.retrain(NAME, winter, trigger="test", params={"n_estimators": 40}, rules=[])
    assert registry.alias(NAME, "champion") == 2

    acc = watch(pitstop).accuracy(NAME)
    assert acc is not None and acc.version == 2 and acc.relative < 0.6
    assert [t.kind for t in watch(pitstop).triggers(NAME)] == ["accuracy"]

    pitstop.health.run_round()
    incident = pitstop.incidents.active(f"model.accuracy:{NAME}")
    assert incident is not None and incident.source == "check:model_accuracy"

    pitstop.remediation.run_pass()
    assert registry.alias(NAME, "champion") == 1
    last = registry.history(NAME, "champion")[-1]
    assert (last.from_version, last.to_version, last.actor) == (2, 1, "remediation:rollback_model")
    assert pitstop.incidents.active(f"model.accuracy:{NAME}") is None
    pitstop.close()


def test_configured_models_add_their_checks_and_rollback_rule_to_a_copy_of_the_settings(
    db: Database, clock: FrozenClock, tmp_path: Any
) -> None:
    settings = Settings(data_dir=tmp_path, models={"twins": {NAME: {"accuracy_floor": 0.6}}})
    pitstop = build(settings, clock=clock, db=db)
    assert settings.health.checks == [] and settings.remediation.rules == []  # the settings given stay as they were
    checks = {(c.check, c.target): c for c in pitstop.settings.health.checks}
    assert set(checks) == {("drift", NAME), ("model_accuracy", NAME)}
    assert checks["model_accuracy", NAME].thresholds["relative_accuracy"].warning == 0.6
    assert [r.match for r in pitstop.settings.remediation.rules] == [f"model.accuracy:{NAME}"]
    assert pitstop.remediation.settings is pitstop.settings.remediation
    assert pitstop.health.cfg is pitstop.settings.health
    pitstop.close()


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ([{"rule": "min", "metric": "r2"}], "gates.0.min.value"),
        ([{"rule": "fastest"}], "gates.0"),
        ([{"rule": "max", "metric": "rmse", "value": 1}], "gates.0.max.metric"),
        ([{"rule": "not_worse", "metric": "r2", "pct": 5}], "gates.0.not_worse.pct"),
        ([{"rule": "latency_p95_ms", "value": -1}], "gates.0.latency_p95_ms.value"),
    ],
)
def test_bad_gates_in_settings_name_the_key(gates: list[dict[str, Any]], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message.replace(".", r"\.")):
        Settings(models={"twins": {NAME: {"gates": gates}}})


def stationary(start: str, days: int, *, seed: int, offset: float = 0.0) -> pd.DataFrame:
    """Inputs drawn from fixed distributions, outputs a fixed function of them plus noise
    (plus `offset` on UCAOT: the relation changed while the inputs did not)."""
    from pitstop.ml.twins import HVAC_INPUTS, HVAC_OUTPUTS

    rng = np.random.default_rng(seed)
    n = days * 48
    X = rng.normal(0.0, 1.0, (n, len(HVAC_INPUTS)))
    y = np.column_stack([X[:, 0] + 0.5 * X[:, 1], X[:, 2] - X[:, 3], 2.0 * X[:, 4] + X[:, 5]])
    y = y + rng.normal(0.0, 0.3, y.shape)
    y[:, 0] += offset
    index = pd.date_range(start, periods=n, freq="30min", tz="UTC")
    return pd.DataFrame(np.column_stack([X, y]), index=index, columns=list(HVAC_INPUTS + HVAC_OUTPUTS))


def test_residual_drift_against_the_holdout_residuals(pitstop: Pitstop) -> None:
    train = stationary("2026-01-05", 30, seed=1)
    pitstop.models.retrain(NAME, train, trigger="initial", params={"n_estimators": 60})
    registry = pitstop.models.registry
    reference = registry.residual_profile(NAME, 1)
    assert reference is not None and sorted(reference.features) == ["UCAF", "UCAOT", "UCWOT"]
    assert sorted(registry.profile(NAME, 1).features) == sorted(train.columns[:6])

    # Later readings from the same process: neither inputs nor residuals drift.
    same = pitstop.models.drift(NAME, stationary("2026-02-04", 10, seed=2))
    assert same.residual_rows == 480 and same.band in ("stable", "monitor"), same.as_dict()
    # The relation changed (UCAOT reads 1.0 higher), the inputs did not: only residual drift sees it.
    moved = pitstop.models.drift(NAME, stationary("2026-02-04", 10, seed=2, offset=1.0))
    assert moved.max_psi < 0.1 and moved.residual_max_psi >= 0.5 and moved.band == "critical"
    by_output = {f.feature: f.band for f in moved.residuals}
    assert by_output["UCAOT"] == "critical" and by_output["UCAF"] in ("stable", "monitor")
    assert moved.as_dict()["residual_band"] == "critical" and moved.as_dict()["input_band"] == "stable"
    # Rows inside the training window say nothing about residual drift: skipped, with a note.
    inside = pitstop.models.drift(NAME, train.iloc[:200])
    assert not inside.residuals and "skipped" in inside.notes[0]

    # Through the alert policy: model.drift opens with the drift check as its source, then clears.
    pitstop.models.check_drift(NAME, stationary("2026-02-04", 10, seed=2, offset=1.0))
    incident = pitstop.incidents.active(f"model.drift:{NAME}")
    assert incident is not None and incident.source == "check:drift" and "residual UCAOT" in (incident.detail or "")
    pitstop.models.check_drift(NAME, stationary("2026-02-04", 10, seed=2))
    assert pitstop.incidents.active(f"model.drift:{NAME}") is None


def test_model_checks_keep_the_check_contract(pitstop: Pitstop) -> None:
    from pitstop.health.base import CheckContext, checks
    from pitstop.ml.registry.checks import BUILTIN
    from pitstop.testing.health import check_check_class, check_check_result

    for cls in BUILTIN:
        assert checks.get(cls.name) is cls
        check_check_class(cls, sample_target=NAME)
        bare = CheckContext(clock=pitstop.clock, db=pitstop.db)
        assert check_check_result(cls(NAME), bare).status.value == "unknown"
        # Wired, without a champion: unknown with the reason, never an exception.
        result = check_check_result(cls(NAME), pitstop.health.context)
        assert result.status.value == "unknown" and result.summary
