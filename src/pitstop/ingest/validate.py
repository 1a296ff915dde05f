"""One validator for every source: raw rows in, valid columns and quarantined rows out.

A raw row has four fields, `ts`, `asset`, `sensor` and `value`, as they arrived (strings from CSV,
anything from JSON). The work is vectorized over the batch (numpy, pandas, Arrow); the per-row
Python work happens only for rows that are quarantined (to render their payload).

Timestamps must be timezone-aware:
- ISO 8601 strings with a zone offset or `Z` (`2026-01-05T08:00:00+01:00`, `2026-01-05 07:00:00Z`);
  a string without an offset is quarantined (`bad_timestamp`), never guessed;
- numbers (or numeric strings) of seconds since the Unix epoch, UTC; numbers of magnitude 1e11 or
  more are milliseconds (1e11 seconds would be the year 5138);
- aware datetimes (Parquet `timestamp[..., tz=...]` columns).
A timestamp before 1970 or more than `max_future_us` ahead of the clock is `bad_timestamp`.

Reasons, in the order they are decided (the first that applies wins): `malformed` (a field is
missing or of the wrong kind), `unknown_sensor` (the asset or the sensor is not in the inventory),
`bad_timestamp`, `not_a_number` (not a number, NaN, infinite, or too large for a float),
`out_of_range` (outside the sensor's physical min/max). The store adds `conflict`: a second,
different value for a (sensor, time) that already has one.

Hostile input is data, not an exception: `loads` answers JSON nested too deep to parse with a
ValueError (so the message is `malformed`), integers beyond a float's range become infinite (so
`not_a_number`), and payloads are rendered for the quarantine with anything nested deeper than
`MAX_DEPTH` levels cut off.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pitstop.storage.repos.assets import SensorInfo
from pitstop.storage.repos.readings import ReadingBatch

MALFORMED = "malformed"
UNKNOWN_SENSOR = "unknown_sensor"
BAD_TIMESTAMP = "bad_timestamp"
NOT_A_NUMBER = "not_a_number"
OUT_OF_RANGE = "out_of_range"
CONFLICT = "conflict"  # decided by the store, against the value already stored
# Codes 1.. in order of precedence: a row gets the first reason that applies. The validator decides
# all but the last; the store decides `conflict`.
REASONS = (MALFORMED, UNKNOWN_SENSOR, BAD_TIMESTAMP, NOT_A_NUMBER, OUT_OF_RANGE, CONFLICT)
FIELDS = ("ts", "asset", "sensor", "value")
MAX_PAYLOAD_CHARS = 4000
MAX_DEPTH = 32  # nesting kept when a payload is rendered for the quarantine
_MS_FROM = 1e11  # epoch numbers of this magnitude or more are milliseconds
_MAX_US = 2**62
_ISO_AWARE = r"\s*\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d\d(?::?\d\d)?)\s*"

_ISO_AWARE_RE = re.compile(_ISO_AWARE)

_NUMBER_TYPES = [int, float, np.int64, np.int32, np.float64, np.float32]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A row (or a whole message) that was not stored, with what arrived and why."""

    payload: str
    reason: str


@dataclass(frozen=True)
class SensorIndex:
    """The inventory as the validator needs it: (asset, sensor) -> id, and each sensor's range."""

    ids: dict[tuple[str, str], int]
    low: dict[int, float] = field(default_factory=dict)
    high: dict[int, float] = field(default_factory=dict)

    @classmethod
    def of(cls, sensors: Iterable[SensorInfo]) -> SensorIndex:
        ids, low, high = {}, {}, {}
        for s in sensors:
            ids[(s.asset, s.name)] = s.id
            low[s.id] = -math.inf if s.min_value is None else s.min_value
            high[s.id] = math.inf if s.max_value is None else s.max_value
        return cls(ids, low, high)


@dataclass(frozen=True)
class Validated:
    batch: ReadingBatch
    quarantined: list[Quarantined]
    bad_rows: IntArray  # positions in the input of the quarantined rows, in the same order

    @property
    def reasons(self) -> dict[str, int]:
        return count_reasons(self.quarantined)


def count_reasons(quarantined: Iterable[Quarantined]) -> dict[str, int]:
    """How many quarantined rows per reason."""
    return dict(Counter(q.reason for q in quarantined))


