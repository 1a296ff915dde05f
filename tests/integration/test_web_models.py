"""The Models pages through the TestClient: versions, gate decisions, drift, promote and roll back, test prediction."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.ml.registry import Mode
from pitstop.ml.twins import HVAC_INPUTS, HVAC_OUTPUTS
from pitstop.sim.hvac import HvacModel
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.storage.schema import readings
from pitstop.testing.clock import FrozenClock
from tests.integration.test_web_pages import csrf_of, login

NAME = "hvac-twin"


def coil_frame(end: datetime, days: int, seed: int = 3) -> pd.DataFrame:
    """Half-hourly simulated readings of one coil up to `end`."""
    t = end.timestamp() - np.arange(days * 48, 0, -1, dtype=np.float64) * 1800.0
    signals = HvacModel(seed, "ahu-1", "north-plant", ()).signals(t, np.arange(len(t), dtype=np.int64))
    rng = np.random.default_rng(seed)
    columns = {name: value + rng.normal(0.0, 1.0, len(t)) * sd for name, (value, sd) in signals.items()}
    index = pd.to_datetime(t, unit="s", utc=True)
    return pd.DataFrame(columns, index=index)[list(HVAC_INPUTS + HVAC_OUTPUTS)]


@pytest.fixture
def models(demo_pitstop: Pitstop) -> Pitstop:
    """Two versions through the lifecycle (v1 champion, v2 challenger) and ahu-1's last days in storage."""
    frame = coil_frame(demo_pitstop.clock.now(), 20)
    demo_pitstop.models.retrain(NAME, frame.iloc[:480], trigger="test", params={"n_estimators": 20})
    demo_pitstop.models.retrain(NAME, frame, mode=Mode.MANUAL, trigger="test", params={"n_estimators": 20})
    sensors = {s.name: s.id for s in demo_pitstop.assets.sensors("ahu-1")}
    ts = pd.DatetimeIndex(frame.index).as_unit("us").asi8
    for column in frame.columns:
        batch = ReadingBatch.of(np.full(len(ts), sensors[column]), ts, frame[column].to_numpy())
        demo_pitstop.readings.write(batch)
    return demo_pitstop


def test_a_viewer_sees_versions_decisions_and_drift_but_no_buttons(
    client: TestClient, models: Pitstop, keys: dict[Role, str]
) -> None:
    login(client, keys[Role.VIEWER])
    listing = client.get("/ui/models")
    assert listing.status_code == 200 and "hvac-twin" in listing.text
    html = client.get(f"/ui/models/{NAME}").text
    assert "champion v1" in html and "challenger v2" in html
    assert "not_worse(metric=r2)" in html and "onnx_parity(tolerance=0.001)" in html  # every rule of the decision
    assert models.models.registry.get(NAME, 2).sha256 in html  # the envelope
    drift = html.split('id="drift"', 1)[1]
    for feature in HVAC_INPUTS:
        assert f"<code>{feature}</code>" in drift, drift[:3000]
    assert re.search(r'class="badge s-(stable|monitor|warn|critical)"', drift)
    assert 'class="action' not in html and "Promote…" not in html
    assert 'id="predict"' not in html and "<form" not in html.replace('<form class="who"', "")  # logout only
    assert client.get(f"/ui/models/{NAME}/predict", params={"UCWIT": "20"}).status_code == 403
    assert client.get(f"/ui/models/{NAME}/promote", params={"version": 2}).status_code == 403
    assert client.get(f"/ui/models/{NAME}/rollback").status_code == 403
    token = csrf_of(html)
    response = client.post(f"/ui/models/{NAME}/promote", data={"csrf": token, "version": "2"}, follow_redirects=False)
    assert response.status_code == 403 and models.models.registry.alias(NAME, "champion") == 1


