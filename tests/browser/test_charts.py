"""The asset page's sensor charts in headless Chromium against `pitstop demo`: plotly.js draws them under the
dashboard's strict CSP (the `page` fixture fails on any console error), with a date axis, a y-range from the
data, hover values, an open incident marked on the time line, zoom shared by the asset's charts, the twin's
expected band, and the zoom kept when the page refreshes itself. Screenshots: the test's tmp dir, copied to
/tmp/pitstop-screens/charts-*.png."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from pitstop.app import Pitstop
from pitstop.core.types import Severity
from tests.browser.conftest import Demo
from tests.browser.test_dashboard import login

SHOTS = Path("/tmp/pitstop-screens")
MONTH_DAY_YEAR = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d{4}")


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"charts-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def chart(page: Page, sensor: str) -> Locator:
    return page.locator(f'#plots div.chart[data-sensor="{sensor}"]')


def drawn(page: Page, sensor: str) -> Locator:
    """The sensor's chart once plotly has drawn it (its SVG with the plotted traces)."""
    div = chart(page, sensor)
    expect(div.locator("svg.main-svg .scatterlayer .trace").first).to_be_attached()
    return div


def layout(page: Page, sensor: str) -> Any:
    return page.evaluate(
        "s => { const d = document.querySelector(`#plots div.chart[data-sensor='${s}']`);"
        " return {x: d.layout.xaxis.range, y: d.layout.yaxis.range,"
        " traces: d.data.map(t => ({meta: t.meta, name: t.name || '', n: (t.x || []).length, text: t.text || []}))}; }",
        sensor,
    )


def hover(page: Page, div: Locator, at: float) -> str:
    div.scroll_into_view_if_needed()
    box = div.locator(".nsewdrag").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * at, y)
    page.mouse.move(box["x"] + box["width"] * (at + 0.005), y)
    hovered = div.locator(".hoverlayer")
    expect(hovered).not_to_have_text("")
    return str(hovered.text_content())


@pytest.fixture
def incident(plant: Pitstop) -> str:
    """An open incident on pump-1 with a title of its own."""
    title = f"chart test {uuid.uuid4().hex[:6]}"
    plant.incidents.open_or_update("charts.test:pump-1", severity=Severity.WARNING, title=title)
    return title


def test_the_pump_chart_reads_at_a_glance(page: Page, demo: Demo, incident: str, tmp_path: Path) -> None:
    login(page, demo, demo.viewer)
    page.goto(f"{demo.url}/ui/assets/pump-1?range=24h")
    div = drawn(page, "bearing_temp")
    expect(page.locator("#plots .chart-note")).to_contain_text("Times in ")

    ticks = " ".join(div.locator(".xtick text").all_text_contents())
    assert MONTH_DAY_YEAR.search(ticks) and re.search(r"\d{2}:\d{2}", ticks), ticks  # a date axis
    seen = layout(page, "bearing_temp")
    lo, hi = seen["y"]
    assert lo > -20 and hi < 150 and hi - lo < 60, seen["y"]  # the data's range, not the sensor's -20-150 °C
    labels = div.locator(".ytick text").all_text_contents()
    assert labels and not any("e+" in t for t in labels)

    marks = [t for t in seen["traces"] if t["meta"] == "marks"]
    assert marks and any(incident in text for text in marks[0]["text"]), marks  # the open incident's marker
    assert div.locator(".scatterlayer .trace path.point").count() >= 1

    value = hover(page, div, 0.5)
    assert re.search(r"\d", value) and "°C" in value, value  # the value with its unit
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", value), value  # and the local time
    screenshot(page, tmp_path, "pump-1-hover")

    marker = div.locator(".scatterlayer .trace path.point").last
    marker.scroll_into_view_if_needed()
    box = marker.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(div.locator(".hoverlayer")).to_contain_text(incident)
    screenshot(page, tmp_path, "pump-1-incident")


