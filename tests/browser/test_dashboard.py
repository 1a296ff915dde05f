"""The dashboard in headless Chromium against `pitstop demo`: what a viewer and an operator see and do."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from pitstop.app import Pitstop
from pitstop.core.types import Severity
from pitstop.incidents import IncidentState
from tests.browser.conftest import Demo, shot

PAGES = [
    ("/ui/", "Overview"),
    ("/ui/incidents", "Incidents"),
    ("/ui/assets", "Assets"),
    ("/ui/assets/pump-1", "pump-1"),
    ("/ui/assets/ahu-1?range=7d", "ahu-1"),
    ("/ui/health", "Health"),
    ("/ui/maintenance", "Maintenance"),
    ("/ui/procedures", "Procedures"),
    ("/ui/models", "Models"),
    ("/ui/models/hvac-twin", "hvac-twin"),
    ("/ui/backups", "Backups"),
    ("/ui/kb", "Knowledge base"),
]


def login(page: Page, demo: Demo, key: str) -> None:
    page.goto(f"{demo.url}/ui/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{demo.url}/ui/")


@pytest.fixture
def incident(plant: Pitstop) -> int:
    """A fresh open incident of its own, so tests do not depend on each other's order."""
    item, _ = plant.incidents.open_or_update(
        f"browser.test:case-{uuid.uuid4().hex[:8]}", severity=Severity.WARNING, title="browser test incident"
    )
    return item.id


def test_a_viewer_sees_every_page_and_no_action_buttons(
    page: Page, demo: Demo, incident: int, request: pytest.FixtureRequest
) -> None:
    login(page, demo, demo.viewer)
    for path, heading in [*PAGES, (f"/ui/incidents/{incident}", "browser test incident")]:
        response = page.goto(f"{demo.url}{path}")
        assert response is not None and response.status == 200, path
        expect(page.locator("h1").first).to_contain_text(heading)
        assert page.locator(".action").count() == 0, f"{path}: a viewer sees an action"
        assert page.locator("form[method=post]").count() == 1, f"{path}: only the logout form may post"
    for path in ("/ui/models/hvac-twin/rollback", "/ui/models/hvac-twin/promote?version=2"):
        assert page.request.get(f"{demo.url}{path}").status == 403, path  # the confirmation pages too
    page.goto(f"{demo.url}/ui/models/hvac-twin")
    shot(page, request, "model")


def test_an_operator_opens_every_page(page: Page, demo: Demo, request: pytest.FixtureRequest) -> None:
    login(page, demo, demo.operator)
    expect(page.locator("header .who")).to_contain_text("operator")
    for path, heading in PAGES:
        response = page.goto(f"{demo.url}{path}")
        assert response is not None and response.status == 200, path
        expect(page.locator("h1").first).to_contain_text(heading)
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        shot(page, request, path.removeprefix("/ui").strip("/").replace("/", "_") or "overview")
    page.goto(f"{demo.url}/ui/assets/pump-1")
    plotted = page.locator("#plots .js-plotly-plot .scatterlayer .trace")  # the simulator's readings, by plotly.js
    expect(plotted.first).to_be_attached()


def test_an_operator_acknowledges_assigns_and_silences_an_incident(
    page: Page, demo: Demo, plant: Pitstop, incident: int
) -> None:
    login(page, demo, demo.operator)
    page.goto(f"{demo.url}/ui/incidents")
    row = page.locator("tr").filter(has=page.locator(f'a[href="/ui/incidents/{incident}"]'))
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("h1")).to_contain_text("browser test incident")
    expect(page.locator("dl")).to_contain_text("acknowledged")
    assert plant.incidents.get(incident).state is IncidentState.ACKNOWLEDGED

    page.fill("#assign input[name=assignee]", "anna")
    page.click("#assign button")
    expect(page.locator("dl")).to_contain_text("anna")
    page.select_option("#silence select[name=for]", "1h")
    page.fill("#silence input[name=reason]", "pump maintenance today")
    page.click("#silence button")
    expect(page.locator("dl")).to_contain_text("Silenced")
    item = plant.incidents.get(incident)
    assert item.assignee == "anna" and item.state is IncidentState.SUPPRESSED
    expect(page.locator("ol.timeline")).to_contain_text("suppressed")


