"""Dashboard sessions against hostile cookies and tokens, logout on the server, and what the audit log keeps."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pitstop.app import Pitstop
from pitstop.core.types import Role, Severity
from pitstop.incidents import IncidentState
from pitstop.web.session import COOKIE
from tests.integration.test_web_pages import csrf_of, login

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def incident(demo_pitstop: Pitstop) -> int:
    item, _ = demo_pitstop.incidents.open_or_update("disk.low:/data", severity=Severity.WARNING, title="disk low")
    return item.id


@pytest.mark.parametrize("value", ["abc.1.x.é", "é", "ps.9999999999.ab.\u00ff" * 3, "a.b.c.d\u00e9\u00e9"])
def test_a_non_ascii_session_cookie_gets_the_login_page(client: TestClient, value: str) -> None:
    """Issue 15, item 4: a session cookie with non-ASCII characters is an invalid session, not a 500."""
    header = f"{COOKIE}={value}".encode()  # as a browser may send it: raw bytes, not ASCII
    for page in ("/ui/", "/ui/incidents"):
        response = client.get(page, headers={"Cookie": header}, follow_redirects=False)  # type: ignore[dict-item]
        assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    response = client.post("/ui/health/run", headers={"Cookie": header}, follow_redirects=False)  # type: ignore[dict-item]
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"


def test_a_non_ascii_csrf_token_is_refused(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str], incident: int
) -> None:
    """Issue 15, item 4: a CSRF token with non-ASCII characters is a wrong token (403), not a 500."""
    login(client, keys[Role.OPERATOR])
    for body in (b"csrf=%C3%A9&note=x", b"csrf=" + b"%C3%A9" * 40, b"csrf=%FF%FE"):
        response = client.post(f"/ui/incidents/{incident}/ack", content=body, headers=FORM, follow_redirects=False)
        assert response.status_code == 403, (body, response.text[:200])
    assert demo_pitstop.incidents.get(incident).state is IncidentState.OPEN


def test_an_anonymous_post_is_not_audited_as_a_change(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str], incident: int
) -> None:
    """Issue 15, item 5: a POST sent to the login page changed nothing, so the audit log has no entry for it;
    the same action by a logged-in operator is a change and is audited."""
    for path in (f"/ui/incidents/{incident}/resolve", f"/ui/incidents/{incident}/ack", "/ui/health/run"):
        response = client.post(path, data={"reason": "x"}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert demo_pitstop.incidents.get(incident).state is IncidentState.OPEN
    assert [e for e in demo_pitstop.audit.recent(100) if e.action.startswith("POST /ui/")] == []

    login(client, keys[Role.OPERATOR])
    token = csrf_of(client.get(f"/ui/incidents/{incident}").text)
    response = client.post(
        f"/ui/incidents/{incident}/resolve", data={"csrf": token, "reason": "done"}, follow_redirects=False
    )
    assert response.status_code == 303
    resolved = [e for e in demo_pitstop.audit.recent(100) if e.action == "POST /ui/incidents/{incident_id}/resolve"]
    assert len(resolved) == 1 and resolved[0].actor.startswith("web:test-operator:")
    assert resolved[0].detail == {"status": 303}


def test_logout_ends_the_session_on_the_server(client: TestClient, keys: dict[Role, str]) -> None:
    """Issue 15, item 9: after logout, a copy of the session cookie opens nothing."""
    login(client, keys[Role.VIEWER])
    copied = client.cookies[COOKIE]
    other = TestClient(client.app)  # somebody else holding a copy of the cookie
    other.cookies.set(COOKIE, copied)
    assert other.get("/ui/", follow_redirects=False).status_code == 200
    token = csrf_of(client.get("/ui/").text)
    response = client.post("/ui/logout", data={"csrf": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    for page in ("/ui/", "/ui/incidents"):
        response = other.get(page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/ui/login", page
    login(client, keys[Role.VIEWER])  # a new login is a new session
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    assert other.get("/ui/", follow_redirects=False).status_code == 303
