"""Track page panel: send frames of the tracked video to a dataset, to label: the frames around
the switches and track breaks first, or every n-th, or listed frames; with the model's cached
boxes or the tracker's boxes to correct, marked not done (:mod:`cowdemo.datasets.video_frames`
does the work)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from cowdemo.datasets import video_frames as vf
from cowdemo.datasets.store import DatasetStore, check_name
from cowdemo.errors import CowdemoError
from cowdemo.tracking import TrackingReport, VideoDetections
from cowdemo.ui.common import Settings, show_error

NEW = "New dataset…"
OWN_CLASS = "(the model's class)"
WHICH = ("Around the switches and track breaks", "Every n-th frame", "These frames")
BOXES = ("The model's boxes", "The tracker's boxes", "No boxes")


def frames_panel(video: Any, runs: Sequence[tuple[str, str, Any]],
                 reports: Sequence[TrackingReport], found: Mapping[str, VideoDetections],
                 cfg: Settings) -> None:
    """The expander; ``runs`` are the page's (label, model, settings) beside ``reports``."""
    with st.expander("📤 Send frames to a dataset, to label (switches first)",
                     key="track_frames_panel"):  # a key keeps it open through reruns
        try:
            _panel(video, runs, reports, found, cfg)
        except CowdemoError as exc:
            show_error(exc)


def _panel(video, runs, reports, found, cfg: Settings) -> None:
    labels = [r.label for r in reports]
    index = 0
    if len(labels) > 1:
        index = labels.index(st.selectbox("Run", labels, key="frames_run",
                                          help="Whose switches and boxes to use."))
    report, model = reports[index], runs[index][1]
    points = vf.break_points(report)
    numbers = [int(n) for n in report.tracks.frame_numbers]
    left, right = st.columns(2)
    which = left.radio("Frames", WHICH, key="frames_which",
                       captions=[f"{len(points)} switch(es) or break(s) here",
                                 "of the processed frames", "numbers as on the slider"])
    if which == WHICH[0]:
        around = right.number_input("Frames either side", 0, 10, vf.AROUND, key="frames_around")
        plan = vf.frames_at_switches(report, around=int(around))
    elif which == WHICH[1]:
        every = right.number_input("Every", 1, 1000, 10, key="frames_every")
        plan = vf.every_nth(numbers, int(every), points)
    else:
        text = right.text_input("Frame numbers", placeholder="12, 48, 60-62", key="frames_list")
        plan = vf.listed(vf.parse_frames(text), int(report.tracks.meta.decoded), points,
                         numbers) if text.strip() else vf.FramePlan([])
    store = DatasetStore()
    names = store.names()
    left, middle, right = st.columns(3)
    boxes_kind = left.radio("Start from", BOXES, key="frames_boxes",
                            help="The model's boxes come from the cached detections (sidebar "
                                 "score threshold and class filter); the tracker's are the "
                                 "boxes with ids the video shows.")
    target = middle.selectbox("Dataset", [NEW, *names], key="frames_dataset")
    if target == NEW:
        target = middle.text_input("New dataset name", value=_default_name(video.name),
                                   key="frames_new_name").strip()
        classes: tuple[str, ...] = ("cow",)
    else:
        classes = store.get(target).classes
    own_ok = cfg.classes is not None and set(cfg.classes) <= set(classes)
    options = [OWN_CLASS, *classes]
    label = right.selectbox("Label boxes as", options, index=0 if own_ok else 1,
                            key=f"frames_label_{target}",
                            help="A COCO model calls cows 'dog': store its boxes as 'cow'.")
    label_as = None if label == OWN_CLASS else label
    if not len(plan):
        st.caption("No frames chosen yet." if which != WHICH[0] else
                   "No switch or break in this run: choose every n-th frame or list frames.")
        return
    shown = ", ".join(str(f) for f in plan.frames[:12]) + (" …" if len(plan) > 12 else "")
    st.caption(f"{len(plan)} frame(s), in this order: {shown}. First: "
               f"{plan.reasons.get(plan.frames[0], '')}.")
    if st.button(f"Add {len(plan)} frame(s) to {target or '…'}", type="primary",
                 key="frames_add", disabled=not target):
        check_name(target)
        if boxes_kind == BOXES[0]:
            source = vf.detection_boxes(found[model], cfg.score_threshold, cfg.classes, label_as)
        elif boxes_kind == BOXES[1]:
            source = vf.tracker_boxes(report, label_as)
        else:
            source = None
        bar = st.progress(0.0, text="Reading the frames…")
        try:
            result = vf.add_frames(store, target, video.path, plan, source,
                                   video_name=video.name,
                                   progress=lambda d, t: bar.progress(d / t, text=f"Frame {d} "
                                                                      f"of {t}"))
        finally:
            bar.empty()
        st.session_state["_frames_added"] = result.message()
    note = st.session_state.get("_frames_added")
    if note:
        st.success(note + " Open **Annotate** to label them (its queue puts frames near a "
                   "switch first).")


def _default_name(video_name: str) -> str:
    import re

    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(video_name).stem).strip("-._")[:50]
    return f"{stem or 'video'}-frames"
