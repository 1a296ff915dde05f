"""Out-of-range marks of a prediction: the same marks whether a few values are checked as plain
floats (the single-row fast answer) or many through numpy."""

from __future__ import annotations

import numpy as np

from pitstop.ml.registry.serving import Limits

LIMITS = Limits.of({"a": (0.0, 10.0), "b": (-5.0, 5.0)}, ["a", "b", "free"], "outside the range seen in training")


def test_a_row_inside_or_on_the_bounds_has_no_marks() -> None:
    assert LIMITS.marks(np.array([[0.0, -5.0, 1e300]]), "input", 100) == []
    assert LIMITS.marks(np.array([[10.0, 5.0, -1e300]]), "input", 100) == []


def test_a_value_past_a_bound_is_marked_with_its_row_and_range() -> None:
    marks = LIMITS.marks(np.array([[3.0, 0.0, 1.0], [10.5, -7.0, 0.0]]), "input", 100)
    assert marks == [
        {"row": 1, "name": "a", "kind": "input", "value": 10.5, "range": [0.0, 10.0], "why": LIMITS.meaning},
        {"row": 1, "name": "b", "kind": "input", "value": -7.0, "range": [-5.0, 5.0], "why": LIMITS.meaning},
    ]


def test_few_and_many_values_give_the_same_marks() -> None:
    rng = np.random.default_rng(3)
    for rows in (1, 2, 21, 22, 500):  # 21 rows x 3 = 63 values: the plain path; 22 and up: numpy
        values = rng.uniform(-12, 12, (rows, 3))
        marks = LIMITS.marks(values, "output", 10_000)
        outside = (values < LIMITS.low) | (values > LIMITS.high)
        assert len(marks) == int(outside.sum())
        assert [(m["row"], m["name"]) for m in marks] == [
            (int(r), LIMITS.columns[c]) for r, c in zip(*np.nonzero(outside), strict=True)
        ]


def test_nan_is_not_marked_and_room_bounds_the_marks() -> None:
    assert LIMITS.marks(np.array([[np.nan, 0.0, 0.0]]), "output", 100) == []
    many = np.full((50, 3), 99.0)
    assert len(LIMITS.marks(many, "output", 7)) == 7
    assert LIMITS.marks(many[:1], "output", 0) == []
