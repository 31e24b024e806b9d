"""Support for report tests: a small synthetic dataset and video, and reading the tables of a
written report back out of its HTML."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path


def make_inputs(folder: Path, n_images: int = 4, n_frames: int = 24) -> dict[str, Path]:
    """A COCO dataset, an H.264 video and its MOTChallenge ground truth, all synthetic."""
    from cowdemo.datasets.synthetic import make_dataset, make_video_frames, mot_rows
    from cowdemo.video import write_video

    make_dataset(folder / "cows", n_images=n_images, width=320, height=240, seed=3)
    clip = make_video_frames(seed=0, n_frames=n_frames, width=320, height=240)
    video = write_video(folder / "cows.mp4", clip.frames, clip.fps)
    gt = folder / "gt.txt"
    gt.write_text("".join(f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,-1,-1,-1\n"
                          for f, i, x, y, w, h in mot_rows(clip)))
    return {"dataset": folder / "cows", "video": video, "gt": gt}


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._name: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._name = attrs.get("data-table") or f"table-{len(self.tables)}"
            self.tables[self._name] = []
        elif tag == "tr" and self._name:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._name].append(self._row)
            self._row = None
        elif tag == "table":
            self._name = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_tables(html: str) -> dict[str, list[list[str]]]:
    """Every table of the report by its ``data-table`` name: rows of cell texts (header
    first)."""
    parser = _Tables()
    parser.feed(html)
    return parser.tables
