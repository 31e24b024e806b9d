"""Browser test support: `streamlit run app.py` on a free port, Chromium settings, screenshots
(in artifacts/screenshots/)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("COWDEMO_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


class StreamlitServer:
    """A real `streamlit run app.py` process with its own environment, on a port the OS picks
    (``--server.port 0``; the port is read back from Streamlit's "URL:" line). A port chosen
    here and handed over would race with other test workers doing the same: Streamlit exits
    with "Port N is not available" while the other worker's server answers on N."""

    def __init__(self, env: dict[str, str], log: Path, script: Path = REPO / "app.py"):
        self.log = log
        command = [
            sys.executable, "-m", "streamlit", "run", str(script),
            "--server.port", "0", "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        self._log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.port = self._wait_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_healthy()

    def _wait_port(self, timeout: float = 90) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(rb"URL: http://127\.0\.0\.1:(\d+)", self.log.read_bytes())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"streamlit did not say its URL:\n{self.log.read_text()[-3000:]}")

    def _wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not become healthy:\n{self.log.read_text()[-3000:]}")

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log_file.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# Idle: Streamlit's own script state on the app root says no run is under way, starting
# ("initial" before the first run, "rerunRequested" while a rerun the page asked for has not
# begun) or stopping, and the running indicator is gone.
IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app && app.getAttribute('data-test-script-state');
    return !['initial', 'running', 'rerunRequested', 'stopRequested'].includes(state)
        && !document.querySelector('[data-testid="stStatusWidget"]');
}"""


def wait_for_app(page) -> None:
    """Wait until Streamlit has finished running the script (:data:`IDLE`)."""
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_function(IDLE, timeout=120_000)


# True once the element has kept its place and size on screen for 5 animation frames in a row
# (an expander above it that opens or closes, or a chart still laying out, moves it for a few
# frames). An element handle, not a selector: components draw into shadow roots, out of
# document.querySelector's reach.
_SETTLED = """(el) => {
    const r = el.getBoundingClientRect(), where = `${r.x},${r.y},${r.width},${r.height}`;
    el.__settled = where === el.__settledAt ? (el.__settled || 0) + 1 : 0;
    el.__settledAt = where;
    return el.__settled >= 5;
}"""


def settled_box(page, locator) -> dict[str, float]:
    """``locator``'s bounding box once scrolled into view and no longer moving: what a click by
    position needs (a box read while the layout moves sends the click elsewhere)."""
    locator.scroll_into_view_if_needed()
    page.wait_for_function(_SETTLED, arg=locator.element_handle(), polling="raf")
    return locator.bounding_box()


def copy_model(src: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(src, folder / src.name))


# Notes whether a script run starts from now on (Streamlit's script state on the app root turns
# "running"): a change typed into a widget reruns the page a moment later, and waiting for the
# app to be idle before that rerun has begun returns at once.
_WATCH_RUNS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    window.__cowdemoRan = false;
    if (window.__cowdemoRuns) window.__cowdemoRuns.disconnect();
    window.__cowdemoRuns = new MutationObserver(records => {
        if (records.some(r => r.oldValue === 'running')
                || app.getAttribute('data-test-script-state') === 'running') {
            window.__cowdemoRan = true;
        }
    });
    window.__cowdemoRuns.observe(app, {attributes: true, attributeOldValue: true,
                                       attributeFilter: ['data-test-script-state']});
}"""


def run_started(page, timeout: float = 10_000) -> bool:
    """Whether a script run started since ``_WATCH_RUNS`` was set up (waiting up to
    ``timeout`` ms for one)."""
    try:
        page.wait_for_function("() => window.__cowdemoRan", timeout=timeout)
    except Exception:  # playwright's TimeoutError
        return False
    return True


def fill_field(page, field, value: str, attempts: int = 3) -> None:
    """Type ``value`` into ``field`` (a locator), press Enter, see the rerun it causes start and
    end, and see the field keep the value; typed again when no rerun came or a rerun that was
    already under way redrew the field with its old value (the keystrokes then reach a widget
    that is being replaced)."""
    for _ in range(attempts):
        wait_for_app(page)
        if field.input_value() == value:
            return
        page.evaluate(_WATCH_RUNS)
        field.fill(value)
        field.press("Enter")
        if not run_started(page):  # no rerun came: the keystrokes were lost
            continue
        wait_for_app(page)
        if field.input_value() == value:
            return
    raise AssertionError(f"the field kept {field.input_value()!r} instead of {value!r}")


def click_until(page, button, shown, attempts: int = 3, timeout: float = 30_000) -> None:
    """Click ``button`` until ``shown`` appears (within ``timeout`` ms of a click): a locator
    of what the click brings, or a JavaScript predicate (``"() => ..."``) that turns true.
    Clicked again only when no script run started within 10 s of the click, or nothing came,
    and the button is still there: a click that lands on a button a rerun is redrawing is
    lost, as Streamlit does for any such click."""
    def came() -> bool:
        return bool(page.evaluate(shown) if isinstance(shown, str) else shown.count())

    def wait() -> None:
        if isinstance(shown, str):
            page.wait_for_function(shown, timeout=timeout)
        else:
            shown.first.wait_for(timeout=timeout)

    for attempt in range(attempts):
        wait_for_app(page)
        if attempt and came():  # the last click did bring it, late
            return
        page.evaluate(_WATCH_RUNS)
        button.click()
        last = attempt == attempts - 1
        if run_started(page):
            try:
                wait()
                return
            except Exception:  # playwright's TimeoutError: try again while the button is there
                if last or not button.count():
                    raise
        elif came():  # there already, and the click asked for nothing new
            return
        elif last or not button.count():
            raise AssertionError(f"no script run started after {attempts} clicks on {button}")


def choose(page, label: str, option: str | re.Pattern, within=None, attempts: int = 3) -> int:
    """Pick ``option`` (a substring or pattern of its text) in the select box labelled
    ``label`` (inside ``within``, a locator, when given) and see the box show it after the
    rerun; opened again when a rerun closed the list before the click or redrew the box with
    its old value. Returns how many options of the open list matched."""
    combo = (within or page).get_by_role("combobox", name=label, exact=True)

    def shows() -> bool:
        value = combo.input_value()
        return bool(option.search(value) if isinstance(option, re.Pattern) else option in value)

    for _ in range(attempts):
        wait_for_app(page)
        items = page.get_by_role("option", name=option)
        page.evaluate(_WATCH_RUNS)
        combo.click()
        try:
            items.first.wait_for(timeout=10_000)
            matches = items.count()
            items.first.click(timeout=10_000)
        except Exception:  # playwright's TimeoutError: a rerun closed the list; open it again
            page.keyboard.press("Escape")
            continue
        run_started(page, timeout=5_000)  # none comes when the option was already chosen
        wait_for_app(page)
        if shows():
            return matches
    raise AssertionError(f"{label!r} shows {combo.input_value()!r}, not {option!r}")
