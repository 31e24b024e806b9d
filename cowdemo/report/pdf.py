"""The report as PDF: the HTML file printed by headless Chromium (through Playwright), with
every request outside the file refused."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cowdemo.errors import CowdemoError
from cowdemo.report.html import shareable

#: Layout width of the printed page in CSS pixels: the report's 960-pixel column, scaled to an
#: A4 page's printable width.
PRINT_WIDTH = 1000
PRINT_SCALE = 0.72


def chromium_path() -> Path:
    path = Path(os.environ.get("COWDEMO_CHROMIUM", "/usr/bin/chromium"))
    if not path.is_file():
        raise CowdemoError(f"Printing a PDF needs Chromium at {path} (apt-get install chromium, "
                           "or set COWDEMO_CHROMIUM); the HTML report needs nothing.")
    return path


def html_to_pdf(html_path: str | Path, pdf_path: str | Path, timeout_s: float = 120) -> Path:
    """Print ``html_path`` to ``pdf_path`` (A4) once every chart has been drawn."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise CowdemoError("Printing a PDF needs the playwright package "
                           "(pip install -r requirements.txt).") from None
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=pdf_path.parent, prefix=f".{pdf_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(chromium_path()), headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )  # fmt: skip
            try:
                page = browser.new_page(viewport={"width": PRINT_WIDTH, "height": 1200})
                page.route("**/*", lambda route: route.continue_()
                           if route.request.url.startswith(("file:", "data:"))
                           else route.abort())  # fmt: skip
                page.goto(html_path.as_uri(), wait_until="load", timeout=timeout_s * 1000)
                wait_for_charts(page, timeout_s)
                page.emulate_media(media="print")
                page.pdf(path=tmp, format="A4", scale=PRINT_SCALE, print_background=True,
                         margin={"top": "12mm", "bottom": "12mm", "left": "10mm",
                                 "right": "10mm"})  # fmt: skip
            finally:
                browser.close()
        os.replace(tmp, pdf_path)
        shareable(pdf_path)
    except PlaywrightError as exc:
        raise CowdemoError(f"Chromium could not print {html_path.name}: "
                           f"{str(exc).splitlines()[0]}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return pdf_path


def wait_for_charts(page, timeout_s: float = 120) -> None:
    """Wait until plotly has drawn every chart of the report."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart')].every("
        "c => c.querySelector('.js-plotly-plot .main-svg'))",
        timeout=timeout_s * 1000,
    )


def report_pdf_bytes(html: str, timeout_s: float = 120) -> bytes:
    """The PDF of a report's HTML text (for download buttons)."""
    with tempfile.TemporaryDirectory(prefix="cowdemo-report-") as folder:
        source = Path(folder) / "report.html"
        source.write_text(html, encoding="utf-8")
        return html_to_pdf(source, Path(folder) / "report.pdf", timeout_s).read_bytes()
