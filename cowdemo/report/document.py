"""A report as plain data: sections of blocks (text, tables, charts, thumbnails), nothing about
HTML. Section builders (:mod:`cowdemo.report.sections`) make sections from results; the HTML
writer (:mod:`cowdemo.report.html`) and the PDF printer only lay them out.

    report = Report("cowdemo report", [Section("headline", "Headline metrics", [Table(...)])])
    write_html(report, "report.html")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import plotly.graph_objects as go

#: Longest side of a gallery thumbnail, and its JPEG quality: a report over 40 images and a
#: 300-frame video stays a few megabytes (plotly.js itself is about 4.7 MB).
THUMBNAIL_SIDE = 480
JPEG_QUALITY = 80


@dataclass(frozen=True)
class Text:
    """A paragraph; ``kind`` "note" is shown muted, "sentence" stands out (a verdict)."""

    text: str
    kind: str = "p"


@dataclass(frozen=True)
class Table:
    """Rows of cells (str, int, float or None); floats are shown with ``digits`` decimals."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    digits: int = 4
    name: str = ""  # machine name, for tests and the report's embedded data


@dataclass(frozen=True)
class Chart:
    figure: go.Figure
    caption: str = ""


@dataclass(frozen=True)
class Thumbnail:
    """A JPEG image with its caption (``jpeg`` is the encoded file, ready for a data URI)."""

    jpeg: bytes
    caption: str
    width: int
    height: int


@dataclass(frozen=True)
class Gallery:
    """Thumbnails in rows of ``per_row`` (one row per image when comparing models)."""

    thumbnails: list[Thumbnail]
    per_row: int = 2
    caption: str = ""
    legend: list[tuple[str, tuple[int, int, int]]] = field(default_factory=list)


Block = Text | Table | Chart | Gallery


@dataclass
class Section:
    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    """The whole report; ``data`` holds its numbers (embedded as JSON in the HTML too)."""

    title: str
    sections: list[Section]
    subtitle: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def section(self, key: str) -> Section:
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(key)


def thumbnail(image: np.ndarray, caption: str, side: int = THUMBNAIL_SIDE,
              quality: int = JPEG_QUALITY) -> Thumbnail:
    """An RGB image scaled down so its longer side is at most ``side``, as a JPEG."""
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(image),
                                                    cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise RuntimeError("JPEG encoding failed")
    return Thumbnail(encoded.tobytes(), caption, image.shape[1], image.shape[0])
