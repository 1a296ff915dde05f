"""Series for the asset page's charts: per sensor, the minimum, maximum and count of each of about
PLOT_BUCKETS epoch-aligned time buckets of the chosen window, and where a digital twin predicts the
sensor, the band its champion expects.

The database does the work: whole 5-minute or hour spans come from the stored roll-ups
(storage/repos/rollups.py, kept up to date by the `rollups` job), the readings only for the partial
first span and the open tail since the last roll-up. So the first view of a month or a year costs about
what a refresh does, nothing is kept in the web process, and a chart never carries more than
2 * PLOT_BUCKETS values per series whatever the window.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from pitstop.storage.engine import Database
from pitstop.storage.repos.rollups import LEVELS, MIN_SHARE, US, RollupRepo
from pitstop.storage.schema import reading_rollups, readings

if TYPE_CHECKING:
    from pitstop.app import Pitstop

log = logging.getLogger("pitstop.web")
PLOT_BUCKETS = 300
FIT_SHARE = 0.5  # readings that fill less of the window than this are bucketed over what they fill
MAX_BUCKETS = 600  # the most a chart asks for: a band's polygon then has under 2,000 points
# The expected band: the twin's prediction ± this many hold-out mean absolute errors. For normally
# distributed errors the mean absolute error is 0.8 σ, so ±2.5 of them hold about 95 % of the errors.
BAND_MAES = 2.5


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket of a sensor's readings: [start_us, end_us) clipped to the window, and what was in it."""

    start_us: int
    end_us: int
    low: float
    high: float
    n: int

    @property
    def middle_us(self) -> int:
        return (self.start_us + self.end_us) // 2


@dataclass(frozen=True, slots=True)
class Expected:
    """What a twin expects of one sensor: (time µs, lower, expected, upper) per bucket of its inputs."""

    model: str
    version: int
    half_width: float  # BAND_MAES hold-out mean absolute errors
    points: list[tuple[int, float, float, float]]  # only where every input is within its training range
    step_us: int = 0  # the buckets' width: points further apart than that have a gap between them


def buckets(db: Database, sensor_id: int, start_us: int, end_us: int, count: int = PLOT_BUCKETS) -> list[Bucket]:
    """The sensor's readings of [start_us, end_us) in about `count` buckets, in time order; only buckets
    with readings (a bucket that had none is a gap). When the readings fill less than FIT_SHARE of the
    window (3 days of data in a 30-day window), the buckets are those of the stretch they fill: the
    chart shows that stretch, so it gets the resolution of its own length."""
    count = max(1, min(count, MAX_BUCKETS))
    found = _buckets(db, sensor_id, start_us, end_us, count)
    if found:
        first, last = found[0].start_us, found[-1].end_us
        if last - first < FIT_SHARE * (end_us - start_us):
            found = _buckets(db, sensor_id, first, last, count) or found
    return found


def _buckets(db: Database, sensor_id: int, start_us: int, end_us: int, count: int) -> list[Bucket]:
    return [
        Bucket(lo, hi, low, high, n)
        for lo, hi, (low, high, n) in RollupRepo(db).series(sensor_id, start_us, end_us, count)
        if math.isfinite(low) and math.isfinite(high)
    ]


