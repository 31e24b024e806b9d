"""The "Download report" buttons of the Evaluate, Track and Runs pages: the self-contained
HTML report (and its PDF) of the runs on the page, made when a button is pressed."""

from __future__ import annotations

import html
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from cowdemo.errors import CowdemoError
from cowdemo.runs import RunStore

_MADE: OrderedDict[tuple, str] = OrderedDict()  # report HTML by inputs, the last few
_LOCK = threading.Lock()


def _made(key: tuple, build: Callable[[], str]) -> str:
    """The report HTML of ``key``, built once (download callbacks run on their own thread)."""
    with _LOCK:
        if key in _MADE:
            _MADE.move_to_end(key)
            return _MADE[key]
    text = build()
    with _LOCK:
        _MADE[key] = text
        while len(_MADE) > 4:
            _MADE.popitem(last=False)
    return text


def _error_page(exc: Exception) -> str:
    return (f"<!doctype html><meta charset='utf-8'><title>cowdemo report</title>"
            f"<p>The report could not be made: {html.escape(str(exc))}</p>")


def report_html(
    evaluation_runs: Sequence[int] = (),
    tracking_runs: Sequence[int] = (),
    *,
    tracks: Mapping[int, Any] | None = None,
    video_path: str | Path | None = None,
    dataset=None,
) -> str:
    """The report of these stored runs as HTML (built once per set of runs)."""
    from cowdemo.report import build_report, render_html

    key = (tuple(evaluation_runs), tuple(tracking_runs), str(video_path or ""))
    return _made(key, lambda: render_html(build_report(
        RunStore(), evaluation_runs, tracking_runs, tracks=tracks, video_path=video_path,
        dataset=dataset)))


def download_buttons(
    name: str,
    evaluation_runs: Sequence[int] = (),
    tracking_runs: Sequence[int] = (),
    *,
    key: str,
    tracks: Mapping[int, Any] | None = None,
    video_path: str | Path | None = None,
    dataset=None,
) -> None:
    """"Download report" (HTML) and "Download report (PDF)", made when pressed."""
    from cowdemo.report.build import check_runs
    from cowdemo.report.pdf import chromium_path, report_pdf_bytes

    try:
        check_runs(RunStore(), evaluation_runs, tracking_runs)
    except CowdemoError as exc:
        st.info(f"No report for these runs: {exc}")
        return

    def make_html() -> str:
        try:
            return report_html(evaluation_runs, tracking_runs, tracks=tracks,
                               video_path=video_path, dataset=dataset)
        except CowdemoError as exc:
            return _error_page(exc)

    def make_pdf() -> bytes:
        return report_pdf_bytes(make_html())

    columns = st.columns([1, 1, 2])
    columns[0].download_button("Download report", make_html, f"{name}.html", "text/html",
                               key=f"{key}-html", on_click="ignore",
                               help="One HTML file that opens anywhere, without the app or a "
                               "network: what was compared, the metrics, charts and images.")
    try:
        chromium_path()
    except CowdemoError as exc:
        columns[1].caption(str(exc))
    else:
        columns[1].download_button("Download report (PDF)", make_pdf, f"{name}.pdf",
                                   "application/pdf", key=f"{key}-pdf", on_click="ignore")
    runs = ", ".join(str(i) for i in [*evaluation_runs, *tracking_runs])
    columns[2].caption(f"From runs {runs} (`cowdemo report --runs {runs.replace(',', '')}`).")


def runs_report(run_ids: Sequence[int], key: str = "runs-report") -> None:
    """The Runs page's Report section: the report of any runs picked there."""
    from cowdemo.report.build import split_runs

    ids = list(dict.fromkeys(int(i) for i in run_ids))
    try:
        evaluations, trackings = split_runs(RunStore(), ids)
    except CowdemoError as exc:
        st.info(f"No report for these runs: {exc}")
        return
    name = "report-runs-" + "-".join(str(i) for i in ids)
    download_buttons(name, evaluations, trackings, key=key)
