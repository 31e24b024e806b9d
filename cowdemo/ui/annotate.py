"""Streamlit glue of the Annotate page: session state (which dataset and image, what the canvas
started from), the canvas itself, saving, navigation, pre-annotation, import and export.

The rules that keep drawings safe:

- The canvas is keyed by dataset, image, a revision and its size; for one key its
  ``initial_drawing`` never changes (a changed drawing would make the browser reload it), so
  the page keeps it in session state with the boxes it was made from.
- Every run compares the canvas's boxes with what *this session* last saved for that key and
  saves when they differ: each change is on disk within one rerun, and a box another session
  saved in the meantime is never overwritten by a canvas nobody touched.
- Navigation buttons are read after the canvas in the same run, so the canvas's last change is
  saved before the page moves to another image.
- Changes made outside the canvas (the box table, pre-annotation) are saved and then bump the
  revision, so the canvas reloads from the store.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image

from cowdemo import annotation as ann
from cowdemo import images as image_io
from cowdemo.datasets import formats
from cowdemo.datasets.coco import ANNOTATIONS_FILE, CocoDataset
from cowdemo.datasets.store import SAMPLE_NAME, DatasetStore
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.ui.common import Settings, show_error

OWN_CLASS = "(the model's class)"
EXPORTS = {
    "COCO JSON (boxes only)": ("json", None),
    "COCO (zip with images)": ("zip", "coco"),
    "YOLO (zip with images)": ("zip", "yolo"),
    "Pascal VOC (zip with images)": ("zip", "voc"),
}


def remember(widget_key: str, keep_key: str) -> None:
    """Copy a widget's value to a plain key, which survives page switches."""
    st.session_state[keep_key] = st.session_state[widget_key]


def select_dataset(name: str) -> None:
    st.session_state["_annotate_dataset"] = name


def default_dataset(store: DatasetStore, names: list[str]) -> str:
    """Where a new session starts: the dataset changed most recently other than the sample (so
    nobody's images land in the sample because a fresh tab opened on it), else the sample."""
    own = [n for n in names if n != SAMPLE_NAME]
    if not own:
        return SAMPLE_NAME if SAMPLE_NAME in names else names[0]

    def changed(name: str) -> int:
        try:
            return (store.path(name) / ANNOTATIONS_FILE).stat().st_mtime_ns
        except OSError:
            return 0

    return max(own, key=changed)


def chosen_dataset(names: list[str], default: str) -> str:
    """The dataset this session works on: chosen before, else the URL's ``?dataset=`` (so a
    browser reload comes back to it), else ``default``."""
    state = st.session_state
    if state.get("_annotate_dataset") not in names:
        from_url = st.query_params.get("dataset")
        state["_annotate_dataset"] = from_url if from_url in names else default
    return state["_annotate_dataset"]


def open_dataset(store: DatasetStore,
                 name: str | None) -> tuple[CocoDataset | None, CowdemoError | None]:
    """The dataset ``name`` as on disk now, or (None, what is wrong with it)."""
    if name is None:
        return None, None
    try:
        return store.get(name), None
    except CowdemoError as exc:
        return None, exc


def show_in_url(name: str, image_id: int) -> None:
    """Put the dataset and image in the address bar: a reload opens the same image."""
    if st.query_params.get("dataset") != name or st.query_params.get("image") != str(image_id):
        st.query_params.update(dataset=name, image=str(image_id))


def split_classes(text: str) -> list[str]:
    return [c.strip() for c in str(text or "").split(",") if c.strip()]


def name_from_file(file_name: str) -> str:
    stem = Path(file_name).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:64]


# --- import, add, export ----------------------------------------------------------------------
@dataclass
class ImportOutcome:
    ok: bool
    name: str
    summary: str
    lines: list[str] = field(default_factory=list)


def import_upload(store: DatasetStore, file_name: str, data: bytes, name: str, fmt: str,
                  classes: list[str] | None, replace: bool) -> ImportOutcome:
    """Import an uploaded .zip or .json as dataset ``name`` (default: from the file name)."""
    name = name or name_from_file(file_name)
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".upload-") as tmp:
        path = Path(tmp) / formats.safe_file_name(file_name, "upload")
        path.write_bytes(data)
        try:
            _, report = store.import_path(name, path, fmt, classes=classes,
                                          replace=replace)
        except formats.ImportRejected as exc:
            return ImportOutcome(False, name, str(exc), exc.report.lines())
        except CowdemoError as exc:
            return ImportOutcome(False, name, str(exc))
    return ImportOutcome(True, name, f"Imported dataset '{name}' from {report.summary()}",
                         report.lines())


