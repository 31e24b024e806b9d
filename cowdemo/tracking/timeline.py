"""The timeline chart: every track id over frames, with id switches marked.

One row of the figure per compared run (model A / model B, or two tracker settings), a shared
frame axis, one line per track in its drawing colour, and a red ✕ on every id switch (with
ground truth) or suspected switch (without). Every point carries its frame number as ``x`` so
a click on it can jump the video there (:func:`clicked_frame`)::

    fig = timeline_figure([report_a, report_b])
    frame = clicked_frame(st.plotly_chart(fig, on_select="rerun", selection_mode="points"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cowdemo.draw import color_for
from cowdemo.tracking.stats import TrackingReport

SWITCH_COLOR = "#d62728"


def _track_lines(report: TrackingReport) -> list[tuple[int, list]]:
    """(track id, frames) per track, None at gaps so a track missing for a while shows
    broken."""
    tracks = report.tracks
    frames = np.repeat(tracks.frame_numbers, [len(d) for d in tracks.detections])
    ids = np.concatenate([d.track_ids for d in tracks.detections if len(d)] or [np.zeros(0)])
    step = tracks.meta.stride
    per_track = []
    for track_id in np.unique(ids):
        xs = frames[ids == track_id]
        gaps = np.flatnonzero(np.diff(xs) > step)
        x: list = []
        for part in np.split(xs, gaps + 1):
            x += [*part.tolist(), None]
        per_track.append((int(track_id), x))
    return per_track


def timeline_figure(reports: Sequence[TrackingReport], height_per_row: int = 260) -> go.Figure:
    """Track ids over frames for each report, switch events marked; click a point for its
    frame."""
    rows = max(1, len(reports))
    titles = [_title(r) for r in reports] or [""]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, subplot_titles=titles,
                        vertical_spacing=0.12 if rows > 1 else 0.05)  # fmt: skip
    shown_legend = False
    for row, report in enumerate(reports, start=1):
        for track_id, x in _track_lines(report):
            r, g, b = color_for(f"track-{track_id}")
            fig.add_trace(
                go.Scatter(
                    x=x, y=[None if v is None else track_id for v in x],
                    mode="lines+markers", line={"color": f"rgb({r},{g},{b})", "width": 3},
                    marker={"size": 4}, name=f"track {track_id}", showlegend=False,
                    hovertemplate=f"{report.label}<br>track {track_id}<br>frame %{{x}}"
                    "<extra></extra>",
                ),
                row=row, col=1,
            )  # fmt: skip
        events = report.events()
        if events:
            fig.add_trace(
                go.Scatter(
                    x=[e.frame for e in events], y=[e.new_id for e in events], mode="markers",
                    marker={"symbol": "x", "size": 13, "color": SWITCH_COLOR,
                            "line": {"width": 1, "color": "white"}},
                    name="id switch" if report.has_ground_truth else "suspected switch",
                    text=[e.text for e in events], hovertemplate="%{text}<extra></extra>",
                    showlegend=not shown_legend, legendgroup="switch",
                ),
                row=row, col=1,
            )  # fmt: skip
            shown_legend = True
        # ids and frames are whole numbers: ticks on whole numbers only, never "1.5"
        top = max([1, *(int(t) for t in report.tracks.track_ids)])
        fig.update_yaxes(title_text="track id", rangemode="tozero", tick0=0,
                         dtick=_whole_step(top, 8), row=row, col=1)  # fmt: skip
    last = max([1, *(int(r.tracks.frame_numbers[-1]) for r in reports if len(r.tracks))])
    fig.update_xaxes(tick0=0, dtick=_whole_step(last, 12))
    fig.update_xaxes(title_text="frame", row=rows, col=1)
    fig.update_layout(
        height=height_per_row * rows + 60, margin={"l": 60, "r": 20, "t": 40, "b": 40},
        clickmode="event+select", dragmode="zoom", hovermode="closest",
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    )  # fmt: skip
    return fig


def _whole_step(top: int, ticks: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... giving at most ``ticks`` ticks up to ``top``."""
    step = 1
    while top / step > ticks:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step


def _title(report: TrackingReport) -> str:
    kind = "id switches" if report.has_ground_truth else "suspected switches"
    return (f"{report.label}: {report.summary.num_tracks} tracks, "
            f"{report.num_switches} {kind}")  # fmt: skip


def clicked_frame(selection: Any) -> int | None:
    """The frame of the first point selected in a Streamlit plotly selection, or None."""
    if selection is None:
        return None
    state = selection.get("selection") if isinstance(selection, Mapping) else getattr(
        selection, "selection", None
    )
    if not state:
        return None
    points = state.get("points") if isinstance(state, Mapping) else getattr(state, "points", None)
    for point in points or []:
        x = point.get("x") if isinstance(point, Mapping) else None
        if x is not None:
            return round(float(x))
    return None
