"""Words where the dashboard showed data, in headless Chromium against `pitstop demo`: an incident's stream-scoring
evidence as a sentence and a table, knowledge-base Markdown rendered, an HTML 404, no Predict form for viewers.

Each test fails on any console or page error (conftest) and saves screenshots under test-artifacts/screens/
and, for a person to look at, /tmp/pitstop-screens/words-<name>.png.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from pitstop.app import Pitstop
from pitstop.ml.explanations import Contribution
from pitstop.ml.scoring import Finding
from tests.browser.conftest import Demo, shot
from tests.browser.test_dashboard import login

COPIES = Path("/tmp/pitstop-screens")


def keep(page: Page, request: pytest.FixtureRequest, name: str) -> None:
    """A screenshot in the test's artifacts and a copy at /tmp/pitstop-screens/words-<name>.png."""
    shot(page, request, name)
    COPIES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(COPIES / f"words-{name}.png"), full_page=True)


@pytest.fixture
def anomaly(plant: Pitstop) -> int:
    """The stream scorer's report of fan-1's vibration over the last two hours (the demo simulates its readings)."""
    now = plant.clock.now()
    start, end = now - timedelta(hours=2), now - timedelta(minutes=2)
    signals = [Contribution("vib_rms", 0.64), Contribution("vib_kurtosis", 0.27), Contribution("vib_crest", 0.09)]
    plant.scoring.report(Finding("fan-1", start, end, 57, 700, 12.4, 5.3, signals))
    item = plant.incidents.active("asset.anomaly:fan-1")
    assert item is not None
    return item.id


def test_stream_scoring_evidence_is_a_sentence_and_a_table(
    page: Page, demo: Demo, anomaly: int, request: pytest.FixtureRequest
) -> None:
    login(page, demo, demo.viewer)
    page.goto(f"{demo.url}/ui/incidents/{anomaly}")
    evidence = page.locator("#evidence")
    sentence = evidence.locator("p.sentence")
    expect(sentence).to_contain_text("fan-1: vib_rms ")
    expect(sentence).to_contain_text("— look at the bearing first.")
    headers = evidence.locator("table.signals th").all_inner_texts()
    assert [h.strip().lower() for h in headers[:4]] == ["signal", "value", "usual", "deviation"]
    signals = evidence.locator("table.signals tbody tr td:first-child").all_inner_texts()
    assert signals == ["vib_rms", "vib_kurtosis", "vib_crest"]
    expect(evidence.locator("table.signals tbody tr").first.locator("td").nth(1)).to_contain_text("mm/s")
    assert evidence.locator("svg.spark").count() == 3  # the demo simulates all three
    expect(evidence.locator("#advice a").first).to_have_text(
        "Bearing wear on pumps, fans and motors (vibration rising)"
    )
    shown = page.locator("main").inner_text()
    assert "{" not in shown and "top_signals" not in shown, shown[:2000]  # no JSON anywhere on the page
    keep(page, request, "incident-evidence")

    page.goto(f"{demo.url}/ui/assets/fan-1")
    findings = page.locator("#findings")
    expect(findings).to_contain_text("look at the bearing first")
    assert "{" not in findings.inner_text()
    keep(page, request, "asset-findings")


def test_a_knowledge_base_entry_is_rendered_markdown(page: Page, demo: Demo, request: pytest.FixtureRequest) -> None:
    login(page, demo, demo.viewer)
    page.goto(f"{demo.url}/ui/kb?q=bearings")
    page.locator("main a").first.click()
    expect(page.locator("h1")).to_have_text("Bearing wear on pumps, fans and motors (vibration rising)")
    body = page.locator(".markdown")
    expect(body.locator("h2").first).to_have_text("Symptoms")
    assert body.locator("h2").all_inner_texts() == ["Symptoms", "Likely causes", "What to do", "Prevent it"]
    assert body.locator("ul li").count() >= 5 and body.locator("ol li").count() >= 5
    assert "## " not in body.inner_text()
    keep(page, request, "kb-entry")


def test_a_hostile_entry_runs_nothing(page: Page, demo: Demo, plant: Pitstop, request: pytest.FixtureRequest) -> None:
    user = demo.data_dir / "kb"
    user.mkdir(exist_ok=True)
    (user / "hostile-entry.md").write_text(
        "---\ntitle: Hostile entry\n---\n## Steps\n\n<script>window.__ran = 1</script>\n\n"
        '<img src=x onerror="window.__ran = 2">\n\n[click me](javascript:window.__ran=3)\n'
    )
    plant.maintenance.kb.sync()  # the same database the demo serves
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, demo, demo.viewer)
    page.goto(f"{demo.url}/ui/kb/hostile-entry")
    body = page.locator(".markdown")
    expect(body.locator("h2")).to_have_text("Steps")
    assert body.locator("script").count() == 0 and body.locator("img").count() == 0
    expect(body).to_contain_text("<script>window.__ran = 1</script>")  # shown as text
    assert body.locator("a").count() == 0  # the javascript: link stays text
    page.get_by_text("[click me]", exact=False).click()
    assert page.evaluate("window.__ran") is None and dialogs == []
    keep(page, request, "kb-hostile")


def test_an_unknown_dashboard_path_is_a_page(browser: Browser, demo: Demo, request: pytest.FixtureRequest) -> None:
    """Its own context: Chromium logs a 404 document as "Failed to load resource", the one console error this
    page must give; any other fails the test as the shared fixture would."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    expected_404 = "Failed to load resource: the server responded with a status of 404"
    page.on(
        "console",
        lambda m: (
            problems.append(f"{page.url}: {m.text}")
            if m.type == "error" and not (m.text.startswith(expected_404) and page.url.endswith("/ui/nope"))
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"{page.url}: {exc}"))
    try:
        login(page, demo, demo.viewer)
        response = page.goto(f"{demo.url}/ui/nope")
        assert response is not None and response.status == 404
        assert response.headers["content-type"].startswith("text/html")
        expect(page.locator("h1")).to_have_text("No such page")
        expect(page.locator("header nav")).to_be_visible()  # the dashboard's layout
        expect(page.locator("#not-found code")).to_have_text("/ui/nope")
        keep(page, request, "not-found")
        page.locator("#not-found").get_by_role("link", name="Incidents").click()
        expect(page).to_have_url(f"{demo.url}/ui/incidents")
        api = page.request.get(f"{demo.url}/api/nope")
        assert api.status == 404 and api.json()["error"]["code"] == "http.404"  # the API keeps JSON
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_a_viewer_gets_no_predict_form(page: Page, demo: Demo, request: pytest.FixtureRequest) -> None:
    login(page, demo, demo.viewer)
    page.goto(f"{demo.url}/ui/models/hvac-twin")
    expect(page.locator("#versions")).to_be_visible()
    assert page.locator("#predict").count() == 0
    assert page.get_by_role("button", name="Predict").count() == 0
    assert page.locator("main form").count() == 0
    assert page.request.get(f"{demo.url}/ui/models/hvac-twin/predict?UCWIT=20").status == 403
    keep(page, request, "viewer-model")
