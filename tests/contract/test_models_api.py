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


def test_predict_takes_named_inputs_and_marks_extrapolation(
    demo_pitstop: Pitstop, client: TestClient, keys: dict[Role, str]
) -> None:
    """Issue 18: the guide's smoke test sends named fields; UCWF 10 m3/h where training saw under
    0.3 gave a coil outlet far above any sensor's range, and nothing said so."""
    frame = coil_frame("2026-03-01", 6)
    models = demo_pitstop.models
    models.retrain(NAME, frame, params={"n_estimators": 20})
    models.registry.promote(NAME, 1, actor="test", reason="reviewed")
    headers = auth(keys[Role.VIEWER])
    inputs = ["UCWIT", "UCAIT", "UCWF", "UCAIH", "AMBT", "UCTSP"]
    row = {c: float(frame[c].iloc[0]) for c in inputs}

    positional = client.post(f"/predict/{NAME}", json={"rows": [[row[c] for c in inputs]]}, headers=headers).json()
    named = client.post(f"/predict/{NAME}", json={"rows": [row]}, headers=headers).json()
    bare = client.post(f"/predict/{NAME}", json=row, headers=headers).json()
    assert named["predictions"] == positional["predictions"] == bare["predictions"]
    assert positional["out_of_range"] == []  # a row from training: nothing to mark

    absurd = client.post(f"/predict/{NAME}", json={**row, "UCWF": 10.0}, headers=headers).json()
    marks = {(m["kind"], m["name"]): m for m in absurd["out_of_range"]}
    seen = marks[("input", "UCWF")]
    assert seen["value"] == 10.0 and seen["range"][1] < 1.0 and "training" in seen["why"]
    outlet = marks[("output", "UCAOT")]
    assert outlet["range"] == [-10.0, 60.0]  # the inventory's sensor range
    assert not -10.0 <= outlet["value"] <= 60.0
    assert all(m["row"] == 0 for m in absurd["out_of_range"])

    missing = client.post(f"/predict/{NAME}", json={k: v for k, v in row.items() if k != "UCWF"}, headers=headers)
    assert missing.status_code == 400 and "UCWF" in missing.text
    typo = client.post(f"/predict/{NAME}", json={**row, "UCWFF": 1.0}, headers=headers)
    assert typo.status_code == 400 and "UCWFF" in typo.text
    mixed = client.post(f"/predict/{NAME}", json={"rows": [row, list(row.values())]}, headers=headers)
    assert mixed.status_code in (400, 422)

    health = client.get("/health").json()
    assert health["status"] == "ok" and health["version"]
    served = {m["name"]: m for m in health["models"]}
    assert served[NAME]["champion"] == 1 and served[NAME]["state"] == "loaded"
    assert served[NAME]["runtime"] in ("onnxruntime", "lightgbm") and served[NAME]["type"] == "LightGBM twin"