def test_an_operator_promotes_after_confirming_and_rolls_back(
    client: TestClient, models: Pitstop, keys: dict[Role, str]
) -> None:
    registry = models.models.registry
    login(client, keys[Role.OPERATOR])
    html = client.get(f"/ui/models/{NAME}").text
    assert f'href="/ui/models/{NAME}/promote?version=2"' in html and "Roll back" not in html  # v1 was never replaced
    confirm = client.get(f"/ui/models/{NAME}/promote", params={"version": 2})
    assert confirm.status_code == 200 and "Promote hvac-twin v2?" in confirm.text
    assert registry.alias(NAME, "champion") == 1  # the confirmation page changes nothing
    token = csrf_of(confirm.text)
    assert client.post(f"/ui/models/{NAME}/promote", data={"version": "2"}, follow_redirects=False).status_code == 403
    data = {"csrf": token, "version": "2", "reason": "reviewed"}
    assert client.post(f"/ui/models/{NAME}/promote", data=data, follow_redirects=False).status_code == 303
    assert registry.alias(NAME, "champion") == 2 and registry.alias(NAME, "challenger") is None
    move = registry.history(NAME, "champion")[-1]
    assert move.reason == "reviewed" and move.actor.startswith("web:test-operator")
    assert any(e.action == "POST /ui/models/{name}/promote" for e in models.audit.recent(10))

    assert "Roll back to v1" in client.get(f"/ui/models/{NAME}").text
    assert "Roll back hvac-twin to v1?" in client.get(f"/ui/models/{NAME}/rollback").text
    assert client.post(f"/ui/models/{NAME}/rollback", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert registry.alias(NAME, "champion") == 1
    assert registry.history(NAME, "champion")[-1].reason.startswith("rollback from v2")


def test_promote_refuses_bad_versions(client: TestClient, models: Pitstop, keys: dict[Role, str]) -> None:
    login(client, keys[Role.OPERATOR])
    token = csrf_of(client.get("/ui/").text)
    for version, status in (("9", 404), ("abc", 400), ("", 400)):
        response = client.post(
            f"/ui/models/{NAME}/promote", data={"csrf": token, "version": version}, follow_redirects=False
        )
        assert response.status_code == status, version
    assert client.get(f"/ui/models/{NAME}/promote", params={"version": 1}).status_code == 400  # already champion
    assert client.get("/ui/models/no-such-model").status_code == 404
    assert models.models.registry.alias(NAME, "champion") == 1


def test_a_test_prediction_calls_the_champion(client: TestClient, models: Pitstop, keys: dict[Role, str]) -> None:
    login(client, keys[Role.OPERATOR])
    html = client.get(f"/ui/models/{NAME}").text
    values = dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', html))
    assert list(values) == list(HVAC_INPUTS)
    response = client.get(f"/ui/models/{NAME}/predict", params=values)
    assert response.status_code == 200
    expected = models.models.server.predict(NAME, [[float(v) for v in values.values()]])  # type: ignore[union-attr]
    shown = response.text.split('id="prediction"', 1)[1]
    assert "v1" in shown
    for output, y in zip(expected["outputs"], expected["predictions"][0], strict=True):
        assert f"<code>{output}</code></td><td>{y:.4g}</td>" in shown
    bad = client.get(f"/ui/models/{NAME}/predict", params={**values, "UCWIT": "warm"})
    assert bad.status_code == 400 and "UCWIT" in bad.text and 'id="prediction"' not in bad.text


def test_a_model_without_readings_says_why_there_is_no_drift(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]
) -> None:
    frame = coil_frame(datetime(2025, 6, 1, tzinfo=UTC), 10)
    demo_pitstop.models.retrain(NAME, frame, trigger="test", params={"n_estimators": 10})
    login(client, keys[Role.VIEWER])
    html = client.get(f"/ui/models/{NAME}").text
    assert "Drift not available: no readings in the last 7 days" in html


def test_drift_is_computed_ahead_by_the_job_and_the_page_shows_the_stored_result(
    client: TestClient, models: Pitstop, keys: dict[Role, str], clock: FrozenClock
) -> None:
    from pitstop.ml.registry.drift_reports import JOB

    assert JOB in models.scheduler.jobs  # the model component's job
    assert models.drift_reports.refresh() == [(NAME, 1), (NAME, 2)]  # champion and challenger
    computed = clock.now()
    clock.advance(timedelta(minutes=30))
    with models.db.begin() as conn:  # the readings go: the page still shows what the job stored
        conn.execute(delete(readings))
    login(client, keys[Role.VIEWER])
    drift = client.get(f"/ui/models/{NAME}").text.split('id="drift"', 1)[1]
    for feature in HVAC_INPUTS:
        assert f"<code>{feature}</code>" in drift
    assert "Drift not available" not in drift
    assert re.search(r'class="badge s-(stable|monitor|warn|critical)"', client.get("/ui/models").text)
    models.scheduler.jobs[JOB].func(clock.now())  # the job runs again: now there is nothing to compare
    assert "Drift not available: no readings in the last 7 days" in client.get(f"/ui/models/{NAME}").text
    assert computed < clock.now()
