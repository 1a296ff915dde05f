"""Every operation of the OpenAPI spec, fed generated (and hostile) input, never answers 5xx; nor do the
dashboard and the API given hostile session cookies, CSRF tokens and API keys."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop import inventory
from pitstop.api import create_app
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Role, Severity
from pitstop.incidents import IncidentState
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.web.session import COOKIE
from tests.conftest import DEMO_INVENTORY


@pytest.fixture
def api(tmp_path: Path) -> tuple[schemathesis.schemas.BaseSchema, dict[str, str]]:
    db = Database(f"sqlite:///{tmp_path / 'fuzz.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path), clock=FrozenClock(), db=db)
    inventory.apply(db, inventory.read_file(DEMO_INVENTORY), actor="test", now=pitstop.clock.now())
    _, token = pitstop.keys.create("fuzz", Role.ADMIN, pitstop.clock.now())
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(pitstop)), {"Authorization": f"Bearer {token}"}


def test_no_operation_answers_5xx(api: tuple[schemathesis.schemas.BaseSchema, dict[str, str]]) -> None:
    schema, headers = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, f"{case.operation.label}: {response.status_code} {response.text[:300]}"

        call()


@pytest.fixture
def demo(tmp_path: Path) -> Pitstop:
    db = Database(f"sqlite:///{tmp_path / 'hostile.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path), clock=FrozenClock(), db=db)
    inventory.apply(db, inventory.read_file(DEMO_INVENTORY), actor="test", now=pitstop.clock.now())
    return pitstop


# Header-safe text (a header cannot hold CR, LF or NUL), non-ASCII included; sent as UTF-8 bytes.
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00")
_PIECE = st.text(_CHARS, max_size=70)
HOSTILE = st.one_of(
    st.just(""),
    _PIECE,
    st.text(_CHARS, min_size=290, max_size=5000),  # around and far over the session cookie's 300 characters
    st.builds(lambda *parts: ".".join(parts), _PIECE, _PIECE, _PIECE, _PIECE),  # a cookie's shape, made up
    st.sampled_from(["abc.1.x.\u00e9", "\u00e9", ".", "...", "a.9999999999999999999999.x." + "0" * 64, "%C3%A9"]),
)


def _mutations(real: str) -> st.SearchStrategy[str]:
    """A real session cookie, damaged: cut, extended, its signature replaced, a character swapped."""
    body, _, signature = real.rpartition(".")
    return st.one_of(
        st.integers(0, len(real)).map(lambda n: real[:n]),
        _PIECE.map(lambda extra: real + extra),
        _PIECE.map(lambda sig: f"{body}.{sig}"),
        st.tuples(st.integers(0, len(real) - 1), _CHARS).map(lambda t: real[: t[0]] + t[1] + real[t[0] + 1 :]),
        st.just(f"{body}.{signature.upper()}"),
    )


def test_hostile_cookies_and_tokens_never_answer_5xx(demo: Pitstop) -> None:
    """Issue 15, item 4: session cookies, CSRF tokens and API keys that are non-ASCII, huge, empty or
    badly signed get the login page, a 401 or a 403 from the dashboard and the API, never a 5xx."""
    _, operator = demo.keys.create("fuzz", Role.OPERATOR, demo.clock.now())
    item, _ = demo.incidents.open_or_update("disk.low:/data", severity=Severity.WARNING, title="disk low")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with TestClient(create_app(demo)) as client:
        assert client.post("/ui/login", data={"key": operator}, follow_redirects=False).status_code == 303
        real = client.cookies[COOKIE]
        client.cookies.clear()  # every request below names its cookie itself
        page = client.get("/ui/", headers={"Cookie": f"{COOKIE}={real}"}).text
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert match
        token = match.group(1)

        @given(cookie=st.one_of(HOSTILE, _mutations(real)), csrf=HOSTILE, raw=st.binary(max_size=100))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(cookie: str, csrf: str, raw: bytes) -> None:
            hostile = f"{COOKIE}={cookie}".encode()
            session = f"{COOKIE}={real}".encode()
            for csrf_field in (quote_from_bytes(csrf.encode()), quote_from_bytes(raw)):
                body = f"csrf={csrf_field}&note=x&reason=x".encode()
                answers = [
                    client.get("/ui/", headers={"Cookie": hostile}, follow_redirects=False),  # type: ignore[dict-item]
                    client.get(f"/ui/incidents/{item.id}", headers={"Cookie": hostile}, follow_redirects=False),  # type: ignore[dict-item]
                    client.post(f"/ui/incidents/{item.id}/ack", content=body, headers={**form, "Cookie": hostile}),  # type: ignore[dict-item]
                    client.post("/ui/logout", content=body, headers={**form, "Cookie": hostile}),  # type: ignore[dict-item]
                    client.get("/api/assets", headers={"Cookie": hostile, "X-API-Key": cookie.encode()}),  # type: ignore[dict-item]
                    client.get("/api/incidents", headers={"Authorization": b"Bearer " + cookie.encode()}),  # type: ignore[dict-item]
                ]
                for response in answers:
                    assert response.status_code < 500, (response.request.url, response.text[:300])
                # With the real session, a wrong token is refused (the session and the incident stay as they were).
                for path in (f"/ui/incidents/{item.id}/ack", "/ui/logout"):
                    response = client.post(path, content=body, headers={**form, "Cookie": session})  # type: ignore[dict-item]
                    assert response.status_code == 403 or csrf_field == token, (path, response.status_code)

        call()
        assert demo.incidents.get(item.id).state is IncidentState.OPEN
        assert client.get("/ui/", headers={"Cookie": f"{COOKIE}={real}"}, follow_redirects=False).status_code == 200


HOSTILE_BODIES = [
    b'{"note":1' + b"0" * 400 + b"}",  # an integer no float holds
    b'{"note":NaN,"value":Infinity}',
    b"[" * 600 + b"]" * 600,
    b"[" * 3000 + b"]" * 3000,
    b"{" * 100_000,
    b"\xff\xfe not UTF-8",
    b"",
    b'{"note":"' + b"x" * 500_000 + b'"}',
    b'[1, "two", null, {"a": [true]}]',
]


def test_hostile_json_bodies_to_every_operation_never_answer_5xx(demo: Pitstop) -> None:
    """Issue 15: the ingest fuzz's hostile payloads (huge integers, NaN/Infinity, deep nesting, invalid
    UTF-8, empty, giant strings, wrong types) as the body of every operation that takes one."""
    _, token = demo.keys.create("fuzz", Role.ADMIN, demo.clock.now())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with TestClient(create_app(demo)) as client:
        spec = client.get("/openapi.json").json()
        operations = [
            (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
            for path, item in spec["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict) and "requestBody" in operation
        ]
        assert len(operations) >= 10
        for method, path in operations:
            for body in HOSTILE_BODIES:
                response = client.request(method, path, content=body, headers=headers)
                assert response.status_code < 500, f"{method} {path} {body[:40]!r}: {response.text[:300]}"


def test_times_at_the_ends_of_the_calendar_are_refused_not_500(demo: Pitstop) -> None:
    """Found by the schemathesis run: `GET /api/maintenance/kpis?until=0001-01-01T00:00:00Z` answered 500
    (a 30-day window before year 1 overflows). Every time the API takes is from 1970 to 9998: 422."""
    _, token = demo.keys.create("fuzz", Role.ADMIN, demo.clock.now())
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(demo)) as client:
        spec = client.get("/openapi.json").json()
        queried = [
            (path, parameter["name"])
            for path, item in spec["paths"].items()
            for parameter in item.get("get", {}).get("parameters", [])
            if parameter["name"] in ("since", "until", "start", "end") and "{" not in path
        ]
        assert len(queried) >= 6
        for path, name in queried:
            for value in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
                response = client.get(path, params={name: value}, headers=headers)
                assert response.status_code == 422, f"{path}?{name}={value}: {response.text[:200]}"
        body = {"ended_at": "0001-01-01T00:00:00Z", "failed": True, "code": "bearing_wear"}
        assert client.post("/api/assets/pump-1/life-ends", json=body, headers=headers).status_code == 422