def show_import_outcome(outcome: ImportOutcome) -> None:
    (st.success if outcome.ok else st.error)(outcome.summary)
    if outcome.lines:
        shown = outcome.lines[:200]
        more = len(outcome.lines) - len(shown)
        st.code("\n".join(shown) + (f"\n… and {more} more" if more else ""), language=None)


@dataclass
class AddOutcome:
    """What one press of *Add images* did: shown as one message, never two that disagree."""

    dataset: str
    files: int
    added: int = 0
    known: int = 0  # already in the dataset (same content), or twice in this upload
    problems: list[str] = field(default_factory=list)  # one line per file not added

    @property
    def kind(self) -> str:
        """"success" (every file is in the dataset now), "warning" (some), "error" (none)."""
        if not self.problems:
            return "success"
        return "warning" if self.added or self.known else "error"

    def message(self) -> str:
        """Markdown: one summary line, then one line per file that was not added."""
        name = f"**{self.dataset}**"
        known = f" ({self.known} already in it)" if self.known else ""
        if not self.problems:
            if not self.added:
                head = f"All {plural(self.known, 'image')} are already in {name}: nothing added."
            else:
                head = f"Added {plural(self.added, 'image')} to {name}{known}."
        elif self.added or self.known:
            head = (f"Added {plural(self.added, 'image')} to {name}{known}; "
                    f"{len(self.problems)} of {plural(self.files, 'file')} not added:")
        else:
            which = ("the file could not be added" if self.files == 1
                     else f"none of the {self.files} files could be added")
            head = f"Nothing added to {name}: {which}:"
        return "\n".join([head, *(f"- {line}" for line in self.problems)])


def add_uploads(store: DatasetStore, name: str, files: list[tuple[str, bytes]]) -> AddOutcome:
    """Add uploaded images: every file that can be read is added, each one that cannot is
    reported (one line, naming the file); the outcome says both in one message."""
    outcome = AddOutcome(name, len(files))
    readable = []
    for file_name, data in files:
        try:
            image_io.load(data, name=file_name)
        except CowdemoError as exc:
            outcome.problems.append(str(exc))
            continue
        readable.append((file_name, data))
    before = set(store.get(name).image_ids)
    try:
        ids = store.add_images(name, readable) if readable else []
    except CowdemoError:
        ids = []  # one file the store refuses (e.g. a size that clashes): find it, keep the rest
        for file_name, data in readable:
            try:
                ids += store.add_images(name, [(file_name, data)])
            except CowdemoError as exc:
                outcome.problems.append(f"{file_name}: {exc}" if file_name not in str(exc)
                                        else str(exc))
    for image_id in ids:
        if image_id in before:
            outcome.known += 1
        else:
            outcome.added += 1
            before.add(image_id)
    return outcome


def show_add_outcome(outcome: AddOutcome) -> None:
    {"success": st.success, "warning": st.warning, "error": st.error}[outcome.kind](
        outcome.message())


def export_buttons(store: DatasetStore, name: str) -> None:
    choice = st.radio("Export as", list(EXPORTS), horizontal=True, key="export_format")
    kind, fmt = EXPORTS[choice]
    if kind == "json":
        try:
            data = formats.json_bytes(formats.coco_for_export(store.get(name)))
        except CowdemoError as exc:
            show_error(exc)
            return
        st.download_button("⬇️ Download COCO JSON", data, file_name=f"{name}.json",
                           mime="application/json", on_click="ignore", key="export_json")
    else:
        st.download_button(f"⬇️ Download {fmt.upper()} zip",
                           lambda: formats.zip_bytes(store.get(name), fmt),
                           file_name=f"{name}-{fmt}.zip", mime="application/zip",
                           on_click="ignore", key=f"export_{fmt}")