def validate(
    rows: pd.DataFrame,
    index: SensorIndex,
    *,
    now_us: int,
    max_future_us: int,
    payload: Callable[[IntArray], list[str]] | None = None,
) -> Validated:
    """Split `rows` (columns ts, asset, sensor, value) into valid readings and quarantined rows.

    `payload(positions)` renders what arrived for the given rows; by default a JSON object of the
    four fields, which `pitstop quarantine replay` can validate again.
    """
    n = len(rows)
    if n == 0:
        return Validated(ReadingBatch.of([], [], []), [], np.empty(0, dtype=np.int64))
    sensor_id, id_malformed = _sensor_ids(rows["asset"], rows["sensor"], index)
    ts_us, ts_ok, ts_missing = parse_timestamps(rows["ts"])
    ts_ok &= (ts_us >= 0) & (ts_us <= now_us + max_future_us)
    value, value_ok, value_missing = _values(rows["value"])
    known = sensor_id > 0
    low = _per_sensor(index.low, sensor_id, -math.inf)
    high = _per_sensor(index.high, sensor_id, math.inf)

    reason = np.zeros(n, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        reason[(value < low) | (value > high)] = 5
    reason[~value_ok] = 4
    reason[~ts_ok] = 3
    reason[~known] = 2
    reason[id_malformed | ts_missing | value_missing] = 1

    good = reason == 0
    batch = ReadingBatch.of(sensor_id[good], ts_us[good], value[good])
    bad = np.flatnonzero(~good)
    if len(bad) == 0:
        return Validated(batch, [], bad)
    render = payload or (lambda positions: row_payloads(rows, positions))
    texts = render(bad)
    quarantined = [
        Quarantined(text[:MAX_PAYLOAD_CHARS], REASONS[code - 1])
        for text, code in zip(texts, reason[bad].tolist(), strict=True)
    ]
    return Validated(batch, quarantined, bad)


def row_payloads(rows: pd.DataFrame, positions: IntArray) -> list[str]:
    """The quarantine payload of each row: a JSON object of its four raw fields."""
    picked = {name: _raw_column(rows[name])[positions] for name in FIELDS}
    return [payload_text({name: picked[name][i] for name in FIELDS}) for i in range(len(positions))]


def loads(data: bytes | bytearray) -> Any:
    """orjson; what it refuses goes to the standard library, which also reads NaN, Infinity and
    integers beyond 64 bits (so that those are quarantined with the validator's reason).

    Raises ValueError for anything that is not JSON, including nesting too deep for either parser
    (orjson stops at 1,024 levels, the standard library at the recursion limit)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data, parse_int=_parse_int)
    except RecursionError as exc:  # a RecursionError would kill the thread that reads the payload
        raise ValueError("JSON nested too deeply") from exc


_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def loads_each(data: bytes | bytearray) -> tuple[list[Any], list[str]]:
    """A JSON array that does not parse as a whole (one element nested too deep, say), element by
    element: (the elements that parse, the raw texts of those that do not). ValueError when `data`
    is not an array at all. Slower than `loads`: only for what `loads` refused."""
    start = len(data) - len(bytes(data).lstrip())
    if data[start : start + 1] != b"[":
        raise ValueError("not a JSON array")
    items: list[Any] = []
    bad: list[str] = []
    depth, begin = 0, start + 1
    for token in _TOKENS.finditer(data, start):
        mark = token.group()
        if mark in (b"[", b"{"):
            depth += 1
        elif mark in (b"]", b"}"):
            depth -= 1
        if (mark == b"," and depth == 1) or depth == 0:  # the end of an element
            piece = bytes(data[begin : token.start()])
            if piece.strip():
                try:
                    items.append(loads(piece))
                except ValueError:
                    bad.append(piece[:MAX_PAYLOAD_CHARS].decode("utf-8", errors="replace"))
            begin = token.end()
            if depth == 0:
                if data[begin:].strip():
                    raise ValueError("text after the JSON array")
                return items, bad
    raise ValueError("the JSON array is not closed")


def _parse_int(text: str) -> int | float:
    """Integers as integers (the validator turns one too large for a float into infinity, so it is
    `not_a_number`, and the quarantine keeps its leading digits); past Python's limit on digits
    converted from text, infinity with its sign, instead of a ValueError for the whole message."""
    if len(text) <= 4000:
        return int(text)
    return float(text)


def _raw_column(values: pd.Series) -> npt.NDArray[np.object_]:
    arr = values.to_numpy(dtype=object)
    if isinstance(values.dtype, pd.CategoricalDtype):  # a missing category is None, as in text
        arr[values.isna().to_numpy()] = None
    return arr


def payload_text(value: Any) -> str:
    return json.dumps(_plain(value), separators=(",", ":"), default=str)[: MAX_PAYLOAD_CHARS * 2]


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf, huge integers and timestamps to strings;
    containers deeper than MAX_DEPTH cut off."""
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 64:
        if value.bit_length() > 13_000:  # beyond the digits str() converts (from another source than `loads`)
            return f"an integer of {value.bit_length()} bits"
        digits = str(value)
        return f"{digits[:40]}... ({len(digits.lstrip('-'))} digits)"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


# -- columns --------------------------------------------------------------------------------


def _object(values: pd.Series) -> npt.NDArray[np.object_]:
    return values.to_numpy(dtype=object)


def _kinds(arr: npt.NDArray[np.object_]) -> tuple[BoolArray, BoolArray, BoolArray]:
    """(is str, is a real number, is missing) for each element of an object array."""
    inferred = pd.api.types.infer_dtype(arr, skipna=False)
    n = len(arr)
    if inferred == "string":
        return np.ones(n, dtype=bool), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if inferred in ("floating", "integer", "mixed-integer-float"):
        return np.zeros(n, dtype=bool), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    types = pd.Series(np.frompyfunc(type, 1, 1)(arr), dtype=object)
    is_str = types.isin([str, np.str_]).to_numpy(dtype=bool)
    is_num = types.isin(_NUMBER_TYPES).to_numpy(dtype=bool)
    missing = pd.isna(arr) & ~is_num
    return is_str, is_num, np.asarray(missing, dtype=bool)


def _sensor_ids(asset: pd.Series, sensor: pd.Series, index: SensorIndex) -> tuple[IntArray, BoolArray]:
    """Sensor id per row (0 when unknown), and whether the asset or sensor field is malformed.

    Categorical columns of strings (the simulator's, for one) are taken by their codes, without
    looking at every row's text."""
    if _string_categories(asset) and _string_categories(sensor):
        a_codes, s_codes = asset.cat.codes.to_numpy(), sensor.cat.codes.to_numpy()
        malformed = (a_codes < 0) | (s_codes < 0)  # a missing value
        a_uniq = np.append(asset.cat.categories.to_numpy(dtype=object), "")
        s_uniq = np.append(sensor.cat.categories.to_numpy(dtype=object), "")
        a_codes = np.where(a_codes < 0, len(a_uniq) - 1, a_codes)
        s_codes = np.where(s_codes < 0, len(s_uniq) - 1, s_codes)
    else:
        a_arr, s_arr = _object(asset), _object(sensor)
        a_str, s_str = _kinds(a_arr)[0], _kinds(s_arr)[0]
        malformed = ~(a_str & s_str)
        a_codes, a_uniq = pd.factorize(np.where(a_str, a_arr, ""))
        s_codes, s_uniq = pd.factorize(np.where(s_str, s_arr, ""))
    pair = a_codes.astype(np.int64) * max(len(s_uniq), 1) + s_codes
    p_codes, p_uniq = pd.factorize(pair)
    width = max(len(s_uniq), 1)
    lookup = np.array(
        [index.ids.get((str(a_uniq[p // width]), str(s_uniq[p % width])), 0) for p in p_uniq.tolist()],
        dtype=np.int64,
    )
    ids = lookup[p_codes] if len(lookup) else np.zeros(len(pair), dtype=np.int64)
    ids[malformed] = 0
    return ids, malformed


def _string_categories(values: pd.Series) -> bool:
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return False
    return all(type(c) is str for c in values.cat.categories)


def _per_sensor(bounds: dict[int, float], sensor_id: IntArray, default: float) -> npt.NDArray[np.float64]:
    if not bounds:
        return np.full(len(sensor_id), default)
    size = max(max(bounds), int(sensor_id.max(initial=0))) + 1
    table = np.full(size, default)
    table[list(bounds)] = list(bounds.values())
    return table[sensor_id]


def parse_timestamps(values: pd.Series) -> tuple[IntArray, BoolArray, BoolArray]:
    """(µs since the epoch, parsed, missing) per element; see the module docstring for the rules."""
    n = len(values)
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        ts = pd.DatetimeIndex(values).as_unit("us")
        ok = ~np.asarray(ts.isna())
        return np.where(ok, ts.asi8, 0).astype(np.int64), ok, np.zeros(n, dtype=bool)
    if pd.api.types.is_datetime64_dtype(dtype):  # naive: refuse to guess the zone
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        us, ok = _epoch(values.to_numpy(dtype=np.float64, na_value=np.nan))
        return us, ok, np.zeros(n, dtype=bool)
    arr = _object(values)
    is_str, is_num, missing = _kinds(arr)
    if is_str.all():
        fast = _iso_with_arrow(arr)
        if fast is not None:
            return fast, np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    us = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    if is_num.any():
        us[is_num], ok[is_num] = _epoch(_floats(arr[is_num]))
    if is_str.any():
        where = np.flatnonzero(is_str)
        strings = pd.Series(arr[where], dtype=object).astype(str)
        missing[where[(strings.str.strip() == "").to_numpy()]] = True
        numbers = pd.to_numeric(strings, errors="coerce").to_numpy(dtype=np.float64)
        numeric = ~np.isnan(numbers)
        us[where[numeric]], ok[where[numeric]] = _epoch(numbers[numeric])
        rest = where[~numeric]
        texts = strings[~numeric]
        aware = texts.str.fullmatch(_ISO_AWARE).fillna(False).to_numpy(dtype=bool)
        if aware.any():
            parsed = pd.to_datetime(texts[aware], utc=True, format="ISO8601", errors="coerce")
            stamps = pd.DatetimeIndex(parsed).as_unit("us")
            good = ~np.asarray(stamps.isna())
            target = rest[aware]
            us[target[good]] = stamps.asi8[good]
            ok[target[good]] = True
    return us, ok, missing


def _iso_with_arrow(arr: npt.NDArray[np.object_]) -> IntArray | None:
    """All strings aware ISO 8601: parse them in one Arrow cast; None when any does not parse."""
    if len(arr) and not _ISO_AWARE_RE.fullmatch(arr[0]):  # the cast would fail; failing costs more than a look
        return None
    try:
        cast = pc.cast(pa.array(arr, type=pa.string()), pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return np.asarray(cast.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _epoch(numbers: npt.NDArray[np.float64]) -> tuple[IntArray, BoolArray]:
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.where(np.abs(numbers) >= _MS_FROM, 1e3, 1e6)
        us = np.rint(numbers * scale)
        ok = np.isfinite(us) & (np.abs(us) < _MAX_US)
    return np.where(ok, us, 0).astype(np.int64), ok


def _floats(numbers: npt.NDArray[np.object_]) -> npt.NDArray[np.float64]:
    """Numbers as floats; an integer too large for a float becomes infinite (with its sign)."""
    try:
        return numbers.astype(np.float64)
    except OverflowError:
        return np.array([_float(n) for n in numbers], dtype=np.float64)


def _float(number: Any) -> float:
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def _values(values: pd.Series) -> tuple[npt.NDArray[np.float64], BoolArray, BoolArray]:
    """(value, finite number, missing) per element."""
    n = len(values)
    dtype = values.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        out = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return out, np.isfinite(out), np.zeros(n, dtype=bool)
    arr = _object(values)
    is_str, is_num, missing = _kinds(arr)
    out = np.full(n, np.nan)
    if is_num.any():
        out[is_num] = _floats(arr[is_num])
    if is_str.any():
        where = np.flatnonzero(is_str)
        strings = pd.Series(arr[where], dtype=object).astype(str)
        missing[where[(strings.str.strip() == "").to_numpy()]] = True
        out[where] = pd.to_numeric(strings, errors="coerce").to_numpy(dtype=np.float64)
    # anything else (bool, list, object) is not a number
    return out, np.isfinite(out), missing