def test_a_failed_checklist_item_opens_a_work_order(page: Page, demo: Demo, plant: Pitstop) -> None:
    login(page, demo, demo.operator)
    page.goto(f"{demo.url}/ui/maintenance")
    page.get_by_role("link", name="Run a procedure →").click()
    page.select_option("#start-run select[name=procedure]", "plc-inspection")
    page.select_option("#start-run select[name=asset]", "vms-server")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator("#run-state")).to_contain_text("running")
    run_id = int(page.url.rsplit("/", 1)[-1])

    page.fill("input[name='value:cabinet-temperature']", "31")
    page.fill("input[name='value:supply-voltage']", "21.7")  # below 23 V: fails against its limits
    page.fill("input[name='note:supply-voltage']", "sagging under load")
    page.select_option("select[name='result:battery']", "pass")
    page.fill("input[name='value:cabinet-clean']", "yes")
    page.get_by_role("button", name="Record answers").click()

    expect(page.locator("#run-state")).to_contain_text("failed")
    orders = page.locator("#opened-orders")
    expect(orders).to_contain_text("24 V supply failed")
    expect(orders).to_contain_text("21.7")
    opened = [o for o in plant.maintenance.orders.list(source="procedure", asset="vms-server") if o.run_id == run_id]
    assert [o.title for o in opened] == ["PLC inspection: 24 V supply failed"]
    expect(page.locator("table").last).to_contain_text("sagging under load")


def test_an_operator_promotes_and_rolls_back_a_model(page: Page, demo: Demo, plant: Pitstop) -> None:
    registry = plant.models.registry
    champion, challenger = registry.alias("hvac-twin", "champion"), registry.alias("hvac-twin", "challenger")
    assert (champion, challenger) == (1, 2)
    login(page, demo, demo.operator)
    page.goto(f"{demo.url}/ui/models")
    page.get_by_role("link", name="hvac-twin").click()
    expect(page.locator("#decisions")).to_contain_text("not_worse(metric=r2)")
    expect(page.locator("#drift table")).to_contain_text("UCWIT")

    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#prediction")).to_contain_text("UCAOT")

    page.get_by_role("link", name="Promote…").click()
    expect(page.locator("h1")).to_contain_text("Promote hvac-twin v2?")
    page.fill("#reason", "gates passed, reviewed in the browser test")
    page.click("#confirm")
    expect(page.locator("h1")).to_contain_text("champion v2")
    assert registry.alias("hvac-twin", "champion") == 2
    expect(page.locator("#moves")).to_contain_text("reviewed in the browser test")

    page.get_by_role("link", name="Roll back to v1…").click()
    expect(page.locator("h1")).to_contain_text("Roll back hvac-twin to v1?")
    page.click("#confirm")
    expect(page.locator("h1")).to_contain_text("champion v1")
    assert registry.alias("hvac-twin", "champion") == 1
    expect(page.locator("#moves")).to_contain_text("rollback from v2")


def test_the_pump_shows_its_remaining_useful_life(page: Page, demo: Demo, request: pytest.FixtureRequest) -> None:
    """The demo scenario wears pump-1's bearing: its page has the remaining-life panel with an estimate."""
    login(page, demo, demo.viewer)
    page.goto(f"{demo.url}/ui/assets/pump-1?range=7d")
    panel = page.locator("#rul")
    expect(panel.locator("h2")).to_contain_text("Remaining useful life")
    expect(panel).to_contain_text(" h left")
    assert panel.locator("svg.plot polygon.interval").count() == 1  # the interval band around the median
    shot(page, request, "pump-1-rul")
