"""`POST /predict/{model}` answered ahead of the framework answers as the framework does, and hands
everything unusual (errors, unknown or revoked keys, odd bodies) to the FastAPI route."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pitstop.api.routers.models import PredictFastPath
from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.ml.registry import Mode
from pitstop.storage.repos.keys import KeyRepo
from tests.conftest import auth
from tests.integration.test_models_lifecycle import coil_frame

NAME = "hvac-twin"


@pytest.fixture
def rows(demo_pitstop: Pitstop) -> list[list[float]]:
    frame = coil_frame("2026-03-01", 6)
    demo_pitstop.models.retrain(NAME, frame, params={"n_estimators": 20})
    values: list[list[float]] = frame.iloc[:3, :6].to_numpy().tolist()
    return values


def fast_count(client: TestClient, headers: dict[str, str]) -> float:
    """Requests the fast path answered (it counts 200s of the route; the framework counts the rest too)."""
    text = client.get("/metrics", headers=headers).text
    line = 'pitstop_http_requests_total{method="POST",route="/predict/{model}",status="200"}'
    return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)


def test_the_fast_answer_is_the_framework_answer(
    demo_pitstop: Pitstop, client: TestClient, keys: dict[Role, str], rows: list[list[float]]
) -> None:
    headers = auth(keys[Role.VIEWER])
    first = client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers)  # key not yet verified: framework
    assert first.status_code == 200, first.text
    assert demo_pitstop.keys.cached(keys[Role.VIEWER]) is not None
    second = client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers)  # the fast path
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert fast_count(client, headers) == 2
    # the other way of giving the key, and an operator key, are as good
    for other in ({"X-API-Key": keys[Role.VIEWER]}, auth(keys[Role.OPERATOR])):
        client.post(f"/predict/{NAME}", json={"rows": rows}, headers=other)
        assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=other).content == first.content


def test_errors_come_from_the_framework_with_a_verified_key(
    client: TestClient, keys: dict[Role, str], rows: list[list[float]]
) -> None:
    headers = auth(keys[Role.VIEWER])
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers).status_code == 200
    wrong_width = client.post(f"/predict/{NAME}", json={"rows": [[1.0, 2.0]]}, headers=headers)
    assert wrong_width.status_code == 400 and wrong_width.json()["error"]["code"] == "input.invalid"
    not_finite = client.post(f"/predict/{NAME}", content=b'{"rows": [[NaN, 1, 2, 3, 4, 5]]}', headers=headers)
    assert not_finite.status_code in (400, 422)
    empty = client.post(f"/predict/{NAME}", json={"rows": []}, headers=headers)
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "request.invalid"
    broken = client.post(
        f"/predict/{NAME}", content=b'{"rows": [[1,', headers={**headers, "content-type": "application/json"}
    )
    assert broken.status_code == 422
    unknown = client.post("/predict/nope-twin", json={"rows": rows}, headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    bad_name = client.post("/predict/-bad name", json={"rows": rows}, headers=headers)
    assert bad_name.status_code == 422
    form = client.post(f"/predict/{NAME}", data={"rows": "1"}, headers=headers)
    assert form.status_code == 422
    assert client.post(f"/predict/{NAME}", json={"rows": rows}).status_code == 401
    wrong_scheme = client.post(
        f"/predict/{NAME}", json={"rows": rows}, headers={"Authorization": f"Basic {keys[Role.VIEWER]}"}
    )
    assert wrong_scheme.status_code == 401 and wrong_scheme.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_is_refused_at_once_here_and_within_the_ttl_elsewhere(
    demo_pitstop: Pitstop, client: TestClient, keys: dict[Role, str], rows: list[list[float]]
) -> None:
    token = keys[Role.VIEWER]
    headers = auth(token)
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers).status_code == 200
    prefix = token.split("_")[1]
    # revoked by another process (another repository over the same database): honoured after the ttl
    assert KeyRepo(demo_pitstop.db).revoke(prefix, demo_pitstop.clock.now())
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers).status_code == 200
    demo_pitstop.keys.ttl = 0.0  # as if the ttl had passed
    refused = client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "http.401"
    # revoked through this process's repository: at once
    demo_pitstop.keys.ttl = 3600.0
    operator = auth(keys[Role.OPERATOR])
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=operator).status_code == 200
    assert demo_pitstop.keys.revoke(keys[Role.OPERATOR].split("_")[1], demo_pitstop.clock.now())
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=operator).status_code == 401


def test_a_promotion_is_served_by_the_next_request(
    demo_pitstop: Pitstop, client: TestClient, keys: dict[Role, str], rows: list[list[float]]
) -> None:
    headers = auth(keys[Role.VIEWER])
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers).json()["version"] == 1

    second = demo_pitstop.models.retrain(
        NAME, coil_frame("2026-03-01", 6), params={"n_estimators": 30}, mode=Mode.MANUAL
    )
    demo_pitstop.models.registry.promote(NAME, second.version.version, actor="test", reason="reviewed")
    assert client.post(f"/predict/{NAME}", json={"rows": rows}, headers=headers).json()["version"] == 2


class _Inner:
    """Records what the application behind the fast path received."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        self.calls.append(messages)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _call(app: Any, token: str, chunks: list[bytes], tail: list[dict[str, Any]] | None = None) -> int:
    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    if tail is not None:
        incoming[-1]["more_body"] = True
        incoming += tail
    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/predict/{NAME}",
        "headers": [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")],
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    # A thread of its own: a session-wide fixture (the browser tests' Playwright) may keep an event
    # loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(app(scope, receive, send))).result()
    return status[0]


def test_what_goes_on_to_the_framework_is_the_body_as_sent(
    demo_pitstop: Pitstop, keys: dict[Role, str], rows: list[list[float]]
) -> None:
    token = keys[Role.VIEWER]
    assert demo_pitstop.keys.authenticate(token) is not None
    inner = _Inner()
    app = PredictFastPath(inner, demo_pitstop)
    body = b'{"rows": [[1.0, 2.0]]}'
    assert _call(app, token, [body[:5], body[5:12], body[12:]]) == 299  # refused rows: replayed whole
    assert inner.calls[-1] == [{"type": "http.request", "body": body, "more_body": False}]
    disconnect = {"type": "http.disconnect"}
    assert _call(app, token, [body[:5]], tail=[disconnect]) == 299  # the client left mid-body
    assert inner.calls[-1] == [{"type": "http.request", "body": body[:5], "more_body": True}, disconnect]
    good = b'{"rows": ' + str(rows).encode() + b"}"
    assert _call(app, token, [good[:7], good[7:]]) == 200  # answered here, in chunks too
    assert len(inner.calls) == 2
