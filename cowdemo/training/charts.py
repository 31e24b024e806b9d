"""Plotly figures of a fine-tune from its metrics log (`cowdemo.training.monitor`): losses,
learning rate, and held-out mAP per evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

LOSS_LABELS = {
    "loss_classifier": "box classifier",
    "loss_box_reg": "box regression",
    "loss_objectness": "RPN objectness",
    "loss_rpn_box_reg": "RPN box regression",
    # YOLOX (its IoU loss comes weighted by 5, as in its total)
    "iou_loss": "box IoU (x5)",
    "conf_loss": "objectness",
    "cls_loss": "class",
    "l1_loss": "box L1",
}


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=title, xaxis_title=x, yaxis_title=y, template="plotly_white", height=height,
        legend={"orientation": "h", "y": -0.3}, margin={"l": 40, "r": 10, "t": 50, "b": 40},
        uirevision="keep",  # zoom survives the live updates
    )  # fmt: skip
    return fig


def _smooth(values: list[float], window: int) -> list[float]:
    out, total, queue = [], 0.0, []
    for v in values:
        queue.append(v)
        total += v
        if len(queue) > window:
            total -= queue.pop(0)
        out.append(total / len(queue))
    return out


MAX_POINTS = 2000
MARKERS_UP_TO = 30  # a run's first steps are points, not an empty chart


def _mode(n: int) -> str:
    return "lines+markers" if n <= MARKERS_UP_TO else "lines"


def _train_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Training steps, thinned to at most MAX_POINTS (the browser stays light on long runs;
    the last step is always kept)."""
    steps = [r for r in rows if r.get("type") == "train" and r.get("loss") is not None]
    stride = -(-len(steps) // MAX_POINTS)
    return steps if stride <= 1 else steps[::stride] + ([steps[-1]] if
                                                        (len(steps) - 1) % stride else [])


def loss_figure(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """Total loss (raw and smoothed) and its four parts against the iteration."""
    steps = _train_rows(rows)
    x = [r["iteration"] for r in steps]
    fig = go.Figure()
    total = [float(r["loss"]) for r in steps]
    mode = _mode(len(x))
    fig.add_scatter(x=x, y=total, mode=mode, name="total", line={"color": "#bbbbbb"})
    fig.add_scatter(x=x, y=_smooth(total, max(1, len(total) // 50)), mode=mode,
                    name="total (smoothed)", line={"color": "#1b2a1b", "width": 2.5})
    present = {k for r in steps for k in r.get("losses", {})}
    for key, label in LOSS_LABELS.items():
        if steps and key not in present:
            continue  # the other family's parts
        fig.add_scatter(x=x, y=[r.get("losses", {}).get(key) for r in steps], mode=mode,
                        name=label, line={"width": 1})
    last = x[-1] if x else 0
    return _layout(fig, f"Loss (iteration {last})", "iteration", "loss")


def planned_schedule(config: dict[str, Any] | None, peak: float | None,
                     points: int = 400) -> tuple[list[int], list[float]]:
    """The learning rate the run will use at every iteration (warm-up, then its schedule), from
    the settings in its status; ([], []) when they are missing or unreadable."""
    from cowdemo.errors import CowdemoError
    from cowdemo.training.config import TrainConfig
    from cowdemo.training.engine import lr_at

    if not config or not peak:
        return [], []
    try:
        settings = TrainConfig.from_dict(dict(config))
    except (CowdemoError, TypeError, ValueError):
        return [], []
    total = settings.iterations
    stride = max(1, total // points)
    x = sorted({*range(0, total, stride), min(settings.warmup, total), total})
    return x, [lr_at(i, settings, float(peak)) for i in x]


def lr_figure(rows: Sequence[dict[str, Any]], config: dict[str, Any] | None = None,
              peak: float | None = None) -> go.Figure:
    """The learning rate of the steps done, over the whole planned schedule (dashed) when the
    run's settings are given."""
    steps = _train_rows(rows)
    fig = go.Figure()
    plan_x, plan_y = planned_schedule(config, peak)
    if plan_x:
        fig.add_scatter(x=plan_x, y=plan_y, mode="lines", name="planned",
                        line={"color": "#9e9e9e", "dash": "dash", "width": 1})
    fig.add_scatter(x=[r["iteration"] for r in steps], y=[r.get("lr") for r in steps],
                    mode=_mode(len(steps)), name="learning rate", line={"color": "#2e7d32"})
    return _layout(fig, "Learning rate", "iteration", "lr")


def map_figure(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """Held-out AP, AP50 and AP75 at each evaluation (iteration 0 is the starting model)."""
    evals = [r for r in rows if r.get("type") == "eval"]
    fig = go.Figure()
    for key, color in (("AP50", "#2e7d32"), ("AP", "#1f77b4"), ("AP75", "#ff7f0e")):
        fig.add_scatter(x=[r["iteration"] for r in evals],
                        y=[r[key] if r.get(key, -1) >= 0 else None for r in evals],
                        mode="lines+markers", name=key, line={"color": color})
    fig.update_yaxes(range=[0, 1])
    return _layout(fig, "Held-out mAP per evaluation", "iteration", "AP")
