"""Server-side plots: decimation keeps extremes and bounds the points; the SVG is well-formed text."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pitstop.web.plots import band, decimate, line


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


def test_a_band_shades_the_interval_around_the_median() -> None:
    svg = str(band([(0.0, 10.0, 20.0, 40.0), (1.0, 8.0, 15.0, 30.0)], thresholds=[25.0], label="rul"))
    polygon = re.search(r'class="interval" points="([^"]+)"', svg)
    assert polygon is not None and len(polygon.group(1).split()) == 4  # upper edge there, lower edge back
    assert 'class="series"' in svg and 'class="threshold"' in svg
    one = str(band([(0.0, 10.0, 20.0, 40.0)]))
    assert 'class="interval-bar"' in one and 'class="median"' in one  # one estimate is still visible
    assert "no data" in str(band([(0.0, float("nan"), 1.0, 2.0)]))