# --- messages about the image shown --------------------------------------------------------------
def post_message(name: str, image_id: int, text: str) -> None:
    """A message about one image (starting with ⚠ for a warning), shown while that image is."""
    st.session_state["_annotate_message"] = (f"{name}/{image_id}", text)


def message_for(name: str, image_id: int) -> str | None:
    """The message posted about this image, if any. It stays through the canvas's own reruns
    (a reloaded canvas reruns the page at once) and goes when another image is shown."""
    held = st.session_state.get("_annotate_message")
    if held is None or held[0] != f"{name}/{image_id}":
        st.session_state.pop("_annotate_message", None)
        return None
    return held[1]


# --- which image ------------------------------------------------------------------------------
def positions() -> dict[str, int]:
    return st.session_state.setdefault("_annotate_pos", {})


def current_image(name: str, dataset: CocoDataset) -> int:
    """The image this session is on in ``name``: remembered, else the first not done."""
    ids = dataset.image_ids
    image_id = positions().get(name)
    if image_id not in ids and st.query_params.get("dataset") == name:
        from_url = st.query_params.get("image", "")
        image_id = int(from_url) if from_url.isdigit() else None
    if image_id not in ids:
        todo = [im["id"] for im in dataset.images if not formats.is_done(im)]
        image_id = todo[0] if todo else ids[0]
        positions()[name] = image_id
    return int(image_id)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('x') else 's'}"


def image_label(dataset: CocoDataset, image_id: int, number: int,
                count: int | None = None) -> str:
    """``✓ 3/40 · name.jpg · 2 boxes`` (✓ done, ○ not yet); ``count`` overrides the box count."""
    info = dataset.image_info(image_id)
    mark = "✓" if formats.is_done(info) else "○"
    boxes = len(dataset.annotations(image_id)) if count is None else count
    return f"{mark} {number}/{len(dataset.image_ids)} · {info['file_name']} · " + plural(
        boxes, "box")


def navigate(store: DatasetStore, name: str, dataset: CocoDataset, image_id: int,
             previous: bool, following: bool, done_next: bool, picked: int,
             blocked: bool, queue: list[int] | None = None) -> int | None:
    """Apply the navigation buttons; the image to show next, or None to stay. With ``queue``
    (the "annotate next" order) previous, next and done-next follow it."""
    ids = dataset.image_ids
    position = ids.index(image_id)
    wants = previous or following or done_next or picked != image_id
    if wants and blocked:
        raise CowdemoError("Fix the box problems above before moving on: the canvas still has "
                           "your boxes, and nothing is saved until every label is a class.")
    target: int | None = None
    if queue is not None and (previous or following or done_next):
        from cowdemo.annotation_queue import queue_neighbour

        if done_next:
            store.mark_done(name, image_id, True)
            rest = [i for i in queue if i != image_id]
            after = queue_neighbour(queue, image_id, 1) if image_id in queue else None
            target = after or (rest[0] if rest else image_id)
            if not rest:
                post_message(name, target, f"The queue is empty: every image of {name} is "
                                           "done 🎉")
        else:
            target = queue_neighbour(queue, image_id, -1 if previous else 1)
    elif previous and position > 0:
        target = ids[position - 1]
    elif following and position < len(ids) - 1:
        target = ids[position + 1]
    elif done_next:
        updated = store.mark_done(name, image_id, True)
        todo = [im["id"] for im in updated.images if not formats.is_done(im)]
        later = [i for i in todo if ids.index(i) > position] if todo else []
        target = (later or todo or [image_id])[0]
        if not todo:
            post_message(name, target, f"All {len(ids)} images of {name} are done 🎉")
    elif picked != image_id:
        target = picked
    if target is not None:
        positions()[name] = int(target)
    return target


# --- the canvas -------------------------------------------------------------------------------
def revision(name: str, image_id: int) -> int:
    return st.session_state.setdefault("_annotate_rev", {}).get(f"{name}/{image_id}", 0)


def bump_revision(name: str, image_id: int) -> None:
    revs = st.session_state.setdefault("_annotate_rev", {})
    revs[f"{name}/{image_id}"] = revs.get(f"{name}/{image_id}", 0) + 1