def grid(start_us: int, end_us: int, count: int) -> tuple[int | None, int]:
    """(roll-up level in seconds or None for the readings, bucket width µs) for about `count` buckets:
    the same choice as `RollupRepo.series`."""
    span_us = max(1, end_us - start_us)
    width = max(1, span_us // max(1, count))
    level = next((s for s in LEVELS if span_us / (s * US) >= MIN_SHARE * count), None)
    if level is not None:
        width = -(-width // (level * US)) * (level * US)
    return level, width


def means(
    db: Database, sensor_ids: Sequence[int], start_us: int, end_us: int, count: int = PLOT_BUCKETS
) -> dict[int, dict[int, float]]:
    """Per sensor, the mean of its readings in each bucket of the window that has any: {sensor: {bucket
    middle µs: mean}}. All sensors share the buckets, so a twin's inputs line up row by row."""
    if end_us <= start_us or not sensor_ids:
        return {}
    level, width = grid(start_us, end_us, count)
    sums: dict[tuple[int, int], tuple[float, int]] = {}
    with db.connect() as conn:
        if level is None:
            _add(sums, _raw_sums(conn, sensor_ids, start_us, end_us, width))
        else:
            level_us = level * US
            first = -(-start_us // level_us) * level_us
            _add(sums, _raw_sums(conn, sensor_ids, start_us, min(first, end_us), width))
            for sensor_id in sensor_ids:
                last = conn.execute(
                    select(func.max(reading_rollups.c.start_us)).where(
                        reading_rollups.c.sensor_id == sensor_id,
                        reading_rollups.c.span_s == level,
                        reading_rollups.c.start_us < end_us,
                    )
                ).scalar()
                kept = first if last is None else max(first, min(end_us // level_us * level_us, int(last) + level_us))
                _add(sums, _rolled_sums(conn, sensor_id, level, first, kept, width))
                _add(sums, _raw_sums(conn, [sensor_id], kept, end_us, width))
    out: dict[int, dict[int, float]] = {}
    for (sensor_id, k), (total, n) in sums.items():
        if n > 0:
            middle = (max(k * width, start_us) + min((k + 1) * width, end_us)) // 2
            out.setdefault(sensor_id, {})[middle] = total / n
    return out


def _add(into: dict[tuple[int, int], tuple[float, int]], rows: Iterable[Any]) -> None:
    for sensor_id, k, total, n in rows:
        had = into.get((int(sensor_id), int(k)), (0.0, 0))
        into[(int(sensor_id), int(k))] = (had[0] + float(total), had[1] + int(n))


def _raw_sums(conn: Connection, sensor_ids: Sequence[int], start_us: int, end_us: int, width: int) -> list[Any]:
    if end_us <= start_us:
        return []
    bucket = (readings.c.ts // width).label("bucket")
    query = (
        select(readings.c.sensor_id, bucket, func.sum(readings.c.value), func.count())
        .where(readings.c.sensor_id.in_(list(sensor_ids)), readings.c.ts >= start_us, readings.c.ts < end_us)
        .group_by(readings.c.sensor_id, bucket)
    )
    return list(conn.execute(query))


def _rolled_sums(conn: Connection, sensor_id: int, level: int, start_us: int, end_us: int, width: int) -> list[Any]:
    if end_us <= start_us:
        return []
    bucket = (reading_rollups.c.start_us // width).label("bucket")
    query = (
        select(reading_rollups.c.sensor_id, bucket, func.sum(reading_rollups.c.total), func.sum(reading_rollups.c.n))
        .where(
            reading_rollups.c.sensor_id == sensor_id,
            reading_rollups.c.span_s == level,
            reading_rollups.c.start_us >= start_us,
            reading_rollups.c.start_us < end_us,
        )
        .group_by(reading_rollups.c.sensor_id, bucket)
    )
    return list(conn.execute(query))


def expected(
    p: Pitstop,
    asset_type: str,
    sensors: Sequence[Any],
    start_us: int,
    end_us: int,
    count: int = PLOT_BUCKETS,
    *,
    only: str | None = None,
) -> dict[str, Expected]:
    """Per sensor name, the band the champion of the asset type's twin (`<type>-twin`) expects over the
    window: its prediction from the mean of each input in each bucket, ± BAND_MAES of its hold-out mean
    absolute error for that output. Empty when no twin serves the type, the asset lacks an input, or
    (with `only`) that sensor is not one the twin predicts."""
    server = getattr(getattr(p, "models", None), "server", None)
    if server is None:
        return {}
    name = f"{asset_type}-twin"
    registry = p.models.registry
    if name not in registry.names():
        return {}
    champion = registry.alias(name, "champion")
    if champion is None:
        return {}
    if not _loaded(server, name):
        return {}
    envelope = registry.get(name, champion).envelope
    features = envelope.get("features", [])
    inputs = [f["name"] for f in features if f.get("role") == "input"]
    holdout = envelope.get("metrics", {}).get("holdout", {})
    by_name = {s.name: s for s in sensors}
    outputs = [
        f["name"] for f in features if f.get("role") == "output" and f["name"] in by_name and only in (None, f["name"])
    ]
    if not outputs or not inputs or any(i not in by_name for i in inputs):
        return {}
    found = means(p.db, [by_name[i].id for i in inputs], start_us, end_us, count)
    seen = {c: v for c, v in envelope.get("ranges", {}).items() if v}
    times = []
    rows = []
    for t in sorted(set.intersection(*(set(found.get(by_name[i].id, {})) for i in inputs))):
        row = {i: found[by_name[i].id][t] for i in inputs}
        # Where an input leaves what the twin saw in training its prediction is a guess: no band there.
        if all(seen[i][0] <= v <= seen[i][1] for i, v in row.items() if i in seen):
            times.append(t)
            rows.append(row)
    if not times:
        return {}
    answer = server.predict(name, rows)
    columns = list(answer["outputs"])
    out: dict[str, Expected] = {}
    for output in outputs:
        mae = holdout.get(output, {}).get("mae")
        if output not in columns or mae is None or not math.isfinite(float(mae)):
            continue
        half = BAND_MAES * float(mae)
        c = columns.index(output)
        points = [
            (t, y - half, y, y + half)
            for t, y in ((t, float(row[c])) for t, row in zip(times, answer["predictions"], strict=True))
            if math.isfinite(y)
        ]
        out[output] = Expected(name, int(answer["version"]), half, points, grid(start_us, end_us, count)[1])
    return out


_loading: set[str] = set()
_loading_lock = threading.Lock()


def _loaded(server: Any, name: str) -> bool:
    """Whether this process serves the model already. If not, it is loaded on a thread of its own
    (LightGBM's import and the ONNX conversion take seconds the first time): the page is not held up,
    and its next refresh has the band."""
    if any(s["name"] == name and s["serving_version"] is not None for s in server.status()):
        return True
    with _loading_lock:
        if name in _loading:
            return False
        _loading.add(name)

    def load() -> None:
        try:
            server.current(name)
        except Exception:
            log.warning("dashboard: model %s could not be loaded for the expected band", name, exc_info=True)
        finally:
            with _loading_lock:
                _loading.discard(name)

    threading.Thread(target=load, name=f"load-{name}", daemon=True).start()
    return False
