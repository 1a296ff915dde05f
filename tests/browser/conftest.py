"""Browser tests: headless Chromium (Debian's package) driven by Playwright against a running `pitstop demo`.

One demo server (a subprocess on a free port, its own data directory) and one browser per session; a
fresh browser context (no cookies) per test. Every test saves a screenshot under
test-artifacts/screens/ and fails on any console error or uncaught page error. Without Chromium or
Playwright the tests skip with the reason, or fail when PITSTOP_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.testing.server import ServerDidNotStart, free_port, running_pitstop
from pitstop.testing.services import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
SCREENS = ROOT / "test-artifacts" / "screens"
CHROMIUM = Path(os.environ.get("PITSTOP_CHROMIUM", "/usr/bin/chromium"))
START_TIMEOUT_S = 90.0


@dataclass
class Demo:
    url: str
    data_dir: Path
    viewer: str
    operator: str
    output: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install -y --no-install-recommends chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    return CHROMIUM


@pytest.fixture(scope="session")
def demo(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`pitstop demo` in a subprocess: SQLite in a fresh data dir, three simulated days, two model versions."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("browser-demo") / "data"
    args = ["demo", "--port", str(port), "--data-dir", str(data_dir)]
    try:
        with running_pitstop(args, port=port, cwd=data_dir.parent, timeout_s=START_TIMEOUT_S) as server:
            lines = server.output
            keys = dict(re.findall(r"(viewer|operator) key:\s+(\S+)", "".join(lines)))
            assert set(keys) == {"viewer", "operator"}, "".join(lines)
            yield Demo(server.url, data_dir, keys["viewer"], keys["operator"], lines)
    except ServerDidNotStart as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def plant(demo: Demo) -> Iterator[Pitstop]:
    """The demo's installation, opened a second time (same SQLite database) to set up and check state."""
    pitstop = build(Settings(data_dir=demo.data_dir))
    yield pitstop
    pitstop.close()


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # root (containers) cannot use the sandbox
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium), headless=True, args=args)
        yield b
        b.close()


@dataclass
class Problems:
    items: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context; a screenshot at the end, and a failure on any console or page error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    problems = Problems()

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            problems.items.append(f"console error on {pg.url}: {msg.text}")

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: problems.items.append(f"page error on {pg.url}: {exc}"))
    yield pg
    SCREENS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(SCREENS / f"{_slug(request.node.name)}.png"), full_page=True)
    finally:
        context.close()
    assert not problems.items, "\n".join(problems.items)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120]


def shot(page: Page, request: pytest.FixtureRequest, suffix: str) -> None:
    """An extra screenshot within a test: <test>-<suffix>.png."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{_slug(request.node.name)}-{_slug(suffix)}.png"), full_page=True)
