"""HTTP push bodies -> raw rows for the validator.

- `application/json`, a list of readings: `[{"ts": ..., "asset": ..., "sensor": ..., "value": ...}, ...]`;
- `application/json`, one asset's wide batch: `{"asset": "ahu-1", "rows": [{"ts": ..., "UCAOT": 21.5, ...}]}`
  (a sensor absent from a row, or null, is skipped);
- `text/csv`: long (`ts,asset,sensor,value`) or wide (`ts,<sensor>,...` with `?asset=`).
A body that cannot be parsed at all is quarantined whole as `malformed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pitstop.errors import IngestError
from pitstop.ingest.files import parse_csv_bytes
from pitstop.ingest.service import IngestResult, IngestService
from pitstop.ingest.validate import FIELDS, MAX_PAYLOAD_CHARS, loads, loads_each, payload_text

JSON_TYPES = ("application/json", "")
CSV_TYPES = ("text/csv", "application/csv")


@dataclass
class Body:
    rows: pd.DataFrame
    malformed: list[str] = field(default_factory=list)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({f: pd.Series([], dtype=object) for f in FIELDS})


def parse_json(data: bytes) -> Body:
    """Columns straight from the parsed JSON (orjson), no frame of records or melt in between: a
    field a reading lacks is None (quarantined as `malformed`)."""
    unreadable: list[str] = []
    try:
        value = loads(data)
    except ValueError:  # also UnicodeDecodeError; a list is taken element by element
        try:
            value, unreadable = loads_each(data)
        except ValueError:
            return Body(_empty(), [data[:MAX_PAYLOAD_CHARS].decode("utf-8", errors="replace")])
    if isinstance(value, list):
        records = [r for r in value if type(r) is dict]
        others = [_dump(r) for r in value if type(r) is not dict] if len(records) < len(value) else []
        others += unreadable
        return Body(
            _frame(
                [r.get("ts") for r in records],
                [r.get("asset") for r in records],
                [r.get("sensor") for r in records],
                [r.get("value") for r in records],
            ),
            others,
        )
    if isinstance(value, dict) and isinstance(value.get("asset"), str) and isinstance(value.get("rows"), list):
        asset = value["asset"]
        ts: list[Any] = []
        sensors: list[str] = []
        values: list[Any] = []
        others = []
        for row in value["rows"]:
            if type(row) is not dict or "ts" not in row:
                others.append(_dump(row))
                continue
            t = row["ts"]
            for sensor, v in row.items():
                if v is not None and sensor != "ts":  # an absent or null cell is skipped
                    ts.append(t)
                    sensors.append(sensor)
                    values.append(v)
        return Body(_frame(ts, [asset] * len(ts), sensors, values), others)
    return Body(_empty(), [data[:MAX_PAYLOAD_CHARS].decode("utf-8", errors="replace")])


def _dump(value: Any) -> str:
    return payload_text(value)[:MAX_PAYLOAD_CHARS]


def _frame(ts: list[Any], asset: list[Any], sensor: list[Any], value: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.Series(ts, dtype=object),
            "asset": pd.Series(asset, dtype=object),
            "sensor": pd.Series(sensor, dtype=object),
            "value": pd.Series(value, dtype=object),
        }
    )


def ingest_body(
    service: IngestService, data: bytes, content_type: str, *, asset: str | None, source: str
) -> IngestResult:
    """Parse one body and ingest it (runs on the service's executor, off the event loop)."""
    if content_type in CSV_TYPES:
        try:
            chunk = parse_csv_bytes(data, asset=asset)
        except IngestError as exc:
            return service.ingest(_empty(), source, malformed=[f"{exc}: {data[:1000].decode('utf-8', 'replace')}"])
        return service.ingest(chunk.rows, source, malformed=chunk.malformed)
    body = parse_json(data)
    return service.ingest(body.rows, source, malformed=body.malformed)
