"""Browser fixtures: Debian's Chromium driven by Playwright, and Streamlit servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, StreamlitServer


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test file: a Playwright sync session left running would make every later
    `sync_playwright()` in the same worker (the PDF report, tests/test_report.py) fail with
    "using Playwright Sync API inside the asyncio loop"."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: `scripts/setup.sh --test` installs Debian's chromium")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    yield page
    context.close()


@pytest.fixture
def server_factory(tmp_path) -> Iterator:
    servers: list[StreamlitServer] = []

    def start(**env: str) -> StreamlitServer:
        base = {"COWDEMO_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch"),
                "COWDEMO_DATA": str(tmp_path / "data")}
        server = StreamlitServer({**base, **env}, tmp_path / f"streamlit-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
