"""The guide's model-lifecycle story on the simulator's HVAC coil (small sizes)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from pitstop.app import Pitstop
from pitstop.ml.registry import Mode, ModelCorrupt
from pitstop.ml.twins import HVAC_INPUTS, HVAC_OUTPUTS
from pitstop.sim.hvac import HvacModel

NAME = "hvac-twin"
PARAMS = {"n_estimators": 60}


def coil_frame(start: str, days: int, seed: int = 3) -> pd.DataFrame:
    """Half-hourly simulated readings of one coil (signal plus its sensor noise)."""
    t0 = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()
    t = t0 + np.arange(days * 48, dtype=np.float64) * 1800.0
    model = HvacModel(seed, "ahu-1", "site-a", ())
    signals = model.signals(t, np.arange(len(t), dtype=np.int64))
    rng = np.random.default_rng(seed)
    columns = {name: value + rng.normal(0.0, 1.0, len(t)) * sd for name, (value, sd) in signals.items()}
    index = pd.to_datetime(t, unit="s", utc=True)
    return pd.DataFrame(columns, index=index)[list(HVAC_INPUTS + HVAC_OUTPUTS)]


@pytest.fixture
def winter() -> pd.DataFrame:
    return coil_frame("2026-01-05", 30)


@pytest.fixture
def summer() -> pd.DataFrame:
    return coil_frame("2026-06-01", 90)


def test_drift_retrain_promote_reject_corrupt_rollback(
    pitstop: Pitstop, winter: pd.DataFrame, summer: pd.DataFrame
) -> None:
    models, registry = pitstop.models, pitstop.models.registry
    first = models.retrain(NAME, winter, trigger="initial", params=PARAMS)
    assert first.promoted and registry.alias(NAME, "champion") == 1
    envelope = registry.get(NAME, 1).envelope
    assert envelope["training"]["rows"] > 0 and len(envelope["sha256"]) == 64
    assert envelope["feature_hash"] and envelope["libraries"]["lightgbm"]

    # Seasonal drift: summer inputs against the winter reference.
    current = summer.iloc[20 * 48 : 70 * 48]  # days 20-70 of the summer quarter
    report = models.check_drift(NAME, current)
    assert report.max_psi > 0.2 and report.band in ("warn", "critical")
    assert report.drifted_share > 0
    assert pitstop.incidents.active(f"model.drift:{NAME}") is not None

    # Managed retrain on the recent window: passes the gates on the same hold-out, promoted, drift clears.
    second = models.retrain(NAME, summer, trigger="drift", params=PARAMS)
    assert second.decision.passed, second.decision.failed_rules
    assert second.promoted and registry.alias(NAME, "champion") == 2
    assert second.decision.champion == 1
    after = models.check_drift(NAME, current)
    assert after.band in ("stable", "monitor"), after.as_dict()
    assert pitstop.incidents.active(f"model.drift:{NAME}") is None

    # A deliberately worse candidate is rejected and stays challenger.
    worse = models.retrain(NAME, summer, mode=Mode.MANAGED, trigger="test", params={"n_estimators": 2})
    assert not worse.promoted and registry.alias(NAME, "champion") == 2
    assert registry.alias(NAME, "challenger") == 3
    record = registry.decisions(NAME)[-1]
    assert record["candidate"] == 3 and not record["passed"]
    assert "not_worse(metric=r2)" in record["failed_rules"]
    assert any(v["rule"]["rule"] == "not_worse" and not v["passed"] for v in record["verdicts"])

    # A corrupted champion artifact: detected at load, incident opened, the previous version serves.
    path = registry.get(NAME, 2).path
    original = path.read_bytes()
    path.write_bytes(original[:-10] + b"0000000000")
    with pytest.raises(ModelCorrupt):
        registry.load(NAME, 2)
    version, twin = registry.serving(NAME)
    assert version == 1 and twin.predict_array(winter[list(HVAC_INPUTS)].to_numpy()[:3]).shape == (3, 3)
    assert pitstop.incidents.active(f"model.corrupt:{NAME}") is not None
    path.write_bytes(original)

    # Rollback in one step restores the previous champion; the history shows every move.
    promoted_at = pitstop.clock.now()
    pitstop.clock.advance(3600)  # type: ignore[attr-defined]
    move = registry.rollback(NAME, actor="tester", reason="live accuracy below floor")
    assert (move.from_version, move.to_version) == (2, 1) and registry.alias(NAME, "champion") == 1
    history = [(m.alias, m.from_version, m.to_version) for m in registry.history(NAME)]
    assert history == [
        ("challenger", None, 1),
        ("champion", None, 1),
        ("challenger", 1, None),
        ("challenger", None, 2),
        ("champion", 1, 2),
        ("challenger", 2, None),
        ("challenger", None, 3),
        ("champion", 2, 1),
    ]
    assert registry.served_at(NAME, promoted_at) == 2
    assert registry.served_at(NAME, pitstop.clock.now()) == 1
    # Issue 17: every champion move is in the maintenance log (promotions and the rollback).
    logged = [(e.summary, e.result) for e in pitstop.maintenance.log.entries(kind="model_promotion")]
    assert logged == [
        (f"model {NAME}: champion none -> v1", "promoted"),
        (f"model {NAME}: champion v1 -> v2", "promoted"),
        (f"model {NAME}: champion v2 -> v1", "rolled back"),
    ]


def test_rollback_model_action_plans_applies_and_verifies(pitstop: Pitstop, winter: pd.DataFrame) -> None:
    from pitstop.core.types import Severity
    from pitstop.ml.registry.action import RollbackModel
    from pitstop.remediation.base import ActionContext

    frame = winter.iloc[: 10 * 48]
    pitstop.models.retrain(NAME, frame, params={"n_estimators": 10}, rules=[])
    pitstop.models.retrain(NAME, frame, params={"n_estimators": 20}, rules=[])
    assert pitstop.models.registry.alias(NAME, "champion") == 2
    incident, _ = pitstop.incidents.open_or_update(
        f"model.accuracy:{NAME}", severity=Severity.WARNING, title="live accuracy below floor"
    )
    ctx = ActionContext(clock=pitstop.clock, db=pitstop.db)
    action = RollbackModel()
    plan = action.plan(incident, ctx)
    assert plan.params == {"from": 2, "to": 1} and pitstop.models.registry.alias(NAME, "champion") == 2
    outcome = action.apply(plan, ctx)
    assert outcome.ok, outcome.detail
    assert action.verify(plan, ctx) == (True, f"{NAME}: champion is v1")
    assert pitstop.models.registry.history(NAME, "champion")[-1].actor == "remediation:rollback_model"
    assert action.apply(plan, ctx).ok  # idempotent
    with pytest.raises(ValueError, match="no parameters"):
        RollbackModel(model="x")
