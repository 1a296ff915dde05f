"""The validator: every row is either a valid reading or quarantined with one of the reasons."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.ingest.validate import REASONS, SensorIndex, parse_timestamps, validate
from pitstop.storage.repos.assets import SensorInfo

NOW_US = 1_767_600_000_000_000  # 2026-01-05T08:00:00Z
INDEX = SensorIndex.of(
    [
        SensorInfo(1, "ahu-1", "UCAOT", "degC", -10.0, 60.0, 60),
        SensorInfo(2, "ahu-1", "UCWF", "l/s", None, None, 60),
        SensorInfo(3, "pump-1", "vib_rms", "mm/s", 0.0, None, 1),
    ]
)


def check(rows: list[dict[str, object]]) -> tuple[list[tuple[int, int, float]], list[tuple[str, str]]]:
    frame = pd.DataFrame(
        {f: pd.Series([r.get(f) for r in rows], dtype=object) for f in ("ts", "asset", "sensor", "value")}
    )
    result = validate(frame, INDEX, now_us=NOW_US, max_future_us=300_000_000)
    batch = result.batch
    good = list(zip(batch.sensor_id.tolist(), batch.ts_us.tolist(), batch.value.tolist(), strict=True))
    return good, [(q.reason, q.payload) for q in result.quarantined]


def row(
    ts: object = "2026-01-05T07:00:00Z", asset: object = "ahu-1", sensor: object = "UCAOT", value: object = 21.5
) -> dict[str, object]:
    return {"ts": ts, "asset": asset, "sensor": sensor, "value": value}


def test_valid_rows_become_columns() -> None:
    good, bad = check([row(), row(ts="2026-01-05T08:00:00+01:00", sensor="UCWF", value="3.5")])
    assert bad == []
    assert good == [(1, 1_767_596_400_000_000, 21.5), (2, 1_767_596_400_000_000, 3.5)]


def test_each_reason() -> None:
    cases = {
        "unknown_sensor": [row(asset="ahu-9"), row(sensor="nope")],
        "bad_timestamp": [
            row(ts="2026-01-05T07:00:00"),
            row(ts="yesterday"),
            row(ts="2026-01-05T09:00:00Z"),
            row(ts=-5),
        ],
        "not_a_number": [row(value="abc"), row(value=float("nan")), row(value="inf"), row(value=True)],
        "out_of_range": [row(value=61), row(value=-10.5), row(asset="pump-1", sensor="vib_rms", value=-1)],
        "malformed": [row(ts=None), row(asset=None), row(sensor=7), row(value=None), row(asset=["x"]), row(value="")],
    }
    for reason, rows in cases.items():
        good, bad = check(rows)
        assert good == [], reason
        assert [r for r, _ in bad] == [reason] * len(rows), (reason, bad)


def test_first_reason_wins() -> None:
    _, bad = check([row(asset="ghost", ts="naive", value="x"), row(ts="naive", value="x"), row(ts=None, asset="ghost")])
    assert [r for r, _ in bad] == ["unknown_sensor", "bad_timestamp", "malformed"]


def test_epoch_seconds_and_milliseconds() -> None:
    good, bad = check([row(ts=1_767_596_400), row(ts="1767596400000"), row(ts=1_767_596_400.5, sensor="UCWF")])
    assert bad == []
    assert [g[1] for g in good] == [1_767_596_400_000_000, 1_767_596_400_000_000, 1_767_596_400_500_000]


def test_the_future_is_a_setting_relative_to_the_clock() -> None:
    frame = pd.DataFrame(
        {"ts": ["2026-01-05T08:04:00Z", "2026-01-05T08:06:00Z"], "asset": "ahu-1", "sensor": "UCAOT", "value": 1.0}
    )
    result = validate(frame, INDEX, now_us=NOW_US, max_future_us=300_000_000)
    assert len(result.batch) == 1 and [q.reason for q in result.quarantined] == ["bad_timestamp"]


def test_payloads_replay_as_rows() -> None:
    _, bad = check([row(value=float("inf")), row(ts=None, value=[1, 2])])
    payloads = [json.loads(p) for _, p in bad]
    assert payloads[0] == {"ts": "2026-01-05T07:00:00Z", "asset": "ahu-1", "sensor": "UCAOT", "value": "inf"}
    assert payloads[1]["value"] == [1, 2]


def test_timestamp_columns() -> None:
    aware = pd.Series(pd.to_datetime(["2026-01-05T07:00:00Z"], utc=True))
    us, ok, _ = parse_timestamps(aware)
    assert ok.all() and us[0] == 1_767_596_400_000_000
    naive = pd.Series(pd.to_datetime(["2026-01-05T07:00:00"]))
    assert not parse_timestamps(naive)[1].any()


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
plausible_ts = st.sampled_from(["2026-01-05T07:00:00Z", "2026-01-05T07:00:00", 1_767_596_400, "1767596400000", "x"])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "ts": plausible_ts | anything,
                "asset": st.sampled_from(["ahu-1", "pump-1", "ghost"]) | anything,
                "sensor": st.sampled_from(["UCAOT", "UCWF", "vib_rms"]) | anything,
                "value": st.floats() | st.sampled_from(["1.5", "nan", ""]) | anything,
            }
        ),
        max_size=30,
    )
)
def test_every_row_is_valid_or_quarantined_with_a_reason(rows: list[dict[str, object]]) -> None:
    good, bad = check(rows)
    assert len(good) + len(bad) == len(rows)
    assert all(reason in REASONS for reason, _ in bad)
    for sensor_id, ts, value in good:
        assert sensor_id in (1, 2, 3) and 0 <= ts <= NOW_US + 300_000_000 and math.isfinite(value)
    for _, payload in bad:
        json.loads(payload)
    assert np.all(np.isfinite([g[2] for g in good]))


def test_categorical_asset_and_sensor_columns_give_the_same_answer_as_text() -> None:
    """The simulator hands over categoricals; a missing one is malformed, an unknown pair unknown."""
    assets = ["ahu-1", "ahu-1", "pump-1", "ahu-9", None, "ahu-1"]
    sensors = ["UCAOT", "UCWF", "vib_rms", "UCAOT", "UCAOT", None]
    text = [row(asset=a, sensor=s, value=float(i)) for i, (a, s) in enumerate(zip(assets, sensors, strict=True))]
    frame = pd.DataFrame(
        {
            "ts": pd.Series([r["ts"] for r in text], dtype=object),
            "asset": pd.Categorical(assets),
            "sensor": pd.Categorical(sensors),
            "value": [float(i) for i in range(len(assets))],
        }
    )
    result = validate(frame, INDEX, now_us=NOW_US, max_future_us=300_000_000)
    good = list(zip(result.batch.sensor_id.tolist(), result.batch.value.tolist(), strict=True))
    assert good == [(1, 0.0), (2, 1.0), (3, 2.0)]
    assert [q.reason for q in result.quarantined] == ["unknown_sensor", "malformed", "malformed"]
    assert check(text)[1] == [(q.reason, q.payload) for q in result.quarantined]


def test_hostile_numbers_and_nesting_are_quarantined_not_raised() -> None:
    """Issue 15, items 1 and 3: an integer too large for a float (as value or as timestamp) and a value
    nested 600 levels deep made `validate` raise (OverflowError, RecursionError), so the whole batch
    failed and was retried forever; now each is one quarantined row and the good row is kept."""
    from pitstop.ingest.validate import loads

    huge = loads(b'{"ts":1767596400,"value":1' + b"0" * 400 + b"}")
    huge_ts = loads(b'{"ts":1' + b"0" * 400 + b',"value":1}')
    deep = loads(b'{"ts":1767596400,"value":' + b"[" * 600 + b"]" * 600 + b"}")
    rows = [
        row(ts=huge["ts"], value=huge["value"]),
        row(ts=huge_ts["ts"], value=huge_ts["value"]),
        row(ts=1_767_596_401, value=deep["value"]),
        row(ts=1_767_596_402, value=10**400),  # a Python int that no float holds, from any source
        row(ts=10**400, value=1.0),
        row(ts=1_767_596_403, value=21.0),
    ]
    good, bad = check(rows)
    assert good == [(1, 1_767_596_403_000_000, 21.0)]
    assert [reason for reason, _ in bad] == [
        "not_a_number",
        "bad_timestamp",
        "not_a_number",
        "not_a_number",
        "bad_timestamp",
    ]
    for _, payload in bad:
        assert len(payload) <= 4000
        json.loads(payload)
    # what arrived is kept: the leading digits and the count, not just "inf"
    assert json.loads(bad[0][1])["value"] == "1" + "0" * 39 + "... (401 digits)"


@pytest.mark.parametrize("depth", [600, 2_000, 3_000, 100_000])
def test_json_nested_too_deep_for_the_parsers_is_a_value_error(depth: int) -> None:
    """Issue 15, item 2: past 1,024 levels orjson refuses and the standard library's parser raised
    RecursionError, which killed the MQTT writer thread; `loads` raises ValueError (malformed) instead."""
    from pitstop.ingest.validate import loads

    payload = b"[" * depth + b"]" * depth
    if depth < 1024:
        assert isinstance(loads(payload), list)
    else:
        with pytest.raises(ValueError):
            loads(payload)
        with pytest.raises(ValueError):
            loads(b'{"ts":1,"value":NaN,"x":' + payload + b"}")  # the fallback parser's path
