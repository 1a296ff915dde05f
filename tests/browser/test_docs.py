"""The API docs (`/docs`) in headless Chromium against `pitstop demo`: Swagger UI renders FastAPI's
OpenAPI 3.1 document and lists every operation, with nothing fetched from outside the machine."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Demo

SCREEN_COPY = Path("/tmp/pitstop-screens/docs.png")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _spec_operations(demo: Demo) -> tuple[str, set[tuple[str, str]]]:
    spec = httpx.get(f"{demo.url}/openapi.json", timeout=10).raise_for_status().json()
    ops = {(m.upper(), path) for path, item in spec["paths"].items() for m in item if m in _METHODS}
    return str(spec["openapi"]), ops


def test_docs_render_every_operation_offline(page: Page, demo: Demo, tmp_path: Path) -> None:
    version, expected = _spec_operations(demo)
    assert version.startswith("3.1"), version  # the version the old Swagger UI 4 could not read
    assert {("POST", "/predict/{model}"), ("GET", "/api/incidents")} <= expected

    # A plant network has no internet: every request must stay on this machine. Outside requests are
    # refused (as they would fail there) and remembered.
    fetched: list[str] = []
    outside: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        fetched.append(url)
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_local)
    response = page.goto(f"{demo.url}/docs")
    assert response is not None and response.status == 200

    summaries = page.locator(".opblock .opblock-summary")
    expect(summaries.first).to_be_visible(timeout=20_000)  # the spec is fetched and rendered
    expect(page.get_by_text("Unable to render")).to_have_count(0)
    expect(page.locator(".errors-wrapper")).to_have_count(0)  # no resolver errors ($refs, schema)
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("pitstop")

    listed = summaries.evaluate_all(
        """els => els.map(e => [
            e.querySelector('.opblock-summary-method').textContent.trim(),
            e.querySelector('[data-path]').getAttribute('data-path'),
        ])"""
    )
    listed_ops = {(method, path) for method, path in listed}
    assert ("POST", "/predict/{model}") in listed_ops
    assert ("GET", "/api/incidents") in listed_ops
    assert listed_ops == expected, (
        f"missing from the page: {sorted(expected - listed_ops)}; not in the spec: {sorted(listed_ops - expected)}"
    )

    shot = tmp_path / "docs.png"
    page.screenshot(path=str(shot), full_page=True)
    SCREEN_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREEN_COPY)

    assert not outside, f"fetched from outside the machine: {outside}"
    assert any(url.endswith("/openapi.json") for url in fetched), fetched  # the interception saw the page's requests
