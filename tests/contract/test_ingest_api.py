"""POST /api/readings: JSON list, wide JSON, CSV; counts; 413, 415, 422; roles; and a fuzz."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop.app import Pitstop
from pitstop.config.models import MqttSettings
from pitstop.core.types import Role
from pitstop.ingest.mqtt import Message, TopicRouter
from tests import hostile
from tests.conftest import auth

READINGS = [
    {"ts": "2026-01-05T07:00:00Z", "asset": "ahu-1", "sensor": "UCAOT", "value": 21.5},
    {"ts": 1_767_596_460, "asset": "ahu-1", "sensor": "UCAOT", "value": 21.7},
    {"ts": "2026-01-05T07:00:00Z", "asset": "ghost", "sensor": "UCAOT", "value": 1},
]


def post(
    client: TestClient,
    token: str,
    body: object = None,
    *,
    content: bytes | None = None,
    ctype: str = "application/json",
    params: dict[str, str] | None = None,
):  # type: ignore[no-untyped-def]
    data = content if content is not None else json.dumps(body).encode()
    return client.post("/api/readings", content=data, headers={**auth(token), "Content-Type": ctype}, params=params)


def test_json_list_counts_and_duplicates(client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop) -> None:
    first = post(client, keys[Role.OPERATOR], READINGS)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "stored": 2,
        "duplicates": 0,
        "quarantined": 1,
        "reasons": {"unknown_sensor": 1},
        "spooled": 0,
    }
    again = post(client, keys[Role.OPERATOR], READINGS).json()
    assert (again["stored"], again["duplicates"]) == (0, 2)
    assert demo_pitstop.readings.count() == 2
    assert demo_pitstop.ingest.quarantine.list()[0].source == "http:test-operator"


def test_wide_json_and_csv(client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop) -> None:
    wide = {
        "asset": "ahu-2",
        "rows": [{"ts": "2026-01-05T07:00:00Z", "UCAOT": 20.1, "UCWF": 3}, {"ts": 1_767_596_460, "UCAOT": 20.2}],
    }
    assert post(client, keys[Role.OPERATOR], wide).json()["stored"] == 3
    long_csv = (
        b"ts,asset,sensor,value\n2026-01-05T07:00:00Z,pump-1,vib_rms,1.5\n2026-01-05T07:00:01Z,pump-1,vib_rms,1.6\n"
    )
    assert post(client, keys[Role.OPERATOR], content=long_csv, ctype="text/csv").json()["stored"] == 2
    wide_csv = b"ts,vib_rms,vib_kurtosis\n2026-01-05T07:00:00Z,1.5,3.1\n"
    body = post(
        client, keys[Role.OPERATOR], content=wide_csv, ctype="text/csv; charset=utf-8", params={"asset": "fan-1"}
    )
    assert body.json()["stored"] == 2
    assert demo_pitstop.readings.count() == 7


def test_every_row_bad_is_422_with_reasons(client: TestClient, keys: dict[Role, str]) -> None:
    response = post(
        client, keys[Role.OPERATOR], [{"ts": "2026-01-05T07:00:00", "asset": "ahu-1", "sensor": "UCAOT", "value": 1}, 5]
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "ingest.rejected"
    assert error["detail"]["reasons"] == {"bad_timestamp": 1, "malformed": 1}
    garbage = post(client, keys[Role.OPERATOR], content=b"{not json", ctype="application/json")
    assert garbage.status_code == 422 and garbage.json()["error"]["detail"]["reasons"] == {"malformed": 1}


def test_limits_roles_and_types(client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop) -> None:
    assert post(client, keys[Role.VIEWER], READINGS).status_code == 403
    assert client.post("/api/readings", json=READINGS).status_code == 401
    assert post(client, keys[Role.OPERATOR], content=b"x", ctype="text/plain").status_code == 415
    demo_pitstop.settings.api.max_body_bytes = 2048
    big = post(client, keys[Role.OPERATOR], READINGS * 40)
    assert big.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b"["
        for _ in range(100):
            yield json.dumps(READINGS[0]).encode() + b","
        yield b"1]"

    streamed = client.post(
        "/api/readings", content=chunks(), headers={**auth(keys[Role.OPERATOR]), "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert demo_pitstop.readings.count() == 0


def test_ready_and_openapi(client: TestClient) -> None:
    assert set(client.get("/ready").json()["checks"]) == {"database", "migrations", "ingest"}  # no MQTT configured
    assert "/api/readings" in client.get("/openapi.json").json()["paths"]


# -- fuzz: whatever arrives is stored or quarantined with a reason, never twice, never a crash ------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
reading = st.fixed_dictionaries(
    {
        "ts": st.sampled_from(["2026-01-05T07:00:00Z", "2026-01-05T07:00:00", 1_767_596_400, "x"]) | values,
        "asset": st.sampled_from(["ahu-1", "pump-1", "ghost"]) | values,
        "sensor": st.sampled_from(["UCAOT", "vib_rms", "nope"]) | values,
        "value": st.floats() | values,
    }
)
json_bodies = (
    st.lists(reading | values, max_size=8).map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries(
        {
            "asset": st.sampled_from(["ahu-1", "x"]) | values,
            "rows": st.lists(
                st.dictionaries(st.sampled_from(["ts", "UCAOT", "UCWF", "zz"]), values | st.floats(), max_size=4),
                max_size=4,
            ),
        }
    ).map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
)
csv_cell = st.sampled_from(["2026-01-05T07:00:00Z", "ahu-1", "UCAOT", "1.5", "", "nan", '"', "a,b", "\n"]) | st.text(
    max_size=8
)
csv_bodies = st.lists(st.lists(csv_cell, min_size=1, max_size=5), max_size=6).map(
    lambda rows: ("ts,asset,sensor,value\n" + "\n".join(",".join(r) for r in rows)).encode()
) | st.binary(max_size=64)


def _accounted(response, n_stored_before: int, demo_pitstop: Pitstop) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code in (200, 422), response.text
    body = response.json()
    counts = body if response.status_code == 200 else body["error"]["detail"]
    assert counts["quarantined"] == sum(counts["reasons"].values())
    assert demo_pitstop.readings.count() == n_stored_before + counts["stored"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_bodies)
def test_fuzz_json(client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop, body: bytes) -> None:
    before = demo_pitstop.readings.count()
    _accounted(post(client, keys[Role.OPERATOR], content=body), before, demo_pitstop)
    again = post(client, keys[Role.OPERATOR], content=body)
    counts = again.json() if again.status_code == 200 else again.json()["error"]["detail"]
    assert counts["stored"] == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=csv_bodies)
def test_fuzz_csv(client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop, body: bytes) -> None:
    before = demo_pitstop.readings.count()
    _accounted(post(client, keys[Role.OPERATOR], content=body, ctype="text/csv"), before, demo_pitstop)
    assert post(client, keys[Role.OPERATOR], content=body, ctype="text/csv").status_code in (200, 422)
    assert demo_pitstop.readings.count() >= before


topics = st.sampled_from(
    ["p/north/ahu-1/UCAOT", "p/north/ghost/UCAOT", "p-wide/north/ahu-1", "p/x", "other/a/b/c", "p/a/b/c/d"]
)
mqtt_payloads = st.one_of(reading, st.lists(reading | values, max_size=4), values).map(
    lambda v: json.dumps(v).encode()
) | st.binary(max_size=32)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.tuples(topics, mqtt_payloads), min_size=1, max_size=5))
def test_fuzz_mqtt_payloads(demo_pitstop: Pitstop, messages: list[tuple[str, bytes]]) -> None:
    router = TopicRouter(MqttSettings(topic_prefix="p"))
    batch = [Message(t, p, i, 1, 0) for i, (t, p) in enumerate(messages)]
    before = demo_pitstop.readings.count()
    parsed = router.parse(batch)
    result = demo_pitstop.ingest.ingest(parsed.frame(), "mqtt", malformed=parsed.malformed)
    rows = len(parsed.frame()) + len(parsed.malformed)
    assert result.stored + result.duplicates + result.quarantined == rows
    assert sum(result.reasons.values()) == result.quarantined
    assert demo_pitstop.readings.count() == before + result.stored
    again = demo_pitstop.ingest.ingest(router.parse(batch).frame(), "mqtt")
    assert again.stored == 0


@pytest.mark.parametrize("topic", ["p/north/ahu-1/UCAOT"])
def test_mqtt_payload_shapes(demo_pitstop: Pitstop, topic: str) -> None:
    router = TopicRouter(MqttSettings(topic_prefix="p"))
    single = Message(topic, b'{"ts": "2026-01-05T07:00:00Z", "value": 20}', 1, 1, 0)
    many = Message(topic, b'[{"ts": 1767596460, "value": 21}, {"ts": 1767596520, "value": 22}]', 2, 1, 0)
    wide = Message("p-wide/north/ahu-2", b'{"ts": "2026-01-05T07:00:00Z", "UCAOT": 1, "UCWF": 2}', 3, 1, 0)
    parsed = router.parse([single, many, wide])
    assert parsed.malformed == []
    assert demo_pitstop.ingest.ingest(parsed.frame(), "mqtt").stored == 5
    assert router.filters == ["p/+/+/+", "p-wide/+/+"]


@pytest.mark.parametrize(
    "poison",
    [
        b'{"ts":1767596500,"asset":"ahu-1","sensor":"UCAOT","value":1' + b"0" * 400 + b"}",
        *(
            b'{"ts":1767596500,"asset":"ahu-1","sensor":"UCAOT","value":' + b"[" * d + b"]" * d + b"}"
            for d in (500, 2_000, 100_000)
        ),
    ],
    ids=["value-10e400", "nested-500", "nested-2000", "nested-100000"],
)
def test_hostile_rows_are_quarantined_and_the_good_rows_of_the_batch_stored(
    client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop, poison: bytes
) -> None:
    """Issue 15, item 3: a value of 10**400 or nesting of 500, 2,000 or 100,000 levels answered 500 and
    the good rows of the same batch were not stored. Now: the bad row is quarantined with a reason, the
    good ones stored; alone, the bad row gets 422."""
    good = json.dumps(READINGS[:2]).encode()
    body = b"[" + good[1:-1] + b"," + poison + b"]"
    response = post(client, keys[Role.OPERATOR], content=body)
    assert response.status_code == 200, response.text
    assert (response.json()["stored"], response.json()["quarantined"]) == (2, 1)
    # a nested list is a row with a bad value; past the parsers' depth (1,024) the row is not JSON
    assert response.json()["reasons"] == ({"malformed": 1} if poison.count(b"[") > 1024 else {"not_a_number": 1})
    alone = post(client, keys[Role.OPERATOR], content=b"[" + poison + b"]")
    assert alone.status_code == 422, alone.text
    assert demo_pitstop.readings.count() == 2
    assert len(demo_pitstop.ingest.quarantine.list()) == 1  # the same row twice is quarantined once


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pushed=hostile.body("ahu-1", "UCAOT"))
def test_fuzz_hostile_bodies_are_answered_and_accounted_for(
    client: TestClient, keys: dict[Role, str], demo_pitstop: Pitstop, pushed: tuple[bytes, int, int]
) -> None:
    """Issue 15: the MQTT fuzz's hostile payloads (huge integers, NaN/Infinity, deep nesting, invalid
    UTF-8, wrong types, giant strings, empty, lists mixing good and bad) as HTTP bodies: never a 5xx,
    and every reading is stored or quarantined as expected."""
    data, stored, quarantined = pushed
    sensor = demo_pitstop.assets.sensor_index()[("ahu-1", "UCAOT")].id
    before = demo_pitstop.readings.count(sensor)
    response = post(client, keys[Role.OPERATOR], content=data)
    assert response.status_code == (200 if stored else 422), response.text
    counts = response.json() if stored else response.json()["error"]["detail"]
    assert (counts["stored"], counts["duplicates"], counts["quarantined"]) == (stored, 0, quarantined)
    assert demo_pitstop.readings.count(sensor) - before == stored
