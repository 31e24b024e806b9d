"""Browser fixtures: Debian's Chromium driven by Playwright, and Streamlit servers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, screenshot


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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
        page = getattr(item, "funcargs", {}).get("page")
        if report.failed and page is not None:  # before teardown stops the server
            report.sections.append(("the page at failure", _show_failure(page, item.name)))
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    yield page
    context.close()


def _show_failure(page, name: str) -> str:
    """What the page showed when the test failed: a full-page screenshot in artifacts/ and the
    page's text for the report (a CI log then says what the user would have seen)."""
    try:
        path = screenshot(page, f"FAILED-{name}")
        text = page.inner_text("body", timeout=5_000)
    except Exception as exc:  # the page or browser itself is gone
        return f"no picture of the failed page: {exc}"
    text = re.sub(r"\n\s*\n+", "\n", text).strip()
    return f"{page.url}, screenshot {path}:\n{text[-4000:]}"


@pytest.fixture
def server_factory(tmp_path, request) -> Iterator:
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
        if request.node.stash.get(_CALL_FAILED, False):
            tail = server.log.read_text(errors="replace")[-2000:].strip()
            print(f"the end of {server.log.name}:\n{tail}")
