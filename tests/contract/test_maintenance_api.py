"""The maintenance API: roles, work orders, runs, planning, the log, KPIs, the knowledge base; hostile input."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop.core.types import Role
from pitstop.incidents.windows import MuteStore, recurring
from tests.conftest import auth


def test_work_orders_through_the_api(client: TestClient, keys: dict[Role, str]) -> None:
    viewer, operator = auth(keys[Role.VIEWER]), auth(keys[Role.OPERATOR])
    body = {"key": "inspect.belt", "title": "Belt worn", "asset": "fan-1", "estimated_h": 2, "severity": "critical"}
    assert client.post("/api/workorders", json=body, headers=viewer).status_code == 403
    first = client.post("/api/workorders", json=body, headers=operator).json()
    again = client.post("/api/workorders", json={**body, "title": "Belt worn badly"}, headers=operator).json()
    assert first["created"] and not again["created"] and again["id"] == first["id"]
    listed = client.get("/api/workorders", headers=viewer).json()
    assert [o["title"] for o in listed] == ["Belt worn badly"]
    oid = first["id"]
    assert client.post(f"/api/workorders/{oid}/start", headers=operator).json()["state"] == "in_progress"
    closed = client.post(
        f"/api/workorders/{oid}/close", json={"actual_h": 1.5, "parts": ["belt B-42"]}, headers=operator
    )
    assert closed.json()["state"] == "done" and closed.json()["parts"] == ["belt B-42"]
    verified = client.post(f"/api/workorders/{oid}/verify", json={"confirmed": True}, headers=operator).json()
    assert verified["state"] == "verified"
    assert client.get("/api/workorders?state=verified", headers=viewer).json()[0]["id"] == oid
    assert client.get("/api/workorders?state=bogus", headers=viewer).status_code == 400
    assert client.get("/api/workorders/999999", headers=viewer).status_code == 404
    assert client.post(f"/api/workorders/{oid}/start", headers=operator).status_code == 400


def test_runs_log_and_kpis_through_the_api(client: TestClient, keys: dict[Role, str]) -> None:
    viewer, operator = auth(keys[Role.VIEWER]), auth(keys[Role.OPERATOR])
    names = [p["name"] for p in client.get("/api/procedures", headers=viewer).json()]
    assert "emergency-restore" in names
    run = client.post(
        "/api/procedures/emergency-restore/runs",
        json={"answers": {"declare": {"passed": True}, "assess": {"passed": False, "note": "host dead"}}},
        headers=operator,
    ).json()
    assert run["state"] == "running" and run["version"] == 1
    for step in ("restore", "verify", "stand-down"):
        run = client.post(
            f"/api/procedure-runs/{run['id']}/answers", json={"step": step, "passed": True}, headers=operator
        ).json()
    assert run["state"] == "failed"
    orders = client.get("/api/workorders", headers=viewer).json()
    assert [o["key"] for o in orders] == ["procedure.emergency-restore.assess"]
    log = client.get("/api/maintenance-log?kind=procedure_run", headers=viewer).json()
    assert log[0]["issues"].startswith("assess: failed")
    entry = client.post(
        "/api/maintenance-log",
        json={
            "kind": "model_promotion",
            "summary": "promoted ahu twin v3",
            "asset": "ahu-1",
            "evidence": ["models/v3"],
        },
        headers=operator,
    )
    assert entry.status_code == 200 and entry.json()["site"] == "north-plant"
    csv = client.get("/api/maintenance-log?format=csv&asset=ahu-1", headers=viewer)
    assert csv.headers["content-type"].startswith("text/csv") and "promoted ahu twin v3" in csv.text
    kpis = client.get("/api/maintenance/kpis", headers=viewer).json()
    assert kpis["backlog"]["orders"] == 1 and kpis["self_healing"]["success_pct"] is None
    assert "total" in client.get("/api/maintenance/compliance?site=north-plant", headers=viewer).json()
    page = client.get("/api/maintenance/report?month=2026-01", headers=viewer)
    assert page.status_code == 200 and "<h1>Maintenance report 2026-01</h1>" in page.text


def test_planning_and_capacity_through_the_api(client: TestClient, keys: dict[Role, str]) -> None:
    operator = auth(keys[Role.OPERATOR])
    pitstop = client.app.state.pitstop  # type: ignore[attr-defined]
    MuteStore(pitstop.db).add_window(
        recurring("night", {"site": "*"}, days="daily", start="22:00", end="02:00"), now=pitstop.clock.now()
    )
    assert client.put("/api/windows/nowhere/capacity", json={"capacity_h": 4}, headers=operator).status_code == 404
    cap = client.put("/api/windows/night/capacity", json={"capacity_h": 4, "fallback": "next"}, headers=operator)
    assert cap.status_code == 200
    for i in range(3):
        client.post("/api/workorders", json={"key": f"t.{i}", "title": "t", "estimated_h": 3}, headers=operator)
    plan = client.post("/api/plan", json={"horizon": "2d"}, headers=operator).json()
    assert len(plan["placed"]) == 2 and len(plan["unplaced"]) == 1
    assert all(w["used_h"] <= w["capacity_h"] for w in plan["windows"])
    assert client.post("/api/plan", json={"horizon": "soon"}, headers=operator).status_code == 400


def test_kb_and_lessons_through_the_api(client: TestClient, keys: dict[Role, str]) -> None:
    viewer, operator = auth(keys[Role.VIEWER]), auth(keys[Role.OPERATOR])
    hits = client.get("/api/kb/search?q=disk%20retention", headers=viewer).json()
    assert hits[0]["slug"] == "storage-space"
    recs = client.get("/api/kb/recommendations?issue=disk.low:/var/lib/vms", headers=viewer).json()
    assert [r["slug"] for r in recs] == ["storage-space"]
    assert client.get("/api/kb/entries/storage-space", headers=viewer).json()["body"]
    lesson = client.post(
        "/api/lessons",
        json={"incident_key": "link.down:plc-3", "text": "Firmware update reset the IP."},
        headers=operator,
    ).json()
    entry = client.post(f"/api/lessons/{lesson['id']}/promote", json={}, headers=operator).json()
    assert entry["origin"] == "lesson" and entry["issue_keys"] == ["link.down"]


_text = st.text(max_size=60)
_value = st.one_of(
    st.none(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), _text, st.booleans()
)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "key": _value,
            "title": _value,
            "asset": _value,
            "severity": _value,
            "estimated_h": _value,
            "due_at": _value,
            "detail": _value,
        },
    )
)
def test_hostile_work_order_bodies_never_crash(client: TestClient, keys: dict[Role, str], body: dict[str, Any]) -> None:
    response = client.post("/api/workorders", json=body, headers=auth(keys[Role.OPERATOR]))
    assert response.status_code in (200, 400, 404, 422), response.text


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    name=st.sampled_from(["emergency-restore", "nope"]),  # offline procedures only
    asset=_text,
    answers=st.dictionaries(
        st.sampled_from(["declare", "assess", "battery", "link", "zzz", ""]),
        st.fixed_dictionaries({}, optional={"value": _value, "passed": _value, "note": _value, "attachment": _value}),
        max_size=4,
    ),
)
def test_hostile_run_requests_never_crash(
    client: TestClient, keys: dict[Role, str], name: str, asset: str, answers: dict[str, Any]
) -> None:
    response = client.post(
        f"/api/procedures/{name}/runs", json={"asset": asset, "answers": answers}, headers=auth(keys[Role.OPERATOR])
    )
    assert response.status_code in (200, 400, 404, 422), response.text


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    q=st.text(max_size=100),
    issue=st.text(min_size=1, max_size=100),
    kind=_text,
    fmt=st.sampled_from(["json", "csv", "xml"]),
)
def test_hostile_queries_never_crash(
    client: TestClient, keys: dict[Role, str], q: str, issue: str, kind: str, fmt: str
) -> None:
    viewer = auth(keys[Role.VIEWER])
    for path, params in (
        ("/api/kb/search", {"q": q}),
        ("/api/kb/recommendations", {"issue": issue}),
        ("/api/maintenance-log", {"kind": kind, "format": fmt, "contains": q}),
        ("/api/workorders", {"asset": kind, "state": kind}),
        ("/api/procedure-runs", {"asset": kind, "procedure": q}),
        ("/api/maintenance/kpis", {"site": kind}),
        ("/api/maintenance/compliance", {"site": kind}),
        ("/api/maintenance/report", {"site": kind, "month": "2026-01"}),
    ):
        response = client.get(path, params=params, headers=viewer)
        assert response.status_code in (200, 400, 422), (path, response.text)
    from urllib.parse import quote

    for path in (f"/api/kb/entries/{quote(kind, safe='')}", f"/api/procedures/{quote(kind, safe='')}"):
        assert client.get(path, headers=viewer).status_code in (200, 400, 404, 422)
