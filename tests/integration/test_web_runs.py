"""Procedure runs and incident actions through the TestClient: the checklist, the work orders it opens,
assign and silence."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from pitstop.app import Pitstop
from pitstop.core.types import Role, Severity
from pitstop.incidents import IncidentState
from tests.integration.test_web_pages import csrf_of, login

PROCEDURE = "weekly-drift-review"  # two automated checks, then three checklist items (two with limits)


@pytest.fixture
def operator(client: TestClient, keys: dict[Role, str]) -> tuple[TestClient, str]:
    login(client, keys[Role.OPERATOR])
    return client, csrf_of(client.get("/ui/procedures").text)


def start(client: TestClient, token: str, procedure: str = PROCEDURE, asset: str = "") -> int:
    response = client.post(
        "/ui/procedures/start", data={"csrf": token, "procedure": procedure, "asset": asset}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/ui/runs/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def test_a_checklist_answered_in_two_goes_opens_a_work_order_for_the_failed_item(
    operator: tuple[TestClient, str], demo_pitstop: Pitstop
) -> None:
    client, token = operator
    run_id = start(client, token)
    page = client.get(f"/ui/runs/{run_id}").text
    assert 'name="value:false-alarms"' in page and 'name="result:notes"' in page

    first = {"csrf": token, "value:false-alarms": "3", "note:false-alarms": "two on fan-1"}
    assert client.post(f"/ui/runs/{run_id}/answers", data=first, follow_redirects=False).status_code == 303
    run = demo_pitstop.maintenance.runner.get(run_id)
    assert run.state == "running"
    assert {s.id: s.status for s in run.steps}["false-alarms"] == "passed"
    assert 'name="value:false-alarms"' not in client.get(f"/ui/runs/{run_id}").text  # answered items leave the form

    rest = {"csrf": token, "value:missed-events": "1", "note:missed-events": "bearing on pump-1"}
    rest["result:notes"] = "pass"
    assert client.post(f"/ui/runs/{run_id}/answers", data=rest, follow_redirects=False).status_code == 303
    run = demo_pitstop.maintenance.runner.get(run_id)
    assert run.state == "failed"
    orders = [o for o in demo_pitstop.maintenance.orders.list(source="procedure") if o.run_id == run_id]
    assert len(orders) == 1 and "missed" in orders[0].title.lower()
    page = client.get(f"/ui/runs/{run_id}").text
    assert 'id="opened-orders"' in page and orders[0].title in page and "bearing on pump-1" in page
    assert 'id="checklist"' not in page
    again = client.post(f"/ui/runs/{run_id}/answers", data=rest, follow_redirects=False)
    assert again.status_code == 400  # a finished run takes no more answers
    assert any(r.id == run_id for r in demo_pitstop.maintenance.runner.runs())
    assert f'href="/ui/runs/{run_id}"' in client.get("/ui/maintenance").text


def test_bad_answers_are_refused_with_the_reason_and_nothing_is_lost(
    operator: tuple[TestClient, str], demo_pitstop: Pitstop
) -> None:
    client, token = operator
    run_id = start(client, token)
    response = client.post(f"/ui/runs/{run_id}/answers", data={"csrf": token, "value:false-alarms": "many"})
    assert response.status_code == 400 and "is not a number" in response.text
    assert client.post(f"/ui/runs/{run_id}/answers", data={"csrf": token}).status_code == 400  # nothing filled in
    assert demo_pitstop.maintenance.runner.get(run_id).state == "running"
    unknown = client.post(
        "/ui/procedures/start", data={"csrf": token, "procedure": "no-such", "asset": ""}, follow_redirects=False
    )
    assert unknown.status_code == 404
    no_asset = client.post(
        "/ui/procedures/start", data={"csrf": token, "procedure": PROCEDURE, "asset": "nope"}, follow_redirects=False
    )
    assert no_asset.status_code == 400
    assert client.get("/ui/runs/999999").status_code == 404


def test_a_viewer_sees_runs_but_cannot_start_or_answer(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]
) -> None:
    run = demo_pitstop.maintenance.runner.start(PROCEDURE, actor="test")
    login(client, keys[Role.VIEWER])
    for page in ("/ui/procedures", f"/ui/runs/{run.id}"):
        html = client.get(page).text
        assert 'class="action' not in html and 'name="value:' not in html
    token = csrf_of(client.get("/ui/procedures").text)
    data = {"csrf": token, "procedure": PROCEDURE}
    assert client.post("/ui/procedures/start", data=data, follow_redirects=False).status_code == 403
    answer = {"csrf": token, "result:notes": "pass"}
    assert client.post(f"/ui/runs/{run.id}/answers", data=answer, follow_redirects=False).status_code == 403


@pytest.fixture
def incident(demo_pitstop: Pitstop) -> int:
    item, _ = demo_pitstop.incidents.open_or_update("disk.low:/data", severity=Severity.WARNING, title="disk low")
    return item.id


def test_an_operator_assigns_and_silences_an_incident(
    operator: tuple[TestClient, str], demo_pitstop: Pitstop, incident: int
) -> None:
    client, token = operator
    url = f"/ui/incidents/{incident}"
    assert client.post(f"{url}/assign", data={"csrf": token, "assignee": "anna"}).status_code == 200
    assert demo_pitstop.incidents.get(incident).assignee == "anna"
    data = {"csrf": token, "for": "4h", "reason": "disk swap tonight"}
    assert client.post(f"{url}/silence", data=data, follow_redirects=False).status_code == 303
    item = demo_pitstop.incidents.get(incident)
    assert item.state is IncidentState.SUPPRESSED
    now = demo_pitstop.clock.now()
    silences = demo_pitstop.alerts.mutes.silences(active_at=now)
    assert [(s.matchers, s.reason) for s in silences] == [({"key": "disk.low:/data"}, "disk swap tonight")]
    assert (silences[0].ends_at - now).total_seconds() == 4 * 3600
    page = client.get(url).text
    assert "Silenced" in page and "disk swap tonight" in page and "anna" in page
    assert client.post(f"{url}/assign", data={"csrf": token, "assignee": ""}).status_code == 200
    assert demo_pitstop.incidents.get(incident).assignee is None


def test_silence_and_assign_refuse_bad_input_and_viewers(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str], incident: int
) -> None:
    login(client, keys[Role.OPERATOR])
    token = csrf_of(client.get("/ui/").text)
    url = f"/ui/incidents/{incident}"
    assert client.post(f"{url}/silence", data={"csrf": token, "for": "1y", "reason": "x"}).status_code == 400
    assert client.post(f"{url}/silence", data={"csrf": token, "for": "1h", "reason": ""}).status_code == 400
    assert client.post(f"{url}/assign", data={"csrf": token, "assignee": "a\x00b"}).status_code == 400
    assert client.post("/ui/incidents/999999/assign", data={"csrf": token, "assignee": "x"}).status_code == 404
    client.cookies.clear()
    login(client, keys[Role.VIEWER])
    token = csrf_of(client.get("/ui/").text)
    assert client.post(f"{url}/silence", data={"csrf": token, "for": "1h", "reason": "x"}).status_code == 403
    assert client.post(f"{url}/assign", data={"csrf": token, "assignee": "x"}).status_code == 403
    assert demo_pitstop.incidents.get(incident).state is IncidentState.OPEN
    assert demo_pitstop.alerts.mutes.silences(active_at=demo_pitstop.clock.now()) == []
