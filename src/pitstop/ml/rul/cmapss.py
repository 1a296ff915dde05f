"""Reading NASA's C-MAPSS turbofan files into histories (format: shared/datasets/README.md, section 1).

Training units run to failure: each becomes a `History` whose ``failed_at`` is its last cycle.
Test units stop before failure; the truth file gives the RUL at each one's last row, so a test
history gets ``failed_at = last cycle + true RUL`` in ``meta["truth_failed_at"]`` (never in
``failed_at``, so nothing can learn from it by accident).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pitstop.ml.rul.base import FloatArray, History

SETTINGS = ("setting1", "setting2", "setting3")
SENSORS = tuple(f"s{i}" for i in range(1, 22))
COLUMNS = SETTINGS + SENSORS


def read_table(path: Path) -> FloatArray:
    """One C-MAPSS text file as a (rows, 26) array: unit, cycle, 3 settings, 21 sensors."""
    table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if table.shape[1] != 26:
        raise ValueError(f"{path}: expected 26 columns, got {table.shape[1]}")
    return table


def histories(table: FloatArray, *, run_to_failure: bool, prefix: str = "") -> list[History]:
    """Split a table into one history per unit (rows in file order; time = cycle)."""
    out = []
    units = table[:, 0].astype(np.int64)
    for unit in np.unique(units):
        rows = table[units == unit]
        t = rows[:, 1].copy()
        failed = float(t[-1]) if run_to_failure else None
        out.append(History(f"{prefix}{unit}", t, rows[:, 2:].copy(), COLUMNS, failed_at=failed))
    return out


def load(folder: Path, subset: str) -> tuple[list[History], list[History], FloatArray]:
    """Training histories (run to failure), test histories and the test truth (RUL at the last row)."""
    train = histories(read_table(folder / f"train_{subset}.txt"), run_to_failure=True, prefix=f"{subset}-train-")
    test = histories(read_table(folder / f"test_{subset}.txt"), run_to_failure=False, prefix=f"{subset}-test-")
    truth = np.loadtxt(folder / f"RUL_{subset}.txt", dtype=np.float64, ndmin=1)
    if len(truth) != len(test):
        raise ValueError(f"{subset}: {len(test)} test units but {len(truth)} truths")
    for h, y in zip(test, truth, strict=True):
        h.meta["truth_failed_at"] = float(h.t[-1] + y)
    return train, test, truth


def select(history: History, columns: tuple[str, ...]) -> History:
    """The same history with only ``columns`` (in that order)."""
    idx = [history.features.index(c) for c in columns]
    return History(history.unit, history.t, history.X[:, idx], columns, history.failed_at, dict(history.meta))
