"""IngestService on SQLite and PostgreSQL: store once, quarantine with reasons, replay, files, spool."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pitstop import inventory
from pitstop.app import Pitstop
from pitstop.config.models import MqttSettings
from pitstop.errors import IngestError, SpoolFull
from pitstop.ingest.files import ingest_file
from pitstop.ingest.mqtt import Message, TopicRouter
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock


def frame(rows: Sequence[tuple[object, object, object, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ts", "asset", "sensor", "value"], dtype=object)


GOOD = [
    ("2026-01-05T07:00:00Z", "ahu-1", "UCAOT", 21.5),
    ("2026-01-05T07:01:00Z", "ahu-1", "UCAOT", 21.6),
    ("2026-01-05T07:00:00+00:00", "pump-1", "vib_rms", "1.25"),
]


def test_store_once_and_quarantine(demo_pitstop: Pitstop) -> None:
    service = demo_pitstop.ingest
    rows = [*GOOD, ("2026-01-05T07:00:00Z", "ahu-9", "UCAOT", 1.0), ("2026-01-05T07:00:00", "ahu-1", "UCAOT", 1)]
    first = service.ingest(frame(rows), "test")
    assert (first.stored, first.duplicates, first.quarantined) == (3, 0, 2)
    assert first.reasons == {"unknown_sensor": 1, "bad_timestamp": 1}
    again = service.ingest(frame(rows), "test", malformed=["not,a,row"])
    assert (again.stored, again.duplicates, again.quarantined) == (0, 3, 3)
    assert demo_pitstop.readings.count() == 3
    # the same bad rows again (a retry, a redelivery): quarantined once
    assert service.quarantine.counts() == {"unknown_sensor": 1, "bad_timestamp": 1, "malformed": 1}
    body = demo_pitstop.metrics.registry.get_sample_value("pitstop_readings_stored_total", {"source": "test"})
    assert body == 3


def test_replay_after_fixing_the_inventory(demo_pitstop: Pitstop) -> None:
    service = demo_pitstop.ingest
    rows = [("2026-01-05T07:00:00Z", "ahu-9", "UCAOT", 1.0), ("2026-01-05T07:00:00Z", "ahu-9", "UCAOT", 1.0)]
    service.ingest(frame(rows), "test", malformed=["{garbage"])
    nothing = service.replay()
    assert (nothing.stored, nothing.still_quarantined) == (0, 2)  # the two equal rows are one
    spec = inventory.parse(
        '[[sites]]\nname = "north"\n[[assets]]\nname = "ahu-9"\nsite = "north"\ntype = "hvac"\n'
        'sensors = [{ name = "UCAOT", period_s = 60 }]\n',
        "test",
        "toml",
    )
    inventory.apply(demo_pitstop.db, spec, actor="test", now=demo_pitstop.clock.now())
    replayed = service.replay()
    assert (replayed.checked, replayed.stored, replayed.duplicates, replayed.still_quarantined) == (2, 1, 0, 1)
    assert replayed.reasons == {"malformed": 1}
    assert service.quarantine.counts() == {"malformed": 1}
    assert service.replay().stored == 0
    assert demo_pitstop.readings.count() == 1


def test_a_redelivered_bad_message_is_quarantined_once(demo_pitstop: Pitstop) -> None:
    """MQTT delivers a message again when its ack was lost; gateways retry a push. A bad payload
    that comes back is not quarantined a second time (key: source and payload); the same payload
    from another source is its own row."""
    service = demo_pitstop.ingest
    router = TopicRouter(MqttSettings(topic_prefix="p"))
    bad = [
        Message("p/north/ahu-1/UCAOT", b"{not json", 1, 1, 0),
        Message("p/north/ghost/UCAOT", b'{"ts": 1767596400, "value": 1}', 2, 1, 0),
        Message("p/north/ahu-1/UCAOT", b'{"ts": 1767596400, "value": "warm"}', 3, 1, 0),
        Message("p/north/ahu-1/UCAOT", b'{"ts": 1767596400, "value": 21.5}', 4, 1, 0),
    ]
    for delivery in range(3):  # the batch, delivered three times; the last time twice in one batch
        parsed = router.parse(bad + bad if delivery == 2 else bad)
        result = service.ingest(parsed.frame(), "mqtt", malformed=parsed.malformed)
        assert result.stored == (1 if delivery == 0 else 0)
    assert service.quarantine.counts() == {"malformed": 1, "unknown_sensor": 1, "not_a_number": 1}
    parsed = router.parse(bad)
    service.ingest(parsed.frame(), "http:gateway-7", malformed=parsed.malformed)
    assert service.quarantine.count() == 6
    service.ingest(frame([("2026-01-05T07:00:00", "ahu-1", "UCAOT", 1)]), "test", malformed=["{x"])
    service.ingest(frame([("2026-01-05T07:00:00", "ahu-1", "UCAOT", 1)]), "test", malformed=["{x"])
    assert service.quarantine.count() == 8
    assert demo_pitstop.readings.count() == 1


def test_csv_long_wide_and_parquet_in_chunks(demo_pitstop: Pitstop, tmp_path: Path) -> None:
    service = demo_pitstop.ingest
    long_csv = tmp_path / "long.csv"
    lines = ["ts,asset,sensor,value"] + [f"{1_767_596_400 + i},ahu-1,UCAOT,{20 + i % 7}" for i in range(2500)]
    long_csv.write_text("\n".join([*lines, "1767596400,ahu-1,UCAOT", "x,ahu-1,UCAOT,1"]) + "\n")
    result = ingest_file(service, long_csv, chunk_rows=1000)
    assert (result.stored, result.quarantined) == (2500, 2)
    assert result.reasons == {"malformed": 1, "bad_timestamp": 1}
    assert ingest_file(service, long_csv, chunk_rows=1000).duplicates == 2500

    wide = tmp_path / "wide.csv"
    wide.write_text("ts,UCAOT,UCWF,bogus\n2026-01-05T07:00:00Z,21.5,3,1\n2026-01-05T07:01:00Z,,4,2\n")
    result = ingest_file(service, wide, asset="ahu-2")
    assert result.stored == 3
    assert result.reasons == {"malformed": 1, "unknown_sensor": 2}

    table = pa.table(
        {
            "ts": pa.array(pd.date_range("2026-01-01", periods=3000, freq="min", tz="UTC")),
            "UCWIT": pa.array([10.0] * 3000),
            "UCAIT": pa.array([25.0] * 3000),
        }
    )
    parquet = tmp_path / "wide.parquet"
    pq.write_table(table, parquet, row_group_size=700)
    seen: list[tuple[int, int]] = []
    result = ingest_file(service, parquet, asset="ahu-1", chunk_rows=1000, progress=lambda d, t: seen.append((d, t)))
    assert result.stored == 6000 and seen[-1] == (3000, 3000) and len(seen) > 1
    long_parquet = tmp_path / "long.parquet"
    pq.write_table(
        pa.table({"ts": [1_767_596_400_000], "asset": ["fan-1"], "sensor": ["vib_rms"], "value": [0.5]}), long_parquet
    )
    assert ingest_file(service, long_parquet).stored == 1


def test_file_errors_are_one_line(demo_pitstop: Pitstop, tmp_path: Path) -> None:
    wide = tmp_path / "w.csv"
    wide.write_text("ts,UCAOT\n2026-01-05T07:00:00Z,1\n")
    with pytest.raises(IngestError, match="--asset"):
        ingest_file(demo_pitstop.ingest, wide)
    with pytest.raises(IngestError, match="no such file"):
        ingest_file(demo_pitstop.ingest, tmp_path / "missing.csv")
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(IngestError, match="needs columns"):
        ingest_file(demo_pitstop.ingest, odd)


def test_spool_while_the_database_is_down(demo_pitstop: Pitstop, clock: FrozenClock) -> None:
    service = demo_pitstop.ingest
    service.sensor_index()  # the inventory was read while the database was up
    working = service.db
    service.db = Database("postgresql://pitstop@127.0.0.1:1/none")  # nothing listens there
    try:
        down = service.ingest(frame(GOOD[:2]), "test")
        assert (down.stored, down.spooled) == (0, 2)
        later = service.ingest(frame([GOOD[2], ("2026-01-05T07:00:00Z", "ahu-9", "UCAOT", 1.0)]), "test")
        assert (later.spooled, later.quarantined) == (1, 1)
        assert len(service.spool) == 2
    finally:
        service.db.dispose()
        service.db = working
    assert service.flush_spool() == 0  # still within the retry pause
    clock.advance(timedelta(seconds=2))
    assert service.ingest(frame([("2026-01-05T07:05:00Z", "ahu-1", "UCAOT", 1.0)]), "test").stored == 1
    assert len(service.spool) == 0
    assert demo_pitstop.readings.count() == 4
    assert service.quarantine.counts() == {"unknown_sensor": 1}


def test_a_full_spool_refuses(demo_pitstop: Pitstop, tmp_path: Path) -> None:
    service = demo_pitstop.ingest
    service.sensor_index()
    service.spool.max_bytes = 2048
    service.db = Database("postgresql://pitstop@127.0.0.1:1/none")
    service.ingest(frame(GOOD), "test")
    with pytest.raises(SpoolFull, match=r"spool .* is full"):
        service.ingest(frame(GOOD * 100), "test")


def test_a_conflicting_value_is_quarantined_and_an_identical_one_is_a_duplicate(demo_pitstop: Pitstop) -> None:
    """Issue 15, item 10: two different values for one sensor and timestamp in one batch counted as
    `duplicates: 1` and the second value vanished. A different value is quarantined as `conflict`
    (with the stored value beside it), in the same batch or a later one; an identical one is a
    duplicate; replaying the quarantine keeps the conflict."""
    service = demo_pitstop.ingest
    t0, t1 = "2026-01-05T07:00:00Z", "2026-01-05T07:01:00Z"
    first = service.ingest(frame([(t0, "ahu-1", "UCAOT", 21.5), (t0, "ahu-1", "UCAOT", 22.5)]), "test")
    assert (first.stored, first.duplicates, first.quarantined) == (1, 0, 1)
    assert first.reasons == {"conflict": 1}
    later = service.ingest(
        frame([(t0, "ahu-1", "UCAOT", 21.5), (t0, "ahu-1", "UCAOT", 23.5), (t1, "ahu-1", "UCAOT", 21.0)]), "test"
    )
    assert (later.stored, later.duplicates, later.quarantined) == (1, 1, 1)
    assert later.reasons == {"conflict": 1}
    assert demo_pitstop.readings.window(demo_pitstop.assets.sensor_index()[("ahu-1", "UCAOT")].id)[
        "value"
    ].tolist() == [21.5, 21.0]
    rows = service.quarantine.list()
    assert [r.reason for r in rows] == ["conflict", "conflict"]
    payloads = [json.loads(r.payload) for r in rows]
    assert [(p["value"], p["stored_value"], p["sensor"]) for p in payloads] == [
        (22.5, 21.5, "UCAOT"),
        (23.5, 21.5, "UCAOT"),
    ]
    replayed = service.replay()
    assert (replayed.stored, replayed.duplicates, replayed.still_quarantined) == (0, 0, 2)
    assert service.quarantine.counts() == {"conflict": 2}
    conflicts = demo_pitstop.metrics.registry.get_sample_value(
        "pitstop_readings_quarantined_total", {"source": "test", "reason": "conflict"}
    )
    assert conflicts == 2
