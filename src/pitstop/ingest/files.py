"""CSV and Parquet files, read in chunks with Arrow: memory stays bounded by the chunk size.

Two layouts:
- long: columns `ts, asset, sensor, value` (any order, nothing else);
- wide: a `ts` column plus one column per sensor of one asset (the asset is given by the caller).
CSV columns are read as text and converted here, so that one bad value quarantines one row
instead of failing the file; lines with the wrong number of fields are quarantined as malformed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pitstop.errors import IngestError
from pitstop.ingest.service import IngestResult, IngestService
from pitstop.ingest.validate import FIELDS, parse_timestamps

LONG = frozenset(FIELDS)


@dataclass
class Chunk:
    rows: pd.DataFrame  # long: ts, asset, sensor, value
    malformed: list[str] = field(default_factory=list)
    done: int = 0  # progress, in the units of FileReader.total


@dataclass
class FileReader:
    path: Path
    total: int  # bytes (CSV) or rows (Parquet)
    chunks: Iterator[Chunk]


def open_file(path: Path, *, asset: str | None = None, chunk_rows: int = 250_000) -> FileReader:
    """Open a CSV (.csv, .csv.gz, .txt) or Parquet (.parquet, .pq) file for chunked reading."""
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return _parquet(path, asset, chunk_rows)
    return _csv(path, asset, chunk_rows)


def _layout(path: Path, names: list[str], asset: str | None) -> list[str]:
    """The sensor columns of a wide file, or [] for a long one."""
    if set(names) == LONG and len(names) == len(LONG):
        if asset is not None:
            raise IngestError(f"{path}: an asset is for wide files; this one is long (ts, asset, sensor, value)")
        return []
    if "ts" not in names or len(names) < 2:
        raise IngestError(
            f"{path}: needs columns ts, asset, sensor, value (long) or ts plus one column per sensor (wide, "
            f"with --asset); found {', '.join(names[:10])}"
        )
    if asset is None:
        raise IngestError(
            f"{path}: a wide file (ts plus sensor columns): say which asset (--asset, or ?asset= over HTTP)"
        )
    if len(set(names)) != len(names):
        raise IngestError(f"{path}: repeated column names")
    return [n for n in names if n != "ts"]


def _csv(path: Path, asset: str | None, chunk_rows: int) -> FileReader:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise IngestError(f"{path}: cannot read the header line: {exc}") from None
    if not header:
        raise IngestError(f"{path}: empty file")
    header = [h.strip() for h in header]
    sensors = _layout(path, header, asset)
    malformed: list[str] = []
    options = _csv_options(header, chunk_rows, malformed)

    def taken() -> list[str]:
        # the handler may run on Arrow's reader threads: take what is there, keep what comes later
        n = len(malformed)
        lines = malformed[:n]
        del malformed[:n]
        return lines

    def chunks() -> Iterator[Chunk]:
        with pa.OSFile(str(path)) as source:
            try:
                for batch in pacsv.open_csv(source, **options):
                    yield Chunk(_long(batch, asset, sensors), taken(), source.tell())
            except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
                raise IngestError(f"{path}: cannot be read as CSV: {exc}") from None
            if malformed:
                yield Chunk(pd.DataFrame({f: pd.Series([], dtype=object) for f in FIELDS}), taken(), source.tell())

    return FileReader(path, path.stat().st_size, chunks())


def _csv_options(header: list[str], chunk_rows: int, malformed: list[str]) -> dict[str, Any]:
    def on_invalid(row: pacsv.InvalidRow) -> str:
        malformed.append(row.text)
        return "skip"

    return {
        "read_options": pacsv.ReadOptions(
            column_names=header, skip_rows=1, block_size=max(1 << 20, min(chunk_rows * 48, 64 << 20))
        ),
        "parse_options": pacsv.ParseOptions(invalid_row_handler=on_invalid),
        "convert_options": pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=False
        ),
    }


def parse_csv_bytes(data: bytes, *, asset: str | None = None, name: str = "body") -> Chunk:
    """A whole CSV document in memory (an HTTP body), long or wide, as one chunk."""
    first = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    try:
        header = [h.strip() for h in next(csv.reader([first]), [])]
    except csv.Error as exc:
        raise IngestError(f"{name}: cannot read the header line: {exc}") from None
    if not header or not any(header):
        raise IngestError(f"{name}: empty CSV")
    sensors = _layout(Path(name), header, asset)
    malformed: list[str] = []
    try:
        table = pacsv.read_csv(pa.BufferReader(data), **_csv_options(header, 1_000_000, malformed))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise IngestError(f"{name}: cannot be read as CSV: {exc}") from None
    batch = table.combine_chunks().to_batches()
    rows = _long(batch[0], asset, sensors) if batch else pd.DataFrame({f: pd.Series([], dtype=object) for f in FIELDS})
    return Chunk(rows, malformed, len(data))


def _parquet(path: Path, asset: str | None, chunk_rows: int) -> FileReader:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path}: not a Parquet file: {exc}") from None
    names = list(parquet.schema_arrow.names)
    sensors = _layout(path, names, asset)

    def chunks() -> Iterator[Chunk]:
        done = 0
        try:
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                done += batch.num_rows
                yield Chunk(_long(batch, asset, sensors), [], done)
        except (pa.ArrowInvalid, OSError) as exc:
            raise IngestError(f"{path}: cannot be read: {exc}") from None
        finally:
            parquet.close()

    return FileReader(path, parquet.metadata.num_rows, chunks())


def _long(batch: pa.RecordBatch, asset: str | None, sensors: list[str]) -> pd.DataFrame:
    """Rows of a batch as long raw columns; a wide batch is unpivoted (one row per cell)."""
    if not sensors:
        return pd.DataFrame(
            {
                "ts": _timestamps(batch.column("ts")),
                "asset": _column(batch.column("asset")),
                "sensor": _column(batch.column("sensor")),
                "value": _numbers(batch.column("value")),
            }
        )
    n, k = batch.num_rows, len(sensors)
    ts = _timestamps(batch.column("ts"))
    us, ok, _ = parse_timestamps(ts)
    if ok.all():  # parse once, not once per sensor
        ts_long = pd.Series(pd.to_datetime(np.tile(us, k), unit="us", utc=True))
    else:
        ts_long = pd.Series(np.tile(ts.to_numpy(dtype=object), k), dtype=object)
    values = [_numbers(batch.column(s)) for s in sensors]
    if all(pd.api.types.is_float_dtype(v.dtype) for v in values):
        value = pd.Series(np.concatenate([v.to_numpy(dtype=np.float64) for v in values]) if k else [])
    else:
        value = pd.Series(np.concatenate([v.to_numpy(dtype=object) for v in values]), dtype=object)
    return pd.DataFrame(
        {
            "ts": ts_long,
            "asset": pd.Series(np.full(n * k, asset, dtype=object), dtype=object),
            "sensor": pd.Series(np.repeat(np.array(sensors, dtype=object), n), dtype=object),
            "value": value,
        }
    )


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _column(arr: pa.Array) -> pd.Series:
    return pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object)


def _numbers(arr: pa.Array) -> pd.Series:
    """Text that is all numbers becomes float64 in one cast; anything else stays raw for the validator."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:
            arr = pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _column(arr)
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        return pd.Series(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    return _column(arr)


def _timestamps(arr: pa.Array) -> pd.Series:
    """Aware ISO text becomes a UTC datetime column in one cast, epoch numbers as text a float
    column in one cast; anything else stays raw."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        first = arr[0].as_py() if len(arr) else None
        if isinstance(first, str) and _NUMBER.fullmatch(first):  # a failed cast costs more than a peek
            try:
                return pd.Series(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return _column(arr)
        try:
            return pd.Series(pc.cast(arr, pa.timestamp("us", tz="UTC")).to_pandas())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _column(arr)
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            return pd.Series(arr.to_pandas())  # naive: the validator refuses it
        return pd.Series(arr.cast(pa.timestamp("us", tz="UTC")).to_pandas())
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        return pd.Series(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    return _column(arr)


def ingest_file(
    service: IngestService,
    path: Path,
    *,
    asset: str | None = None,
    chunk_rows: int = 250_000,
    progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Stream one file through the service, chunk by chunk; `progress(done, total)` after each."""
    reader = open_file(path, asset=asset, chunk_rows=chunk_rows)
    result = IngestResult()
    for chunk in reader.chunks:
        result += service.ingest(chunk.rows, f"file:{path.name}", malformed=chunk.malformed)
        if progress is not None:
            progress(chunk.done, reader.total)
    return result
