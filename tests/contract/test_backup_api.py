"""The backups API: roles, run, list, verify, drill, and the record."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pitstop.core.types import Role
from tests.conftest import auth


def test_backups_through_the_api(client: TestClient, keys: dict[Role, str]) -> None:
    viewer, operator, admin = (auth(keys[r]) for r in (Role.VIEWER, Role.OPERATOR, Role.ADMIN))
    assert client.get("/api/backups", headers=viewer).json() == []
    assert client.post("/api/backups", headers=operator).status_code == 403
    created = client.post("/api/backups", headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["sources"] == ["pitstop-db"] and body["files"] == 1
    assert [s["id"] for s in client.get("/api/backups", headers=viewer).json()] == [body["id"]]

    verified = client.post("/api/backups/latest/verify", headers=operator).json()
    assert verified == {"set_id": body["id"], "ok": True, "problems": []}
    assert client.post("/api/backups/nope/verify", headers=operator).status_code == 404
    drill = client.post("/api/backups/drill", headers=admin).json()
    assert drill["ok"] is True and drill["within_rto"] is True

    runs = client.get("/api/backups/runs", headers=viewer).json()
    assert [r["kind"] for r in runs] == ["drill", "verify", "backup"]
    assert client.get("/api/backups/runs?kind=bogus", headers=viewer).status_code == 422