def test_zooming_one_chart_zooms_the_others_and_loads_finer_data(page: Page, demo: Demo, tmp_path: Path) -> None:
    login(page, demo, demo.viewer)
    page.goto(f"{demo.url}/ui/assets/pump-1?range=7d")
    first, second = drawn(page, "bearing_temp"), drawn(page, "vib_rms")
    before = layout(page, "vib_rms")
    first.scroll_into_view_if_needed()
    box = first.locator(".nsewdrag").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    with page.expect_response(lambda r: "/series?sensor=vib_rms" in r.url and r.status == 200):
        page.mouse.move(box["x"] + box["width"] * 0.80, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.95, y, steps=6)
        page.mouse.up()
    page.wait_for_function(
        "() => { const d = document.querySelector(\"div.chart[data-sensor='vib_rms']\");"
        " return d.data.some(t => t.meta === 'series' && t.x.length > 0 && t.x[0] >= d.layout.xaxis.range[0]); }"
    )
    after_first, after_second = layout(page, "bearing_temp"), layout(page, "vib_rms")
    assert after_first["x"] == after_second["x"] != before["x"]  # the asset's charts share the zoom
    assert str(after_second["x"][0]) > str(before["x"][0])
    screenshot(page, tmp_path, "pump-1-zoomed")

    # web.js replaces the page's content on its refresh: the charts are drawn again, at the same zoom
    page.evaluate(
        "() => fetch(location.href).then(r => r.text()).then(t => { const fresh = new DOMParser()"
        ".parseFromString(t, 'text/html').getElementById('live'); const main = document.getElementById('live');"
        " main.replaceChildren(...fresh.childNodes); })"
    )
    drawn(page, "vib_rms")
    page.wait_for_function(
        "z => { const d = document.querySelector(\"div.chart[data-sensor='vib_rms']\");"
        " return d && d.layout && String(d.layout.xaxis.range[0]) === String(z); }",
        arg=after_second["x"][0],
    )

    second = chart(page, "vib_rms")
    second.scroll_into_view_if_needed()
    box = second.locator(".nsewdrag").bounding_box()
    assert box is not None
    page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # back to the page's extent
    page.wait_for_function(
        "x => { const d = document.querySelector(\"div.chart[data-sensor='bearing_temp']\");"
        " return String(d.layout.xaxis.range[0]) === String(x); }",
        arg=before["x"][0],
    )


def test_the_twin_draws_its_expected_band(page: Page, demo: Demo, tmp_path: Path) -> None:
    """ahu-1's outputs (UCAOT, UCWOT, UCAF) get the hvac-twin champion's band; its inputs do not. The model
    loads on a thread after the first view, so the page is looked at again until the band is there."""
    login(page, demo, demo.viewer)
    for _ in range(30):
        page.goto(f"{demo.url}/ui/assets/ahu-1?range=24h")
        drawn(page, "UCAOT")
        if any(t["name"].startswith("expected") for t in layout(page, "UCAOT")["traces"]):
            break
        page.wait_for_timeout(1000)
    names = [t["name"] for t in layout(page, "UCAOT")["traces"]]
    assert any(re.fullmatch(r"expected ± [0-9.,]+", n) for n in names), names
    assert not any(t["name"].startswith("expected") for t in layout(page, "UCWIT")["traces"])  # an input
    expect(chart(page, "UCAOT").locator(".legend")).to_contain_text("expected ±")
    assert "°C" in hover(page, chart(page, "UCAOT"), 0.6)
    screenshot(page, tmp_path, "ahu-1-expected")


def test_the_range_buttons_and_the_mode_bar_work_under_the_csp(page: Page, demo: Demo, tmp_path: Path) -> None:
    """The 1h button shows the last hour (and the other charts follow); zoom in, pan and reset raise no CSP
    error (the `page` fixture fails on any); no download button (plotly draws it through a blob: image)."""
    login(page, demo, demo.viewer)
    page.goto(f"{demo.url}/ui/assets/pump-1?range=24h")
    div = drawn(page, "bearing_temp")
    drawn(page, "vib_rms")
    div.locator(".rangeselector .button").filter(has_text="1h").click()
    page.wait_for_function(
        "() => { const d = document.querySelector(\"div.chart[data-sensor='vib_rms']\").layout.xaxis.range;"
        " return new Date(d[1].replace(' ', 'T')) - new Date(d[0].replace(' ', 'T')) === 3600000; }"
    )
    div.hover()
    for title in ("Zoom in", "Pan", "Zoom out", "Reset axes"):
        div.locator(f'.modebar-btn[data-title="{title}"]').click()
    assert div.locator('.modebar-btn[data-title^="Download plot"]').count() == 0
    screenshot(page, tmp_path, "pump-1-last-hour")
