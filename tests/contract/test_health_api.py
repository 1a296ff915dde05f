"""The health and incident routes: roles, shapes, and hostile input never answers 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from pitstop.api import create_app
from pitstop.app import Pitstop
from pitstop.core.types import Role, Severity
from tests.conftest import auth


def test_report_incidents_silences_windows_with_roles(
    client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop
) -> None:
    viewer, operator = auth(keys[Role.VIEWER]), auth(keys[Role.OPERATOR])
    assert client.get("/api/health/report").status_code == 401
    demo_pitstop.health.run_checks()
    report = client.get("/api/health/report", headers=viewer).json()
    assert report["status"] in ("healthy", "warning", "critical", "unknown")
    assert {a["name"] for a in report["assets"]} >= {"pump-1", "ahu-1"}
    assert all(0 <= a["completeness"] <= 1 for a in report["assets"])
    assert client.get("/api/health/checks?check=disk", headers=viewer).json()[0]["check"] == "disk"

    inc, _ = demo_pitstop.incidents.open_or_update("disk.low:/data", severity=Severity.WARNING, title="low")
    assert client.get("/api/incidents", headers=viewer).json()[0]["key"] == "disk.low:/data"
    assert client.post(f"/api/incidents/{inc.id}/ack", json={}, headers=viewer).status_code == 403
    acked = client.post(f"/api/incidents/{inc.id}/ack", json={"note": "on it"}, headers=operator).json()
    assert acked["state"] == "acknowledged" and acked["change"] == "acknowledged"
    assigned = client.post(f"/api/incidents/{inc.id}/assign", json={"assignee": "bo"}, headers=operator).json()
    assert assigned["assignee"] == "bo"
    done = client.post(f"/api/incidents/{inc.id}/resolve", json={"reason": "cleaned"}, headers=operator).json()
    assert done["state"] == "resolved"
    again = client.post(f"/api/incidents/{inc.id}/resolve", json={"reason": "x"}, headers=operator)
    assert again.status_code == 400
    detail = client.get(f"/api/incidents/{inc.id}", headers=viewer).json()
    assert [e["action"] for e in detail["timeline"]] == ["opened", "acknowledged", "assigned", "resolved"]
    assert detail["timeline"][1]["actor"].startswith("key:test-operator:")
    assert client.get("/api/incidents/999999", headers=viewer).status_code == 404

    body = {"matchers": {"asset": "pump-1"}, "reason": "bearing swap", "duration_s": 3600}
    assert client.post("/api/silences", json=body, headers=viewer).status_code == 403
    silence = client.post("/api/silences", json=body, headers=operator).json()
    assert silence["creator"].startswith("key:test-operator:")
    assert [s["id"] for s in client.get("/api/silences", headers=viewer).json()] == [silence["id"]]
    client.post(f"/api/silences/{silence['id']}/expire", headers=operator)
    assert client.get("/api/silences", headers=viewer).json() == []
    window = {"name": "sunday", "matchers": {"site": "north-plant"}, "days": "sun", "start": "02:00", "end": "04:00"}
    made = client.post("/api/windows", json=window, headers=operator).json()
    assert made["schedule"] == "sun 02:00-04:00 UTC"
    assert client.post("/api/windows", json=window, headers=operator).status_code == 400  # same name
    bad = client.post("/api/windows", json={**window, "name": "x", "days": "someday"}, headers=operator)
    assert bad.status_code == 400 and "weekday" in bad.json()["error"]["message"]


@pytest.fixture
def schema(demo_pitstop: Pitstop) -> Iterator[tuple[schemathesis.schemas.BaseSchema, dict[str, str]]]:
    _, token = demo_pitstop.keys.create("fuzz", Role.ADMIN, demo_pitstop.clock.now())
    demo_pitstop.incidents.open_or_update("disk.low:/data", severity=Severity.WARNING, title="low")
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(demo_pitstop)), auth(token)


def test_hostile_input_never_answers_5xx(schema: tuple[schemathesis.schemas.BaseSchema, dict[str, str]]) -> None:
    spec, headers = schema
    mine = ("/api/health", "/api/incidents", "/api/silences", "/api/windows", "/api/alerts")
    operations = [r.ok() for r in spec.get_all_operations()]
    operations = [op for op in operations if op.path.startswith(mine)]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, f"{case.operation.label}: {response.status_code} {response.text[:300]}"

        call()
