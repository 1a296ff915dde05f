"""The dashboard through the TestClient: login, roles, CSRF, each page on an empty and a demo install."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop.api.app import create_app
from pitstop.app import Pitstop
from pitstop.core.types import Role, Severity
from pitstop.incidents import IncidentState
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.web.session import COOKIE

PAGES = [
    "/ui/",
    "/ui/incidents",
    "/ui/incidents?state=all",
    "/ui/health",
    "/ui/assets",
    "/ui/maintenance",
    "/ui/backups",
    "/ui/kb",
    "/ui/kb?q=disk",
]


def login(client: TestClient, token: str) -> None:
    response = client.post("/ui/login", data={"key": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert COOKIE in client.cookies


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def web(client: TestClient) -> TestClient:
    return client


@pytest.fixture
def incident(demo_pitstop: Pitstop) -> int:
    item, _ = demo_pitstop.incidents.open_or_update("disk.low:/data", severity=Severity.WARNING, title="disk low")
    return item.id


def test_pages_need_a_session(web: TestClient) -> None:
    for page in PAGES:
        response = web.get(page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert web.get("/ui/login").status_code == 200


def test_a_wrong_key_is_refused_and_sets_no_cookie(web: TestClient) -> None:
    response = web.post("/ui/login", data={"key": "ps_nope_nope"}, follow_redirects=False)
    assert response.status_code == 401 and COOKIE not in web.cookies


def test_session_cookie_is_httponly_and_strict(web: TestClient, keys: dict[Role, str]) -> None:
    response = web.post("/ui/login", data={"key": keys[Role.VIEWER]}, follow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert keys[Role.VIEWER] not in response.headers["set-cookie"]


@pytest.mark.parametrize("role", list(Role))
def test_every_page_answers_on_the_demo(web: TestClient, keys: dict[Role, str], incident: int, role: Role) -> None:
    login(web, keys[role])
    for page in [*PAGES, f"/ui/incidents/{incident}", "/ui/assets/pump-1", "/ui/assets/ahu-1?range=30d"]:
        response = web.get(page)
        assert response.status_code == 200, (page, response.text[:500])
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "http://" not in response.text and "https://" not in response.text  # nothing from elsewhere
        assert float(response.headers["server-timing"].removeprefix("app;dur=")) >= 0  # bench/web.py reads it


def test_every_page_answers_on_an_empty_install(pitstop: Pitstop, keys: dict[Role, str]) -> None:
    with TestClient(create_app(pitstop)) as client:
        login(client, keys[Role.ADMIN])
        for page in PAGES:
            assert client.get(page).status_code == 200, page


def test_static_files_are_served(web: TestClient) -> None:
    assert web.get("/ui/static/web.css").status_code == 200
    assert "setInterval" in web.get("/ui/static/web.js").text


def test_a_viewer_sees_no_action_buttons(web: TestClient, keys: dict[Role, str], incident: int) -> None:
    login(web, keys[Role.VIEWER])
    for page in [*PAGES, f"/ui/incidents/{incident}", "/ui/assets/pump-1"]:
        html = web.get(page).text
        assert 'class="action' not in html, page


def test_a_viewer_cannot_act(web: TestClient, keys: dict[Role, str], incident: int) -> None:
    login(web, keys[Role.VIEWER])
    token = csrf_of(web.get("/ui/").text)  # the logout form carries it
    response = web.post(f"/ui/incidents/{incident}/ack", data={"csrf": token}, follow_redirects=False)
    assert response.status_code == 403


def test_an_operator_acknowledges_and_it_is_audited(
    web: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str], incident: int
) -> None:
    login(web, keys[Role.OPERATOR])
    html = web.get("/ui/incidents").text
    assert "Acknowledge" in html
    response = web.post(
        f"/ui/incidents/{incident}/ack", data={"csrf": csrf_of(html), "note": "on it"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert demo_pitstop.incidents.get(incident).state is IncidentState.ACKNOWLEDGED
    entries = demo_pitstop.audit.recent(20)
    assert any(e.action.startswith("POST /ui/incidents") and e.actor.startswith("web:test-operator") for e in entries)
    assert "acknowledge" in web.get(f"/ui/incidents/{incident}").text


def test_an_operator_resolves_with_a_lesson(
    web: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str], incident: int
) -> None:
    login(web, keys[Role.OPERATOR])
    token = csrf_of(web.get(f"/ui/incidents/{incident}").text)
    data = {"csrf": token, "reason": "cleared old recordings", "lesson": "retention was too long"}
    assert web.post(f"/ui/incidents/{incident}/resolve", data=data, follow_redirects=False).status_code == 303
    item = demo_pitstop.incidents.get(incident)
    assert item.state is IncidentState.RESOLVED
    assert [lesson.text for lesson in demo_pitstop.maintenance.kb.lessons(item.key)] == ["retention was too long"]


def test_posts_without_the_csrf_token_are_refused(
    web: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str], incident: int
) -> None:
    login(web, keys[Role.OPERATOR])
    for data in ({}, {"csrf": ""}, {"csrf": "0" * 64}):
        response = web.post(f"/ui/incidents/{incident}/ack", data=data, follow_redirects=False)
        assert response.status_code == 403
    assert demo_pitstop.incidents.get(incident).state is IncidentState.OPEN


def test_run_checks_now(web: TestClient, keys: dict[Role, str]) -> None:
    login(web, keys[Role.OPERATOR])
    token = csrf_of(web.get("/ui/health").text)
    assert web.post("/ui/health/run", data={"csrf": token}, follow_redirects=False).status_code == 303
    html = web.get("/ui/health").text
    assert "<svg" in html and "<td>" in html


def test_a_revoked_key_ends_its_session(web: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]) -> None:
    login(web, keys[Role.VIEWER])
    prefix = next(k.prefix for k in demo_pitstop.keys.list() if k.name == "test-viewer")
    demo_pitstop.keys.revoke(prefix, demo_pitstop.clock.now())
    assert web.get("/ui/", follow_redirects=False).status_code == 303


@pytest.fixture
def operator(client: TestClient, keys: dict[Role, str], incident: int) -> Iterator[tuple[TestClient, str, int]]:
    login(client, keys[Role.OPERATOR])
    yield client, csrf_of(client.get("/ui/").text), incident


text = st.text(max_size=300)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=text, severity=text, area=text, path=st.text(min_size=1, max_size=60), note=text, reason=text)
def test_hostile_input_gets_4xx_not_5xx(
    operator: tuple[TestClient, str, int], state: str, severity: str, area: str, path: str, note: str, reason: str
) -> None:
    client, token, incident = operator
    response = client.get("/ui/incidents", params={"state": state, "severity": severity, "area": area})
    assert response.status_code in {200, 400, 422}
    assert client.get(f"/ui/incidents/{quote(path, safe='')}").status_code < 500
    assert client.get(f"/ui/kb/{quote(path, safe='')}").status_code < 500
    assert client.get(f"/ui/assets/{quote(path, safe='')}").status_code < 500
    assert client.get("/ui/kb", params={"q": state}).status_code in {200, 422}
    assert client.get("/ui/maintenance", params={"asset": area, "kind": severity, "contains": note}).status_code < 500
    response = client.post(
        f"/ui/incidents/{incident}/resolve",
        data={"csrf": token, "reason": reason, "lesson": note},
        follow_redirects=False,
    )
    assert response.status_code in {303, 400}
    response = client.post("/ui/remediations/999999/approve", data={"csrf": token}, follow_redirects=False)
    assert response.status_code in {400, 404}


def test_the_asset_page_plots_decimated_readings(web: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]) -> None:
    sensor = next(s for s in demo_pitstop.assets.sensors("pump-1") if s.name == "vib_rms")
    end_us = int(demo_pitstop.clock.now().timestamp() * 1e6)
    ts = np.arange(end_us - 20_000 * 1_000_000, end_us, 1_000_000, dtype=np.int64)
    values = np.sin(ts / 1e9)
    values[5000] = 99.0  # one spike: decimation keeps it
    demo_pitstop.readings.write(ReadingBatch.of(np.full(len(ts), sensor.id), ts, values))
    login(web, keys[Role.VIEWER])
    html = web.get("/ui/assets/pump-1?range=24h").text
    assert "20,000 readings" in html
    figure = re.search(rf'<script type="application/json" id="chart-{sensor.id}-figure">(.+?)</script>', html)
    assert figure is not None  # the chart's plotly figure (web/plots.py), drawn by static/charts.js
    traces = [t for t in json.loads(figure.group(1))["data"] if t["meta"] == "series"]
    assert traces and all(len(t["y"]) <= 2 * 600 for t in traces)  # buckets, not 20,000 readings
    assert max(y for t in traces for y in t["y"] if y is not None) == 99.0  # the spike survives
    assert web.get("/ui/assets/pump-1?range=1y").status_code == 200
    assert web.get("/ui/assets/pump-1?range=2y").status_code == 400
    assert web.get("/ui/assets/no-such-asset").status_code == 404


def test_knowledge_base_and_log_export(web: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]) -> None:
    login(web, keys[Role.VIEWER])
    entries = demo_pitstop.maintenance.kb.entries()
    if entries:
        assert entries[0].title in web.get(f"/ui/kb/{entries[0].slug}").text
    response = web.get("/ui/maintenance/log.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
