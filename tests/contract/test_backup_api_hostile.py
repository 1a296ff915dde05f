"""The backups API against hostile input: odd set names and damaged manifests get a clear answer, never a 500."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from pitstop.app import Pitstop
from pitstop.core.types import Role
from tests.conftest import auth


def test_not_found_names_the_set_and_never_a_server_path(
    client: TestClient, keys: dict[Role, str], pitstop: Pitstop
) -> None:
    """Issue 15, item 12: a missing set is answered 404 naming the set id, not the backup directory."""
    operator = auth(keys[Role.OPERATOR])
    for name in ("nope", "latest"):  # no sets yet: 'latest' is missing too
        answer = client.post(f"/api/backups/{name}/verify", headers=operator)
        assert answer.status_code == 404, answer.text
        message = answer.json()["error"]["message"]
        assert str(pitstop.settings.data_dir) not in message and "backup" in message, message
    assert "'nope'" in client.post("/api/backups/nope/verify", headers=operator).json()["error"]["message"]


def test_set_names_that_are_paths_are_refused(client: TestClient, keys: dict[Role, str], pitstop: Pitstop) -> None:
    """Issue 15, item 12: set names with dots or encoded slashes are a 400 naming the problem, never a lookup."""
    operator, admin = auth(keys[Role.OPERATOR]), auth(keys[Role.ADMIN])
    assert client.post("/api/backups", headers=admin).status_code == 201
    for name in (".partial-x", "..%2F..%2Fetc", "%2E%2E", "a%5Cb", "x" * 200):
        answer = client.post(f"/api/backups/{name}/verify", headers=operator)
        assert answer.status_code in (400, 404), (name, answer.text)  # 404: the router never matched it
        body = answer.json()["error"]
        if answer.status_code == 400:
            assert body["code"] == "input.invalid" and "not a backup set name" in body["message"], body
        assert str(pitstop.settings.data_dir) not in body["message"], body


def test_damaged_manifests_are_listed_around_and_named_on_verify(
    client: TestClient, keys: dict[Role, str], pitstop: Pitstop
) -> None:
    """Issue 15, item 12: deeply nested or wrongly typed manifests are never a 500 on list or verify."""
    viewer, operator, admin = (auth(keys[r]) for r in (Role.VIEWER, Role.OPERATOR, Role.ADMIN))
    good = client.post("/api/backups", headers=admin).json()["id"]
    backups: Path = pitstop.backup.destination
    manifest = json.loads((backups / good / "manifest.json").read_text())

    nested = backups / "20200101T000000Z-000001"
    nested.mkdir()
    (nested / "manifest.json").write_text("[" * 100_000)
    typed = backups / "20200101T000000Z-000002"
    typed.mkdir()
    manifest["id"] = typed.name
    manifest["sources"][0]["files"][0]["size"] = "big"
    (typed / "manifest.json").write_text(json.dumps(manifest))

    listed = client.get("/api/backups", headers=viewer)
    assert listed.status_code == 200, listed.text
    assert [s["id"] for s in listed.json()] == [good]
    for damaged in (nested, typed):
        answer = client.post(f"/api/backups/{damaged.name}/verify", headers=operator)
        assert answer.status_code == 400, answer.text
        message = answer.json()["error"]["message"]
        assert f"set {damaged.name}: the manifest is damaged" in message, message
        assert str(backups) not in message
    assert client.post("/api/backups/latest/verify", headers=operator).json()["set_id"] == good
