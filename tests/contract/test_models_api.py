"""`POST /predict/{model}` serves the champion; /metrics carries latency per model version."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.ml.registry import Mode
from tests.conftest import auth
from tests.integration.test_models_lifecycle import coil_frame

NAME = "hvac-twin"


def test_predict_serves_the_champion_and_follows_rollback(
    demo_pitstop: Pitstop, client: TestClient, keys: dict[Role, str]
) -> None:
    frame = coil_frame("2026-03-01", 6)
    models = demo_pitstop.models
    models.retrain(NAME, frame, params={"n_estimators": 20})
    second = models.retrain(NAME, frame, params={"n_estimators": 30}, mode=Mode.MANUAL)
    models.registry.promote(NAME, second.version.version, actor="test", reason="reviewed")
    rows = frame.iloc[:3, :6].to_numpy().tolist()
    headers = auth(keys[Role.VIEWER])
    audited = len(demo_pitstop.audit.recent(limit=10_000))
    response = client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers)
    assert response.status_code == 200, response.text
    assert len(demo_pitstop.audit.recent(limit=10_000)) == audited  # a prediction changes nothing
    body = response.json()
    assert body["version"] == 2 and len(body["predictions"]) == 3 and len(body["predictions"][0]) == 3
    assert body["path"] in ("onnxruntime", "lightgbm")

    assert client.post(f"/predict/{NAME}", json={"rows": [[1.0, 2.0]]}, headers=headers).status_code in (400, 422)
    assert client.post("/predict/nope-twin", json={"rows": rows}, headers=headers).status_code == 404
    assert client.post(f"/predict/{NAME}", json={"rows": rows}).status_code == 401

    models.registry.rollback(NAME, actor="test", reason="test")
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers).json()["version"] == 1

    metrics = client.get("/metrics", headers=headers).text
    assert 'pitstop_model_predict_seconds_count{model="hvac-twin",version="1"}' in metrics
    history = client.get(f"/api/models/{NAME}/history", headers=headers).json()
    assert [m["to"] for m in history["moves"] if m["alias"] == "champion"] == [1, 2, 1]
