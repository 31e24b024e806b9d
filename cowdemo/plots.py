"""Plotly figures for comparing models: one function per chart, EvalResults in, figures out.
Undefined values (-1 in COCO's convention) become gaps, never zeros."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from cowdemo.evaluation.detection import STAT_NAMES, EvalResult

PALETTE = ("#1f77b4", "#e6394a", "#2e7d32", "#ff7f0e", "#9467bd", "#8c564b")


def _defined(value: float) -> float | None:
    return None if value is None or value < 0 else value


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(
        title=title, xaxis_title=x, yaxis_title=y, template="plotly_white", height=380,
        legend={"orientation": "h", "y": -0.25}, margin={"l": 40, "r": 10, "t": 50, "b": 40},
    )  # fmt: skip
    return fig


def stats_bars(results: Mapping[str, EvalResult]) -> go.Figure:
    """The 12 COCO stats, one bar group per stat, one colour per model."""
    fig = go.Figure()
    for i, (model, result) in enumerate(results.items()):
        fig.add_bar(name=model, x=list(STAT_NAMES), marker_color=PALETTE[i % len(PALETTE)],
                    y=[_defined(result.stats[s]) for s in STAT_NAMES],
                    text=[f"{v:.3f}" if v >= 0 else "n/a" for v in
                          (result.stats[s] for s in STAT_NAMES)],
                    textposition="outside")
    fig.update_yaxes(range=[0, 1.1])
    return _layout(fig.update_layout(barmode="group"), "COCO metrics", "", "value")


def pr_curves(results: Mapping[str, EvalResult]) -> go.Figure:
    """Precision against recall at IoU 0.5 (solid) and 0.75 (dashed), mean over classes."""
    fig = go.Figure()
    for i, (model, result) in enumerate(results.items()):
        recall = result.pr_curves["recall"]
        for key, dash in (("iou50", "solid"), ("iou75", "dash")):
            precision = [_defined(p) for p in result.pr_curves[key]["mean"]]
            fig.add_scatter(x=recall, y=precision, mode="lines",
                            name=f"{model} IoU {'0.50' if key == 'iou50' else '0.75'}",
                            line={"color": PALETTE[i % len(PALETTE)], "dash": dash})
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, "Precision-recall", "recall", "precision")


def per_class_ap(results: Mapping[str, EvalResult], metric: str = "AP50") -> go.Figure:
    """``metric`` (AP or AP50) per class, classes with ground truth only."""
    fig = go.Figure()
    for i, (model, result) in enumerate(results.items()):
        classes = [c for c, v in result.per_class_ap.items() if v.get("num_gt", 1) > 0]
        fig.add_bar(name=model, x=classes, marker_color=PALETTE[i % len(PALETTE)],
                    y=[_defined(result.per_class_ap[c][metric]) for c in classes])
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig.update_layout(barmode="group"), f"{metric} per class", "class", metric)


def ap50_vs_threshold(results: Mapping[str, EvalResult]) -> go.Figure:
    """AP50 (solid) and F1 (dotted) if only boxes scoring at least the threshold were kept."""
    fig = go.Figure()
    for i, (model, result) in enumerate(results.items()):
        curve = result.ap50_vs_score_threshold
        color = PALETTE[i % len(PALETTE)]
        fig.add_scatter(x=curve["thresholds"], y=[_defined(v) for v in curve["ap50"]],
                        mode="lines", name=f"{model} AP50", line={"color": color})
        fig.add_scatter(x=curve["thresholds"], y=curve["f1"], mode="lines",
                        name=f"{model} F1", line={"color": color, "dash": "dot"})
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, "AP50 and F1 against score threshold", "score threshold", "value")


def metric_history(
    series: Mapping[str, list], metric: str, tolerance: float, flagged: Mapping[str, list]
) -> go.Figure:
    """``metric`` of each (model, dataset) series over time, a band ``tolerance`` deep under the
    best value so far (a run below the band is a regression), flagged drops as red crosses.
    ``series`` maps a label to runs (oldest first); ``flagged`` a label to (run, drop) pairs."""
    from datetime import datetime

    from cowdemo.regression import higher_is_better

    fig = go.Figure()
    sign = 1 if higher_is_better(metric) else -1
    for i, (label, runs) in enumerate(series.items()):
        runs = [r for r in runs if metric in r.metrics and r.metrics[metric] >= 0]
        if not runs:
            continue
        color = PALETTE[i % len(PALETTE)]
        when = [datetime.fromtimestamp(r.created_at) for r in runs]
        values = [r.metrics[metric] for r in runs]
        best, bound = [], None
        for v in values:
            bound = v if bound is None else (max(bound, v) if sign > 0 else min(bound, v))
            best.append(bound)
        edge = [b - sign * tolerance for b in best]
        fig.add_scatter(x=when, y=best, mode="lines", line={"width": 0, "color": color},
                        showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=when, y=edge, mode="lines", line={"width": 0, "color": color},
                        fill="tonexty", opacity=0.2, name=f"{label} tolerance",
                        hoverinfo="skip")
        fig.add_scatter(x=when, y=values, mode="lines+markers", name=label,
                        line={"color": color}, text=[f"run {r.id}" for r in runs])
        drops = flagged.get(label, [])
        if drops:
            fig.add_scatter(x=[datetime.fromtimestamp(r.created_at) for r, _ in drops],
                            y=[r.metrics[metric] for r, _ in drops], mode="markers",
                            marker={"symbol": "x", "size": 13, "color": "#d62728"},
                            name=f"{label} drops",
                            text=[f"run {r.id}: -{d:.4f}" for r, d in drops])
    return _layout(fig, f"{metric} over time", "time", metric)


def error_types(tides: Mapping[str, Any]) -> go.Figure:
    """TIDE error types side by side: the AP50 each type costs (bar height), the count on top.
    ``tides`` maps a model to its ``TideErrors`` (or its ``to_dict()``)."""
    from cowdemo.evaluation.analysis import ERROR_LABELS, ERROR_SHORT_LABELS, ERROR_TYPES

    fig = go.Figure()
    labels = [ERROR_SHORT_LABELS[t] for t in ERROR_TYPES]
    for i, (model, tide) in enumerate(tides.items()):
        data = tide if isinstance(tide, Mapping) else tide.to_dict()
        fig.add_bar(name=model, x=labels, marker_color=PALETTE[i % len(PALETTE)],
                    y=[data["delta_ap"][t] for t in ERROR_TYPES],
                    text=[f"{data['counts'][t]}" for t in ERROR_TYPES], textposition="outside",
                    customdata=[ERROR_LABELS[t] for t in ERROR_TYPES],
                    hovertemplate="%{customdata}: AP50 +%{y:.4f} if fixed, %{text} boxes")
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig.update_layout(barmode="group"),
                   "Why boxes are wrong (TIDE): AP50 gained if fixed, count on top", "",
                   "AP50 gained")  # fmt: skip


def reliability(calibrations: Mapping[str, Any]) -> go.Figure:
    """Reliability diagram: share of right detections against mean score per score bin (the
    diagonal is a perfectly calibrated model); ECE in the legend. ``calibrations`` maps a model
    to its ``Calibration`` (or its ``to_dict()``)."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                    line={"color": "#999999", "dash": "dash"})
    for i, (model, cal) in enumerate(calibrations.items()):
        data = cal if isinstance(cal, Mapping) else cal.to_dict()
        bins = [b for b in data["bins"] if b["count"]]
        label = f"ECE {data['ece']:.3f}" if bins else "no box of the dataset's classes"
        fig.add_scatter(
            x=[b["avg_confidence"] for b in bins], y=[b["avg_accuracy"] for b in bins],
            mode="lines+markers", name=f"{model} ({label})",
            line={"color": PALETTE[i % len(PALETTE)]},
            marker={"size": [6 + 14 * (b["count"] / max(1, data["num_detections"])) ** 0.5
                             for b in bins]},
            text=[f"{b['count']} boxes scoring {b['bin_lower']:.1f}-{b['bin_upper']:.1f}"
                  for b in bins],
        )  # fmt: skip
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, "Calibration: does score 0.8 mean right 80% of the time?",
                   "mean score in the bin", "share right (IoU 0.5)")
