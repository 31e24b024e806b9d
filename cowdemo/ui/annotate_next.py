"""Annotate page panels: the "annotate next" queue (which image to label next, and why) and the
label-error review list (one click adds a forgotten box or deletes a stray one). The logic is
in :mod:`cowdemo.annotation_queue` and :mod:`cowdemo.label_review`; predictions come from
:func:`cowdemo.ui.common.predict`, cached per image content and model."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from cowdemo import images as image_io
from cowdemo import label_review
from cowdemo.annotation_queue import QueueItem, rank_images
from cowdemo.datasets import formats
from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.store import DatasetStore
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.ui.common import Settings, show_error


def predictions(dataset: CocoDataset, image_ids: Sequence[int], models: Sequence[str],
                device: str, what: str) -> dict[str, dict[int, Detections]]:
    """Each model's raw detections on each image, with a progress bar the first time."""
    from cowdemo.ui.common import predict

    out: dict[str, dict[int, Detections]] = {}
    total = len(image_ids) * len(models)
    bar = st.progress(0.0, text=f"{what}…") if total else None
    done = 0
    for model in models:
        out[model] = {}
        for image_id in image_ids:
            info = dataset.image_info(image_id)
            path = dataset.image_path(image_id)
            if not path.is_file():
                out[model][image_id] = Detections.empty()
                continue
            digest = info.get("sha256") or image_io.content_hash(path.read_bytes())
            out[model][image_id] = predict(digest, model, device, dataset.read_image(image_id))
            done += 1
            if bar is not None:
                bar.progress(done / total, text=f"{what}: {model}, image {done} of {total}")
    if bar is not None:
        bar.empty()
    return out


def _jump_to_queue() -> None:
    st.session_state["_annotate_queue_jump"] = True


def queue_toggle(name: str, models: Sequence[str]) -> bool:
    """The switch that makes next / previous follow the queue."""
    label = " vs ".join(models) if models else "no model"
    return st.toggle(
        f"🎯 Annotate next: follow the queue ({label})", key=f"annotate_queue_{name}",
        disabled=not models, on_change=_jump_to_queue,
        help="Images not done, most useful first: where model A and model B disagree, where a "
             "model is unsure (boxes near the score threshold, few confident boxes), and video "
             "frames near an id switch or track break. Next / previous follow the queue.")


def queue(dataset: CocoDataset, cfg: Settings, models: Sequence[str],
          device: str) -> list[QueueItem]:
    todo = [int(im["id"]) for im in dataset.images if not formats.is_done(im)]
    if not todo:
        return []
    found = predictions(dataset, todo, models, device, "Ranking the images to label next")
    return rank_images(dataset, found, cfg.score_threshold, cfg.classes, todo)


def jump_requested() -> bool:
    return bool(st.session_state.pop("_annotate_queue_jump", False))


def show_queue(items: list[QueueItem], image_id: int) -> None:
    """Where this image is in the queue and why; the whole queue in an expander."""
    ids = [q.image_id for q in items]
    if not items:
        st.success("Every image is done: the queue is empty 🎉")
        return
    if image_id in ids:
        item = items[ids.index(image_id)]
        st.info(f"**Queue {ids.index(image_id) + 1} of {len(items)}** (score "
                f"{item.score:.2f}): {item.reason}")
    else:
        st.info(f"This image is not in the queue (it is done); ▶ Next opens the queue's first "
                f"of {len(items)}.")
    with st.expander(f"The queue: {len(items)} images not done, best to label first"):
        st.dataframe(pd.DataFrame([
            {"#": n, "image": q.file_name, "score": round(q.score, 3),
             "why": q.reason} for n, q in enumerate(items, start=1)]),
            hide_index=True, width="stretch", key="annotate_queue_table")
        st.caption("Score = disagreement between model A and B + 0.5 × uncertainty + closeness "
                   "to a tracker break (each 0..1); docs/datasets.md explains each part.")


# --- label-error review ---------------------------------------------------------------------------
def review_panel(store: DatasetStore, name: str, dataset: CocoDataset, cfg: Settings,
                 models: Sequence[str], device: str, label_as: str | None) -> int | None:
    """The review list; returns the image to open when the user asks to see one."""
    state = st.session_state
    done = [int(im["id"]) for im in dataset.images if formats.is_done(im)]
    with st.expander("🔎 Review likely label errors (boxes forgotten or drawn by mistake)",
                     key="annotate_review_panel"):  # a key keeps it open through reruns
        if not models:
            st.caption("Needs a model (see Home).")
            return None
        if not done:
            st.caption("Needs images marked done: only those are ground truth.")
            return None
        st.caption(f"On the {len(done)} images marked done: confident boxes of "
                   f"{' and '.join(models)} (score ≥ 0.70) with no box drawn there, and drawn "
                   "boxes no model finds at any score. The sidebar's class filter and *Label "
                   "model boxes as* decide which model boxes count.")
        if st.button("Find likely label errors", key="review_find"):
            state["_annotate_review"] = name
        if state.get("_annotate_review") != name:
            return None
        try:
            found = predictions(dataset, done, models, device, "Looking for label errors")
            results = {m: label_review.model_results(dataset, found[m], cfg.classes, label_as)
                       for m in models}
            suspects = label_review.review_list(dataset, results)
        except CowdemoError as exc:
            show_error(exc)
            return None
        note = state.pop("_annotate_review_note", None)
        if note:
            st.success(note)
        if not suspects:
            st.success("No likely label error: every confident model box has a drawn box, and "
                       "every drawn box is found by a model.")
            return None
        st.markdown(f"**{len(suspects)} to review**, most suspicious first:")
        for number, suspect in enumerate(suspects[:30], start=1):
            row = st.columns([6, 2, 1], vertical_alignment="center")
            row[0].markdown(f"{number}. {label_review.suspect_text(suspect)}")
            action = ("➕ Add the model's box" if suspect.kind == "missing"
                      else "🗑 Delete this box")
            if row[1].button(action, key=f"review_fix_{number}_{suspect.image_id}"):
                try:
                    state["_annotate_review_note"] = label_review.fix(store, name, suspect)
                except CowdemoError as exc:
                    show_error(exc)
                    return None
                from cowdemo.ui.annotate import bump_revision

                bump_revision(name, suspect.image_id)
                st.rerun()
            if row[2].button("Open", key=f"review_open_{number}_{suspect.image_id}"):
                return suspect.image_id
        if len(suspects) > 30:
            st.caption(f"… and {len(suspects) - 30} more: fix these first.")
    return None
