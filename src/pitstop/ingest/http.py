"""HTTP push bodies -> raw rows for the validator.

- `application/json`, a list of readings: `[{"ts": ..., "asset": ..., "sensor": ..., "value": ...}, ...]`;
- `application/json`, one asset's wide batch: `{"asset": "ahu-1", "rows": [{"ts": ..., "UCAOT": 21.5, ...}]}`
  (a sensor absent from a row, or null, is skipped);
- `text/csv`: long (`ts,asset,sensor,value`) or wide (`ts,<sensor>,...` with `?asset=`).
A body that cannot be parsed at all is quarantined whole as `malformed`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from pitstop.errors import IngestError
from pitstop.ingest.files import parse_csv_bytes
from pitstop.ingest.service import IngestResult, IngestService
from pitstop.ingest.validate import FIELDS, MAX_PAYLOAD_CHARS

JSON_TYPES = ("application/json", "")
CSV_TYPES = ("text/csv", "application/csv")


@dataclass
class Body:
    rows: pd.DataFrame
    malformed: list[str] = field(default_factory=list)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({f: pd.Series([], dtype=object) for f in FIELDS})


def parse_json(data: bytes) -> Body:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return Body(_empty(), [data[:MAX_PAYLOAD_CHARS].decode("utf-8", errors="replace")])
    if isinstance(value, list):
        records = [r for r in value if isinstance(r, dict)]
        others = [json.dumps(r)[:MAX_PAYLOAD_CHARS] for r in value if not isinstance(r, dict)]
        if not records:
            return Body(_empty(), others)
        return Body(pd.DataFrame(records, columns=list(FIELDS), dtype=object), others)
    if isinstance(value, dict) and isinstance(value.get("asset"), str) and isinstance(value.get("rows"), list):
        rows = [r for r in value["rows"] if isinstance(r, dict) and "ts" in r]
        others = [json.dumps(r)[:MAX_PAYLOAD_CHARS] for r in value["rows"] if not (isinstance(r, dict) and "ts" in r)]
        if not rows:
            return Body(_empty(), others)
        wide = pd.DataFrame.from_records(rows)
        sensors = [c for c in wide.columns if c != "ts"]
        long = wide.melt(id_vars=["ts"], value_vars=sensors, var_name="sensor", value_name="value")
        long = long[long["value"].notna()]
        long.insert(1, "asset", value["asset"])
        return Body(long.reset_index(drop=True), others)
    return Body(_empty(), [data[:MAX_PAYLOAD_CHARS].decode("utf-8", errors="replace")])


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
