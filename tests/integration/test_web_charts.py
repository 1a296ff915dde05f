"""The asset page's charts through the TestClient: the figure JSON each chart is drawn from (time axis in the
installation's zone, the data's extent, gaps, marks), the zoom route's finer series, and plotly.js served
from the plotly package under a strict CSP."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitstop.app import Pitstop
from pitstop.core.types import Role, Severity
from pitstop.ml.explanations import Contribution
from pitstop.ml.scoring import Finding
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.web.plots import plotly_bundle
from tests.integration.test_web_pages import login

US = 1_000_000


def write(p: Pitstop, asset: str, sensor: str, start_us: int, seconds: int, every_s: int, value: float = 40.0) -> int:
    """Readings of a sensor from start_us for `seconds`, one every `every_s`, around `value`; its id."""
    sensor_id = next(s.id for s in p.assets.sensors(asset) if s.name == sensor)
    ts = np.arange(start_us, start_us + seconds * US, every_s * US, dtype=np.int64)
    values = value + np.sin(np.arange(len(ts)) / 50.0)
    p.readings.write(ReadingBatch.of(np.full(len(ts), sensor_id), ts, values))
    return sensor_id


def figure_of(html: str, sensor_id: int) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" id="chart-{sensor_id}-figure">(.+?)</script>', html)
    assert found is not None, f"no chart for sensor {sensor_id}"
    figure: dict[str, Any] = json.loads(found.group(1))
    return figure


@pytest.fixture
def now_us(demo_pitstop: Pitstop) -> int:
    return int(demo_pitstop.clock.now().timestamp() * US)


@pytest.fixture
def viewer(client: TestClient, keys: dict[Role, str]) -> TestClient:
    login(client, keys[Role.VIEWER])
    return client


def test_a_chart_spans_its_data_in_the_installations_zone(
    viewer: TestClient, demo_pitstop: Pitstop, now_us: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three days of bearing temperature in the 30-day window: the time axis shows those three days (in
    Tokyo time when the installation runs there), bucketed for three days, its y-range around 39-41 °C
    (not the sensor's -20-150 °C), the readings counted plainly."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    start = now_us - 3 * 86400 * US
    sensor_id = write(demo_pitstop, "pump-1", "bearing_temp", start, 3 * 86400, 60)
    html = viewer.get("/ui/assets/pump-1?range=30d").text
    assert "Times in Asia/Tokyo" in html and "4,320 readings" in html
    layout = figure_of(html, sensor_id)["layout"]
    x0, x1 = layout["xaxis"]["range"]
    shown = np.datetime64(x1) - np.datetime64(x0)
    assert timedelta(days=2.9) < shown.astype("timedelta64[s]").item() < timedelta(days=3.1)
    assert x1.startswith(("2026-01-05 16:", "2026-01-05 17:00"))  # the frozen clock's 08:00 UTC, in Tokyo
    lo, hi = layout["yaxis"]["range"]
    assert 38 < lo < 39.5 and 40.5 < hi < 42
    traces = [t for t in figure_of(html, sensor_id)["data"] if t["meta"] == "series"]
    assert max(len(t["x"]) for t in traces) > 100  # fitted to the three days, not 300 buckets of 30 days


def test_a_gap_in_the_readings_is_a_break(viewer: TestClient, demo_pitstop: Pitstop, now_us: int) -> None:
    start = now_us - 20 * 3600 * US
    sensor_id = write(demo_pitstop, "pump-1", "vib_rms", start, 4 * 3600, 10, 2.0)
    write(demo_pitstop, "pump-1", "vib_rms", start + 10 * 3600 * US, 10 * 3600, 10, 2.0)  # 6 hours missing
    traces = [t for t in figure_of(viewer.get("/ui/assets/pump-1?range=24h").text, sensor_id)["data"]]
    lines = [t for t in traces if t["meta"] == "series" and t.get("fill") is None]
    assert lines and all(t["y"].count(None) == 1 for t in lines)


def test_incidents_findings_and_work_orders_are_on_the_time_line(
    viewer: TestClient, demo_pitstop: Pitstop, now_us: int
) -> None:
    sensor_id = write(demo_pitstop, "pump-1", "bearing_temp", now_us - 6 * 3600 * US, 6 * 3600, 60)
    item, _ = demo_pitstop.incidents.open_or_update(
        "charts.hot:pump-1", severity=Severity.WARNING, title="pump-1 <runs> hot"
    )
    demo_pitstop.maintenance.orders.open_for("test", "pump-1", "test:grease", title="grease the bearing")
    demo_pitstop.incidents.open_or_update(
        "limits.alarm:pump-1/vib_rms", severity=Severity.CRITICAL, title="vibration high"
    )
    now = demo_pitstop.clock.now()
    evidence = Finding(
        "pump-1",
        now - timedelta(hours=3),
        now - timedelta(hours=2),
        40,
        60,
        9.5,
        4.0,
        [Contribution("bearing_temp", 0.8)],
    )
    demo_pitstop.scoring.report(evidence)
    html = viewer.get("/ui/assets/pump-1?range=24h").text
    figure = figure_of(html, sensor_id)
    marks = next(t for t in figure["data"] if t["meta"] == "marks")
    texts = " | ".join(marks["text"])
    assert "finding: bearing_temp abnormal (score 9.5, cut-off 4)" in texts
    finding = next(s for s in figure["layout"]["shapes"] if s["type"] == "rect" and s["opacity"] > 0.1)
    assert (finding["x0"], finding["x1"]) == ("2026-01-05 05:00:00", "2026-01-05 06:00:00")  # its evidence window
    assert f"incident #{item.id} (warning, open): pump-1 &lt;runs&gt; hot" in texts
    assert "work order" in texts and "grease the bearing" in texts
    assert "vibration high" not in texts  # another sensor's incident is on that sensor's chart only
    assert any(s["type"] == "rect" for s in figure["layout"]["shapes"])


def test_zooming_loads_finer_buckets(viewer: TestClient, demo_pitstop: Pitstop, now_us: int) -> None:
    """A 10-minute zoom into 7 days: the series route reads that span at its own resolution."""
    write(demo_pitstop, "pump-1", "vib_rms", now_us - 2 * 3600 * US, 2 * 3600, 10, 2.0)
    end = demo_pitstop.clock.now()
    start = end - timedelta(minutes=10)
    answer = viewer.get(
        "/ui/assets/pump-1/series",
        params={"sensor": "vib_rms", "start": start.strftime("%Y-%m-%d %H:%M:%S"), "end": end.isoformat()},
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    got = answer.json()
    assert got["readings"] == 60
    line = next(t for t in got["data"] if t.get("fill") is None)
    assert len(line["x"]) == 60 and line["x"][0].startswith(start.strftime("%Y-%m-%d %H:%M"))
    assert got["yrange"][0] < min(line["y"]) and max(line["y"]) < got["yrange"][1]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"sensor": "vib_rms", "start": "yesterday", "end": "now"}, 400),
        ({"sensor": "vib_rms", "start": "2026-01-05 07:00", "end": "2026-01-05 06:00"}, 400),
        ({"sensor": "vib_rms", "start": "2030-01-01 00:00", "end": "2031-01-01 00:00"}, 400),  # all after now
        ({"sensor": "nope", "start": "2026-01-05 07:00", "end": "2026-01-05 08:00"}, 404),
        ({"sensor": "vib_rms", "start": "0001-01-01 00:00", "end": "9999-12-31 23:59:59"}, 200),  # clipped
        ({"sensor": "vib_rms", "start": "2026-01-05 07:00"}, 422),
    ],
)
def test_the_series_route_refuses_what_it_cannot_read(viewer: TestClient, params: dict[str, str], status: int) -> None:
    assert viewer.get("/ui/assets/pump-1/series", params=params).status_code == status
    assert viewer.get("/ui/assets/no-such/series", params=params).status_code in {404, 400, 422}


def test_the_series_route_needs_a_session(client: TestClient) -> None:
    params = {"sensor": "vib_rms", "start": "2026-01-05 07:00", "end": "2026-01-05 08:00"}
    response = client.get("/ui/assets/pump-1/series", params=params, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sensor=st.text(max_size=60), start=st.text(max_size=45), end=st.text(max_size=45), asset=st.text(min_size=1))
def test_hostile_zoom_requests_get_4xx_not_5xx(
    viewer: TestClient, sensor: str, start: str, end: str, asset: str
) -> None:
    response = viewer.get(
        f"/ui/assets/{quote(asset, safe='')}/series", params={"sensor": sensor, "start": start, "end": end}
    )
    assert response.status_code in {200, 400, 404, 422}


def test_plotly_is_served_here_under_a_strict_csp(viewer: TestClient) -> None:
    """The page loads plotly.js and its CSS from /ui/vendor (the plotly package's bundle, named by version,
    gzipped when asked for) and keeps its CSP: no 'unsafe-inline', no 'unsafe-eval', nothing from elsewhere."""
    bundle = plotly_bundle()
    assert bundle is not None
    response = viewer.get("/ui/assets/pump-1")
    csp = response.headers["content-security-policy"]
    assert "unsafe" not in csp and csp.startswith("default-src 'self'")
    html = response.text
    assert f'src="/ui/vendor/{bundle.js_name}"' in html and 'src="/ui/static/charts.js"' in html
    assert f'id="plotly.js-style-global" class="no-inline-styles" href="/ui/vendor/{bundle.css_name}"' in html
    assert all(f'<template id="{p}"></template>' in html for p in bundle.placeholders)
    js = viewer.get(f"/ui/vendor/{bundle.js_name}", headers={"Accept-Encoding": "gzip"})
    assert js.status_code == 200 and js.headers["content-encoding"] == "gzip"
    assert js.content == bundle.path.read_bytes()  # httpx undoes the gzip: the same bytes
    assert int(js.headers["content-length"]) < len(js.content) / 2
    assert "immutable" in js.headers["cache-control"] and js.headers["content-type"].startswith("text/javascript")
    plain = viewer.get(f"/ui/vendor/{bundle.js_name}", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.content == js.content
    css = viewer.get(f"/ui/vendor/{bundle.css_name}")
    assert css.status_code == 200 and ".js-plotly-plot .plotly .main-svg" in css.text
    for other in ("plotly.min.js", "../web.css", "plotly-0.0.0.min.js"):
        assert viewer.get(f"/ui/vendor/{quote(other, safe='')}").status_code == 404
    assert "setInterval" in viewer.get("/ui/static/web.js").text
    assert "Plotly.newPlot" in viewer.get("/ui/static/charts.js").text
