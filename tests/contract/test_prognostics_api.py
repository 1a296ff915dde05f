"""The prognostics API: an asset's RUL, ends of life, calibration; roles and hostile input."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop.app import Pitstop
from pitstop.core.types import Role
from tests.conftest import auth


def test_rul_of_an_asset_without_history(client: TestClient, keys: dict[Role, str]) -> None:
    viewer = auth(keys[Role.VIEWER])
    body = client.get("/api/assets/pump-1/rul", headers=viewer).json()
    assert body["asset"] == "pump-1" and body["latest"] is None and body["curve"] == []
    assert body["calibration"]["outcomes"] == 0 and body["life_ends"] == []
    assert client.get("/api/assets/no-such-pump/rul", headers=viewer).status_code == 404
    assert client.get("/api/assets/pump-1/rul").status_code == 401
    assert client.get("/api/assets/pump-1/rul?days=-1", headers=viewer).status_code == 422
    # Nothing to estimate from yet: an answer, not an error.
    estimate = client.post("/api/assets/pump-1/rul/estimate", headers=auth(keys[Role.OPERATOR]))
    assert estimate.status_code == 200 and estimate.json()["estimate"] is None
    assert client.post("/api/assets/ahu-1/rul/estimate", headers=auth(keys[Role.OPERATOR])).status_code == 404


def test_ends_of_life_are_recorded_once(client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop) -> None:
    viewer, operator = auth(keys[Role.VIEWER]), auth(keys[Role.OPERATOR])
    at = (demo_pitstop.clock.now() - timedelta(days=3)).isoformat()
    body = {"ended_at": at, "failed": True, "code": "bearing_wear", "note": "outer race spalled"}
    assert client.post("/api/assets/pump-1/life-ends", json=body, headers=viewer).status_code == 403
    made = client.post("/api/assets/pump-1/life-ends", json=body, headers=operator)
    assert made.status_code == 200 and made.json()["failed"] is True and made.json()["source"] == "api"
    again = client.post("/api/assets/pump-1/life-ends", json=body, headers=operator)
    assert again.status_code == 400 and "already" in again.json()["error"]["message"]
    future = {**body, "ended_at": (demo_pitstop.clock.now() + timedelta(days=1)).isoformat()}
    assert client.post("/api/assets/pump-1/life-ends", json=future, headers=operator).status_code == 400
    naive = {**body, "ended_at": "2026-01-01T00:00:00"}
    assert client.post("/api/assets/pump-1/life-ends", json=naive, headers=operator).status_code == 422
    assert client.post("/api/assets/ghost/life-ends", json=body, headers=operator).status_code == 404
    ends = client.get("/api/assets/pump-1/rul", headers=viewer).json()["life_ends"]
    assert [e["code"] for e in ends] == ["bearing_wear"]
    assert client.get("/api/rul/calibration?asset=pump-1", headers=viewer).json()["outcomes"] == 0


def test_a_work_order_closes_with_a_failure_code(client: TestClient, keys: dict[Role, str]) -> None:
    operator = auth(keys[Role.OPERATOR])
    order = client.post(
        "/api/workorders", json={"key": "inspect.seal", "title": "Seal weeps", "asset": "pump-1"}, headers=operator
    ).json()
    bad = client.post(f"/api/workorders/{order['id']}/close", json={"failure_code": "Robert'); DROP"}, headers=operator)
    assert bad.status_code == 422
    closed = client.post(f"/api/workorders/{order['id']}/close", json={"failure_code": "seal_leak"}, headers=operator)
    assert closed.status_code == 200 and closed.json()["failure_code"] == "seal_leak"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(min_size=1, max_size=300),
    body=st.dictionaries(st.sampled_from(["ended_at", "failed", "code", "note"]), st.from_type(object), max_size=4),
)
def test_hostile_life_ends_are_refused_cleanly(
    client: TestClient, keys: dict[Role, str], name: str, body: dict[str, object]
) -> None:
    try:
        url = f"/api/assets/{quote(name, safe='')}/life-ends"
        response = client.post(url, json=body, headers=auth(keys[Role.OPERATOR]))
    except (TypeError, ValueError):
        return  # not JSON-encodable: the client refuses before sending
    assert response.status_code in (400, 404, 405, 422), response.text