def canvas_entry(store: DatasetStore, name: str, dataset: CocoDataset, image_id: int,
                 geometry: ann.CanvasGeometry) -> dict[str, Any]:
    """The current canvas's key, its fixed initial drawing and the boxes it started from."""
    key = (f"canvas-{name}-{image_id}-{revision(name, image_id)}-"
           f"{geometry.canvas_width}x{geometry.canvas_height}")
    entries = st.session_state.setdefault("_annotate_canvas", {})
    if key not in entries:
        gt = dataset.ground_truth(image_id)
        boxes = [(str(c), [float(v) for v in x]) for c, x in zip(gt.class_names, gt.xyxy)]
        entries.clear()  # only the canvas on screen needs its entry
        entries[key] = {
            "key": key,
            "baseline": boxes,
            "last": boxes,
            "drawing": ann.initial_drawing(boxes, geometry, dataset.classes),
            "saved_at": None,
        }
    return entries[key]


@st.cache_data(max_entries=64, show_spinner=False)
def background_image(path: str, mtime_ns: int, width: int, height: int) -> bytes:
    """The image scaled to the canvas size exactly, as JPEG (small to send, sharp on screen)."""
    rgb = image_io.load(path)
    resized = Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    resized.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def draw_canvas(entry: dict[str, Any], image_path: Path, geometry: ann.CanvasGeometry,
                classes: tuple[str, ...], default_class: str) -> ann.DrawingBoxes:
    """Show the canvas; the boxes it holds now, in image pixels."""
    unchanged = ann.DrawingBoxes(boxes=list(entry["last"]))
    if not image_path.is_file():
        st.warning(f"The image file {image_path.name} is missing: add it under *Add images* "
                   "with the same file name. Its boxes are listed below.")
        return unchanged
    try:
        background = background_image(str(image_path), image_path.stat().st_mtime_ns,
                                      geometry.canvas_width, geometry.canvas_height)
    except CowdemoError as exc:
        show_error(exc)
        return unchanged
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as exc:  # outside `streamlit run` its manifest is not registered
        st.warning(f"The drawing canvas is not available here ({type(exc).__name__}); the box "
                   "table below still works.")
        return unchanged
    color = ann.class_color(default_class, classes)
    result = st_canvas(
        fill_color=ann.fill_color(color),
        stroke_width=ann.STROKE_WIDTH,
        stroke_color=color,
        background_image=background,
        background_image_fit="stretch",
        update_streamlit=True,
        width=geometry.canvas_width,
        height=geometry.canvas_height,
        drawing_mode="labeled_rect",
        label=default_class,
        font_size=ann.LABEL_FONT_SIZE,
        initial_drawing=entry["drawing"],
        key=entry["key"],
    )
    return ann.read_drawing(result.json_data, geometry, classes, default_class,
                            entry["baseline"])


def save_if_changed(store: DatasetStore, name: str, image_id: int, entry: dict[str, Any],
                    drawn: ann.DrawingBoxes) -> bool:
    """Save the canvas's boxes when they differ from what this session last saved."""
    if drawn.problems or ann.same_boxes(drawn.boxes, entry["last"]):
        return False
    try:
        store.set_boxes(name, image_id, drawn.boxes)
    except CowdemoError as exc:
        show_error(exc, "Not saved")
        return False
    entry["last"] = list(drawn.boxes)
    entry["saved_at"] = datetime.now()
    return True


def show_save_status(entry: dict[str, Any], drawn: ann.DrawingBoxes, saved: bool) -> None:
    for problem in drawn.problems:
        st.error(problem, icon="⚠️")
    if drawn.problems:
        st.caption("Not saved yet: nothing is lost, the canvas keeps your boxes.")
    for note in drawn.notes:
        st.info(note)
    what = plural(len(entry["last"]), "box")
    if saved:
        st.caption(f"✓ Saved {what} at {entry['saved_at']:%H:%M:%S}")
    elif entry["saved_at"] is not None:
        st.caption(f"✓ Saved {what} (last change {entry['saved_at']:%H:%M:%S})")
    elif not drawn.problems:
        st.caption(f"✓ {what}, all saved")


def boxes_digest(boxes: list[ann.Box]) -> str:
    return hashlib.sha1(json.dumps(boxes).encode()).hexdigest()[:12]


