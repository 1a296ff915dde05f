from __future__ import annotations

from fastapi.testclient import TestClient

from pitstop import __version__
from pitstop.api import create_app
from pitstop.api.deps import Operator
from pitstop.app import Pitstop
from pitstop.core.types import Role
from tests.conftest import auth


def test_liveness_and_readiness(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["models"] == [] and health["models_error"] is None
    assert health["version"] == __version__
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "migrations": "ok", "ingest": "ok"}}


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    client.get("/health")
    body = client.get("/metrics").text
    assert 'pitstop_http_requests_total{method="GET",route="/health",status="200"}' in body


def test_keys_and_roles(client: TestClient, keys: dict[Role, str]) -> None:
    assert client.get("/api/assets").status_code == 401
    assert client.get("/api/assets", headers=auth("ps_bad_key")).status_code == 401
    assert client.get("/api/assets", headers={"X-API-Key": keys[Role.VIEWER]}).status_code == 200
    names = [a["name"] for a in client.get("/api/assets", headers=auth(keys[Role.VIEWER])).json()]
    assert {"ahu-1", "pump-1"} <= set(names)
    inv = {"sites": [{"name": "south"}], "assets": [{"name": "p9", "site": "south", "type": "pump"}]}
    assert client.post("/api/inventory", json=inv, headers=auth(keys[Role.OPERATOR])).status_code == 403
    assert client.get("/api/audit", headers=auth(keys[Role.OPERATOR])).status_code == 403


def test_inventory_through_the_api_is_audited(client: TestClient, keys: dict[Role, str]) -> None:
    inv = {
        "sites": [{"name": "south"}],
        "assets": [{"name": "p9", "site": "south", "type": "pump", "sensors": [{"name": "rms", "period_s": 1}]}],
    }
    first = client.post("/api/inventory", json=inv, headers=auth(keys[Role.ADMIN]))
    assert first.status_code == 200, first.text
    assert first.json()["created"] == 3
    again = client.post("/api/inventory", json=inv, headers=auth(keys[Role.ADMIN])).json()
    assert again["created"] == again["updated"] == 0
    audit = client.get("/api/audit", headers=auth(keys[Role.ADMIN])).json()
    loads = [e for e in audit if e["action"] == "inventory.load" and e["target"] == "api"]
    assert len(loads) == 1
    assert loads[0]["actor"].startswith("key:test-admin:")
    detail = client.get("/api/assets/p9", headers=auth(keys[Role.VIEWER])).json()
    assert detail["sensors"][0]["name"] == "rms"


def test_inventory_errors_are_422_and_write_nothing(client: TestClient, keys: dict[Role, str]) -> None:
    bad = {"sites": [{"name": "s"}], "assets": [{"name": "a", "site": "s", "type": "t", "parent": "ghost"}]}
    response = client.post("/api/inventory", json=bad, headers=auth(keys[Role.ADMIN]))
    assert response.status_code == 422
    assert "unknown parent 'ghost'" in response.json()["error"]["message"]
    assert client.get("/api/assets?site=s", headers=auth(keys[Role.VIEWER])).json() == []


def test_unknown_asset_is_404(client: TestClient, keys: dict[Role, str]) -> None:
    response = client.get("/api/assets/nope", headers=auth(keys[Role.VIEWER]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_readings_window(client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop) -> None:

    from pitstop.core.types import to_epoch_us
    from pitstop.storage.repos.readings import ReadingBatch

    sensor = demo_pitstop.assets.sensor_index()[("pump-1", "vib_rms")]
    t0 = to_epoch_us(demo_pitstop.clock.now())
    demo_pitstop.readings.write(ReadingBatch.of([sensor.id] * 3, [t0, t0 + 10**7, t0 + 2 * 10**7], [1.0, 2.0, 3.0]))
    body = client.get("/api/assets/pump-1/sensors/vib_rms/readings", headers=auth(keys[Role.VIEWER])).json()
    assert body["value"] == [1.0, 2.0, 3.0]
    assert body["ts"][0].startswith("2026-01-05T08:00:00")


def test_docs_are_served_offline(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "/static/swagger/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200


def test_every_api_change_is_audited(demo_pitstop: Pitstop, keys: dict[Role, str]) -> None:
    app = create_app(demo_pitstop)

    @app.post("/api/probe/{thing}")
    def probe(thing: str, _key: Operator) -> dict[str, str]:
        return {"changed": thing}

    with TestClient(app) as c:
        assert c.post("/api/probe/x", headers=auth(keys[Role.OPERATOR])).status_code == 200
        assert c.post("/api/probe/y", headers=auth(keys[Role.VIEWER])).status_code == 403  # refused: no entry
    entries = demo_pitstop.audit.recent()
    probes = [e for e in entries if e.action == "POST /api/probe/{thing}"]
    assert len(probes) == 1
    assert probes[0].target == "/api/probe/x"
    assert probes[0].actor.startswith("key:test-operator:")
