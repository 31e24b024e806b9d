"""The report as one self-contained HTML file: plotly.js inlined once (with the first chart),
every image a JPEG data URI, no link to anything outside the file."""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from cowdemo.files import atomic_write_bytes
from cowdemo.report.document import Chart, Gallery, Report, Table, Text

_CSS = """
:root { --ink:#1d2330; --muted:#5b6475; --line:#dde2ea; --soft:#f5f7fa; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
       margin: 0; background: #fff; line-height: 1.45; }
main { max-width: 960px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 8px; padding-top: 8px; border-top: 2px solid var(--line); }
.subtitle, .note, figcaption, .caption { color: var(--muted); font-size: 13px; }
.sentence { font-size: 16px; font-weight: 600; background: var(--soft); padding: 10px 14px;
            border-left: 4px solid #1f77b4; }
nav { font-size: 13px; margin: 12px 0 0; }
nav a { color: #1f77b4; margin-right: 12px; text-decoration: none; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 4px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; }
th.num, td.num { text-align: right; white-space: nowrap; }
thead th { background: var(--soft); }
code { font-size: 12px; background: var(--soft); padding: 1px 4px; border-radius: 3px; }
.chart { margin: 10px 0; break-inside: avoid; }
.gallery { display: grid; gap: 10px; margin: 8px 0; }
.gallery figure { margin: 0; break-inside: avoid; }
.gallery img { width: 100%; height: auto; display: block; border: 1px solid var(--line); }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
            vertical-align: -1px; }
section { break-inside: auto; }
@media print { h2 { break-after: avoid; } main { padding: 0; } nav { display: none; } }
"""


def _cell(value: Any, digits: int) -> tuple[str, bool]:
    """(text, is_text) of one table cell."""
    if value is None:
        return "n/a", False
    if isinstance(value, bool):
        return ("yes" if value else "no"), True
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a", False
        return f"{value:.{digits}f}", False
    if isinstance(value, int):
        return str(value), False
    return str(value), True


def _numeric_columns(block: Table) -> list[bool]:
    """Columns holding only numbers (or nothing) are right-aligned, the rest left."""
    numeric = []
    for i in range(len(block.columns)):
        values = [row[i] for row in block.rows if i < len(row) and row[i] is not None]
        numeric.append(bool(values) and all(isinstance(v, (int, float)) and
                                            not isinstance(v, bool) for v in values))
    return numeric


def _table(block: Table) -> str:
    numeric = _numeric_columns(block)

    def align(i: int) -> str:
        return " class='num'" if numeric[i] else ""

    head = ""
    if any(block.columns):
        head = "<thead><tr>" + "".join(f"<th{align(i)}>{html.escape(c)}</th>"
                                       for i, c in enumerate(block.columns)) + "</tr></thead>"
    body = []
    for row in block.rows:
        cells = []
        for i, value in enumerate(row):
            text, _ = _cell(value, block.digits)
            if isinstance(value, str) and value.startswith("cowdemo "):
                cells.append(f"<td><code>{html.escape(text)}</code></td>")
            else:
                cells.append(f"<td{align(i)}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    name = f" data-table='{html.escape(block.name)}'" if block.name else ""
    caption = f"<div class='caption'>{html.escape(block.caption)}</div>" if block.caption else ""
    return f"<table{name}>{head}<tbody>{''.join(body)}</tbody></table>{caption}"


def _gallery(block: Gallery) -> str:
    parts = []
    if block.legend:
        parts.append("<div class='legend'>" + "".join(
            f"<span><i style='background:rgb{tuple(color)}'></i>{html.escape(label)}</span>"
            for label, color in block.legend) + "</div>")
    figures = []
    for thumb in block.thumbnails:
        data = base64.b64encode(thumb.jpeg).decode("ascii")
        figures.append(
            f"<figure><img src='data:image/jpeg;base64,{data}' width='{thumb.width}' "
            f"height='{thumb.height}' alt='{html.escape(thumb.caption)}'>"
            f"<figcaption>{html.escape(thumb.caption)}</figcaption></figure>"
        )
    columns = max(1, block.per_row)
    parts.append(f"<div class='gallery' style='grid-template-columns:repeat({columns}, 1fr)'>"
                 + "".join(figures) + "</div>")
    if block.caption:
        parts.append(f"<div class='caption'>{html.escape(block.caption)}</div>")
    return "".join(parts)


def render_html(report: Report) -> str:
    """The report as one HTML document (a string)."""
    plotly_included = False
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    if report.subtitle:
        body.append(f"<div class='subtitle'>{html.escape(report.subtitle)}</div>")
    body.append("<nav>" + "".join(f"<a href='#{s.key}'>{html.escape(s.title)}</a>"
                                  for s in report.sections) + "</nav>")
    for section in report.sections:
        body.append(f"<section id='{html.escape(section.key)}'>"
                    f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Text):
                body.append(f"<p class='{block.kind}'>{html.escape(block.text)}</p>")
            elif isinstance(block, Table):
                body.append(_table(block))
            elif isinstance(block, Chart):
                chart = block.figure.to_html(
                    full_html=False, include_plotlyjs=not plotly_included,
                    config={"displaylogo": False, "responsive": True},
                )  # fmt: skip
                plotly_included = True
                caption = (f"<div class='caption'>{html.escape(block.caption)}</div>"
                           if block.caption else "")
                body.append(f"<div class='chart'>{chart}{caption}</div>")
            elif isinstance(block, Gallery):
                body.append(_gallery(block))
        body.append("</section>")
    data = json.dumps(report.data, default=str).replace("</", "<\\/")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body><main>"
        + "".join(body)
        + f"</main><script type='application/json' id='report-data'>{data}</script>"
        "</body></html>"
    )


def write_html(report: Report, path: str | Path) -> Path:
    """Write the report atomically, readable by others as a file made by hand would be (a
    report is for sharing); returns the path."""
    written = atomic_write_bytes(Path(path), render_html(report).encode("utf-8"))
    shareable(written)
    return written


def shareable(path: Path) -> None:
    """Permissions of a new file under the current umask (temp files start as 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
