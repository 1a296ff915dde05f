"""GET /api/assets/{name}/findings: stored stream-scoring findings, for viewers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.ml.explanations import Contribution
from pitstop.ml.scoring import Finding
from tests.conftest import auth

T0 = datetime(2026, 1, 2, tzinfo=UTC)


def _finding(start: datetime) -> Finding:
    signals = [Contribution("UCWF", 0.6), Contribution("UCAOT", 0.3)]
    return Finding("ahu-1", start, start + timedelta(hours=2), 40, 600, 9.5, 3.0, signals, "twin residuals")


def test_findings_are_listed_newest_first_once_each(
    client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop
) -> None:
    empty = client.get("/api/assets/ahu-1/findings", headers=auth(keys[Role.VIEWER])).json()
    assert empty["findings"] == []
    assert empty["scoring"]["state"] == "waiting" and "waits for readings" in empty["scoring"]["summary"]
    assert client.post("/ui/login", data={"key": keys[Role.VIEWER]}, follow_redirects=False).status_code == 303
    page = client.get("/ui/assets/ahu-1")
    assert page.status_code == 200 and "Anomaly scoring" in page.text and "waits for readings" in page.text
    for start in (T0, T0 + timedelta(days=1), T0):  # the same evidence window twice: stored once
        demo_pitstop.scoring.report(_finding(start))
    body = client.get("/api/assets/ahu-1/findings", headers=auth(keys[Role.VIEWER])).json()
    assert [f["start"] for f in body["findings"]] == [(T0 + timedelta(days=1)).isoformat(), T0.isoformat()]
    newest = body["findings"][0]
    assert newest["incident_key"] == "asset.anomaly:ahu-1"
    assert newest["explanation"] == {
        "explained_by": "twin residuals",
        "top_signals": [{"signal": "UCWF", "share": 0.6}, {"signal": "UCAOT", "share": 0.3}],
    }
    assert (newest["score"], newest["cutoff"], newest["flagged_rows"], newest["scored_rows"]) == (9.5, 3.0, 40, 600)
    since = (T0 + timedelta(hours=12)).isoformat()
    recent = client.get("/api/assets/ahu-1/findings", params={"since": since}, headers=auth(keys[Role.VIEWER]))
    assert len(recent.json()["findings"]) == 1
    assert demo_pitstop.incidents.active("asset.anomaly:ahu-1") is not None


def test_findings_need_a_key_and_a_known_asset(client: TestClient, keys: dict[Role, str]) -> None:
    assert client.get("/api/assets/ahu-1/findings").status_code == 401
    assert client.get("/api/assets/nope/findings", headers=auth(keys[Role.VIEWER])).status_code == 404
    bad = client.get("/api/assets/ahu-1/findings", params={"limit": 0}, headers=auth(keys[Role.VIEWER]))
    assert bad.status_code == 422
