"""Plots: the SVG sparklines (decimation keeps extremes and bounds the points; well-formed text) and the
asset page's plotly figures (time axis, y-range, gaps, expected band, marks, plain numbers)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.storage.repos.assets import AlarmLimits, SensorInfo
from pitstop.web.plots import (
    Mark,
    band,
    decimate,
    figure,
    from_local,
    installation_zone,
    line,
    local,
    plain,
    plotly_bundle,
    plotly_css,
    series_traces,
    y_range,
)
from pitstop.web.series import MAX_BUCKETS, Bucket, Expected


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


# -- the asset page's plotly charts -----------------------------------------------------------------

US = 1_000_000
T0 = int(datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp() * US)
LISBON = ZoneInfo("Europe/Lisbon")  # UTC+1 in July


def sensor(**overrides: Any) -> SensorInfo:
    fields: dict[str, Any] = {
        "id": 7,
        "asset": "pump-1",
        "name": "bearing_temp",
        "unit": "degC",
        "min_value": -20.0,
        "max_value": 150.0,
        "period_s": 10.0,
        "alarm": None,
    }
    return SensorInfo(**(fields | overrides))


def run(start_us: int, count: int, width_s: float, low: float = 40.0, high: float = 42.0) -> list[Bucket]:
    step = int(width_s * US)
    return [
        Bucket(start_us + i * step, start_us + (i + 1) * step, low + i * 0.01, high + i * 0.01, 30)
        for i in range(count)
    ]


def test_numbers_are_written_plainly() -> None:
    assert plain(20_000) == "20,000"
    assert plain(19_999.5) == "19,999" or plain(19_999.5) == "20,000"
    assert plain(0.000123) == "0.000123"
    assert plain(-1234.5678) == "-1,234.6"
    assert plain(2.5) == "2.5" and plain(0) == "0" and plain(1e7) == "10,000,000"
    assert "e" not in plain(1.5e-9) and "e" not in plain(3.2e12)


def test_the_y_range_follows_the_data_not_the_sensor_range() -> None:
    """bearing_temp reads 40-45 °C on a sensor of -20..150 °C: the chart spans about 40-45, the physical
    range is not drawn, an alarm limit near the data is in range and one far off is named instead."""
    near = AlarmLimits(above=44.0, critical_above=120.0)  # the data: 40.0 to 43.0 °C
    fig = figure(sensor(alarm=near), run(T0, 101, 60), zone=UTC, extent_us=(T0, T0 + 6060 * US), window_s=86400)
    lo, hi = fig["layout"]["yaxis"]["range"]
    assert 39 < lo < 40 and 44 < hi < 45
    lines = [s["y0"] for s in fig["layout"]["shapes"] if s["type"] == "line" and s["xref"] == "paper"]
    assert lines == [44.0]  # the alarm near the data; not 120, -20 or 150
    assert "critical above 120 °C" in fig["layout"]["annotations"][0]["text"]
    assert fig["layout"]["yaxis"]["exponentformat"] == "none" and fig["layout"]["yaxis"]["separatethousands"]


def test_a_flat_signal_gets_a_range_around_it() -> None:
    lo, hi = y_range([20_000.0, 20_000.0], [])  # type: ignore[misc]
    assert lo < 20_000 < hi and hi - lo < 5_000


def test_the_time_axis_is_local_and_spans_the_data() -> None:
    data = run(T0, 10, 300)
    fig = figure(sensor(), data, zone=LISBON, extent_us=(T0, data[-1].end_us), window_s=30 * 86400)
    xaxis = fig["layout"]["xaxis"]
    assert xaxis["type"] == "date"
    assert xaxis["range"] == ["2026-07-01 13:00:00", "2026-07-01 13:50:00"]  # Lisbon wall clock, the data's extent
    assert "rangeselector" not in xaxis  # 50 minutes of data: no zoom button shorter than that to offer
    two_days = figure(sensor(), data, zone=LISBON, extent_us=(T0, T0 + 2 * 86400 * US), window_s=7 * 86400)
    assert [b["label"] for b in two_days["layout"]["xaxis"]["rangeselector"]["buttons"]] == ["1h", "6h", "1d", "all"]
    hover = [t["hovertemplate"] for t in fig["data"] if "hovertemplate" in t]
    assert hover and all("°C" in h for h in hover)
    assert fig["data"][-1]["x"][0] == "2026-07-01 13:02:30"  # bucket middles, in local time


def test_a_gap_longer_than_three_periods_breaks_the_line() -> None:
    """Readings every 10 s; buckets of a minute; 5 minutes missing: one break, in every trace."""
    before, after = run(T0, 5, 60), run(T0 + 10 * 60 * US, 5, 60)
    traces, _ = series_traces(sensor(), [*before, *after], UTC)
    lines = [t for t in traces if t.get("fill") is None]
    assert lines and all(t["x"].count(None) == 1 and t["y"].count(None) == 1 for t in lines)
    band = next(t for t in traces if t.get("fill") == "toself")
    assert band["x"].count(None) == 1  # two closed polygons, not one bridging the gap
    adjacent, _ = series_traces(sensor(), run(T0, 10, 60), UTC)
    assert all(None not in t["x"] for t in adjacent)


def test_single_readings_are_one_line() -> None:
    data = [Bucket(T0 + i * US, T0 + (i + 1) * US, 3.0, 3.0, 1) for i in range(20)]
    traces, _ = series_traces(sensor(unit="mm/s"), data, UTC)
    assert len(traces) == 1 and traces[0]["y"] == [3.0] * 20 and "mm/s" in traces[0]["hovertemplate"]


def test_the_points_sent_are_bounded() -> None:
    data = run(T0, MAX_BUCKETS, 60)
    expected = Expected("hvac-twin", 1, 0.5, [(b.middle_us, 1, 2, 3) for b in data], 60 * US)
    traces, _ = series_traces(sensor(), data, UTC, expected)
    assert max(len(t["x"]) for t in traces) == 2 * MAX_BUCKETS <= 2_000  # a band's polygon: there and back
    every_other = run(T0, 2 * MAX_BUCKETS, 60)[::2]  # a gap after every bucket: the worst case
    traces, _ = series_traces(sensor(period_s=1.0), every_other, UTC)
    assert max(len(t["x"]) for t in traces) < 2_000


def test_the_expected_band_and_its_legend() -> None:
    data = run(T0, 20, 60)
    expected = Expected("hvac-twin", 3, 0.45, [(b.middle_us, 40.5, 41.0, 41.5) for b in data[5:]], 60 * US)
    fig = figure(sensor(), data, zone=UTC, extent_us=(T0, data[-1].end_us), window_s=3600, expected=expected)
    band = next(t for t in fig["data"] if t.get("fill") == "toself" and t["name"].startswith("expected"))
    assert band["name"] == "expected ± 0.45" and len(band["x"]) == 2 * 15
    assert any("hvac-twin v3" in t.get("hovertemplate", "") for t in fig["data"])
    assert fig["layout"]["showlegend"] is True
    far = Expected("hvac-twin", 3, 0.45, [(b.middle_us, -500.0, -499.0, -498.0) for b in data])
    lo, _ = figure(sensor(), data, zone=UTC, extent_us=None, window_s=3600, expected=far)["layout"]["yaxis"]["range"]
    assert lo > -10  # a twin far off leaves the chart; the readings are not squashed


def test_marks_are_spans_with_a_marker_at_their_start() -> None:
    start = datetime.fromtimestamp(T0 / US + 600, tz=UTC)
    marks = [
        Mark("incident", start, None, "incident #3 (warning, open): <b>hot</b> & loud"),
        Mark("order", start, start + timedelta(minutes=5), "work order #1 (open): grease"),
        Mark("incident", start, None, "limits on another sensor", sensor="vib_rms"),
        Mark("finding", start - timedelta(days=3), start - timedelta(days=2), "finding before the chart"),
    ]
    data = run(T0, 60, 60)
    fig = figure(sensor(), data, zone=UTC, extent_us=(T0, data[-1].end_us), window_s=86400, marks=marks)
    events = next(t for t in fig["data"] if t["meta"] == "marks")
    assert events["x"] == ["2026-07-01 12:10:00"] * 2
    assert events["text"][0] == "incident #3 (warning, open): &lt;b&gt;hot&lt;/b&gt; &amp; loud"  # never markup
    spans = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
    assert len(spans) == 2 and spans[0]["x1"] == "2026-07-01 13:00:00"  # the open incident runs to the end
    assert figure(sensor(), data, zone=UTC, extent_us=None, window_s=86400, marks=marks)["layout"]["shapes"] == []


def test_local_times_go_back_and_forth() -> None:
    t = from_local("2026-07-01 13:02:30.25", LISBON)
    assert t == datetime(2026, 7, 1, 12, 2, 30, 250_000, tzinfo=UTC)
    assert local(int(t.timestamp() * US), LISBON) == "2026-07-01 13:02:30"
    for bad in ("", "yesterday", "2026-13-01", "2026-07-01 13:00" + " " * 40):
        with pytest.raises(ValueError):
            from_local(bad, LISBON)


def test_the_zone_is_the_installations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Lisbon")
    assert installation_zone() == (LISBON, "Europe/Lisbon")
    monkeypatch.setenv("TZ", "Not/AZone")
    zone, name = installation_zone()  # falls back to /etc/localtime or UTC, never fails
    assert name != "Not/AZone" and datetime.now(zone).utcoffset() is not None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**7),
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(-1e300, 1e300),
            st.integers(1, 9),
        ),
        max_size=60,
    ),
    st.text(max_size=20),
)
def test_any_buckets_give_a_figure_plotly_can_read(rows: list[tuple[int, float, float, int]], unit: str) -> None:
    data = []
    t = T0
    for gap_s, low, high, n in rows:
        data.append(Bucket(t + gap_s * US, t + gap_s * US + 60 * US, low, high, n))
        t = data[-1].end_us
    fig = figure(sensor(unit=unit), data, zone=LISBON, extent_us=(T0, t + 1), window_s=86400)
    text = json.dumps(fig, allow_nan=False)  # strict JSON: no NaN or infinity reaches the browser
    assert "<" not in text.replace("<extra></extra>", "")  # no markup: plotly would turn it into style attributes (CSP)
    y = fig["layout"]["yaxis"].get("range")
    assert y is None or y[0] < y[1]


def test_the_bundled_plotly_and_its_css() -> None:
    """The plotly package's bundle, with the CSS it would inject (so the CSP needs no 'unsafe-inline')."""
    plotly = pytest.importorskip("plotly")
    bundle = plotly_bundle()
    assert bundle is not None and bundle.path.is_file()
    assert bundle.js_name.startswith("plotly-") and bundle.version[0].isdigit()
    assert ".js-plotly-plot .plotly .main-svg{position:absolute" in bundle.css
    assert ".js-plotly-plot .plotly .modebar{" in bundle.css and ".plotly-notifier{" in bundle.css
    assert "X " not in bundle.css and plotly.__version__
    assert plotly_css("no rules here") == ""