def save_table_edits(store: DatasetStore, name: str, image_id: int, entry: dict[str, Any],
                     boxes: list[ann.Box], edited: Any, classes: tuple[str, ...]) -> None:
    """Save the box table's edits (class, coordinates, deleted rows) and reload the canvas."""
    rows = edited.to_dict("records") if hasattr(edited, "to_dict") else list(edited)
    new, problems = ann.boxes_from_table(rows, classes)
    for problem in problems:
        st.error(problem, icon="⚠️")
    if problems or ann.same_boxes(new, boxes):
        return
    try:
        store.set_boxes(name, image_id, new)
    except CowdemoError as exc:
        show_error(exc, "Not saved")
        return
    bump_revision(name, image_id)
    st.rerun()


# --- pre-annotation ---------------------------------------------------------------------------
def default_label(cfg: Settings, dataset: CocoDataset) -> str:
    """Keep the model's classes when the sidebar's class filter only holds dataset classes."""
    if cfg.classes is not None and set(cfg.classes) <= set(dataset.classes):
        return OWN_CLASS
    return dataset.classes[0]


def should_auto_prefill(name: str, info: dict[str, Any], boxes: list[ann.Box]) -> bool:
    """Auto pre-annotation runs once per image and session, on images not done and empty."""
    tried = st.session_state.setdefault("_annotate_prefilled", set())
    key = f"{name}/{info['id']}"
    if key in tried or boxes or formats.is_done(info):
        return False
    tried.add(key)
    return True


def prefill(store: DatasetStore, name: str, image_id: int, dataset: CocoDataset, model: str,
            device: str, cfg: Settings, label_as: str | None,
            boxes: list[ann.Box]) -> None:
    """Add the model's boxes (sidebar threshold and class filter) that do not overlap the
    image's boxes; a message says what was added and what the filter hid."""
    from cowdemo.ui.common import predict

    path = dataset.image_path(image_id)
    info = dataset.image_info(image_id)
    rgb = dataset.read_image(image_id)
    digest = info.get("sha256") or image_io.content_hash(path.read_bytes())
    detections = predict(digest, model, device, rgb)
    proposed, hidden, problems = ann.model_boxes(detections, cfg.score_threshold, cfg.classes,
                                                 label_as, dataset.classes)
    if problems:
        raise CowdemoError(problems[0])
    proposed = ann.clip_to_image(proposed, int(info["width"]), int(info["height"]))
    merged, added = ann.merge_boxes(boxes, proposed)
    if added:
        store.set_boxes(name, image_id, merged)
        bump_revision(name, image_id)
    st.session_state.setdefault("_annotate_prefilled", set()).add(f"{name}/{image_id}")
    post_message(name, image_id, prefill_message(
        model, cfg.score_threshold, cfg.classes, detections, len(proposed), added, hidden))


def prefill_message(model: str, threshold: float, classes: tuple[str, ...] | None,
                    detections: Detections, proposed: int, added: int,
                    hidden: Detections) -> str:
    """What pre-annotation did, and when it added nothing, why (starts with ⚠ then)."""
    at = f"score ≥ {threshold:.2f}"
    if added:
        text = f"{model}: added {plural(added, 'box')} with {at}"
        if proposed > added:
            text += f" ({proposed - added} overlapped boxes already here)"
    elif proposed:
        text = (f"⚠ {model} added no box: its {plural(proposed, 'box')} with {at} all overlap "
                "boxes already on this image")
    else:
        weaker, _ = detections.split(classes)
        wanted = "in the class filter" if classes is not None else "at all"
        if len(weaker):
            best = int(weaker.scores.argmax())
            text = (f"⚠ {model} added no box: it finds nothing with {at} here (its best, "
                    f"{weaker.class_names[best]}, scores {weaker.scores[best]:.2f}); lower the "
                    "score threshold in the sidebar to start from weaker boxes")
        elif len(hidden):
            text = f"⚠ {model} added no box: it finds nothing {wanted} with {at} here"
        else:
            text = f"⚠ {model} added no box: it finds nothing {wanted} on this image"
    if len(hidden):
        text += (f"; it also sees {hidden.summary()}, hidden by the class filter in the sidebar "
                 "(a COCO model calls a cow *dog* more often than you would think)")
    return text + "."
