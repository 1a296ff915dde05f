"""Server-side plots: decimation keeps extremes and bounds the points; the SVG is well-formed text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pitstop.web.plots import decimate, line


def test_decimation_keeps_the_spike_and_bounds_the_points() -> None:
    points = [(float(i), 0.0) for i in range(100_000)]
    points[54_321] = (54_321.0, 7.0)
    out = decimate(points, 300)
    assert len(out) <= 600
    assert (54_321.0, 7.0) in out
    assert out == sorted(out)


@given(st.lists(st.tuples(st.floats(allow_nan=True), st.floats(allow_nan=True, allow_infinity=True)), max_size=300))
def test_any_points_give_an_svg(points: list[tuple[float, float]]) -> None:
    svg = str(line(points, width=100, height=30, label="<x>"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<x>" not in svg and "nan" not in svg.lower()
