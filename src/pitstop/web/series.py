"""Plot series for the asset page: the minimum and maximum of each of about PLOT_BUCKETS epoch-aligned
time buckets of a signal, as (x, y) points.

The database does the work: whole 5-minute or hour spans come from the stored roll-ups
(storage/repos/rollups.py, kept up to date by the `rollups` job), the readings only for the partial
first span and the open tail since the last roll-up. So the first view of a month or a year costs about
what a refresh does, and nothing is kept in the web process.
"""

from __future__ import annotations

from pitstop.storage.engine import Database
from pitstop.storage.repos.rollups import RollupRepo

PLOT_BUCKETS = 300

Points = list[tuple[float, float]]


def points(db: Database, sensor_id: int, start_us: int, end_us: int) -> tuple[Points, int]:
    """(points, readings): per bucket its minimum and maximum at the bucket's middle (one point when
    they are equal), so spikes survive and a plot never carries more than 2 * PLOT_BUCKETS points."""
    out: Points = []
    total = 0
    for lo_us, hi_us, (low, high, n) in RollupRepo(db).series(sensor_id, start_us, end_us, PLOT_BUCKETS):
        x = (lo_us + hi_us) / 2e6
        out.append((x, low))
        if high != low:
            out.append((x, high))
        total += n
    return out, total
