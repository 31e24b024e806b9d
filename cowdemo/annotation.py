"""Annotation logic the Annotate page runs on (no Streamlit here): exact canvas ⇄ image
coordinates, the drawing the canvas starts from and the boxes read back from it, pre-annotation
from a model, and progress.

The page shows an image scaled to fit the screen on a streamlit-drawable-canvas. The canvas is
``canvas_width`` x ``canvas_height`` pixels and the image is stretched onto it exactly (its
``background_image_fit="stretch"``), so one image pixel is ``scale_x = canvas_width /
image_width`` canvas pixels across and ``scale_y`` down, whatever the size and aspect::

    geometry = CanvasGeometry.fit(4000, 3000, max_width=800, max_height=600)   # 800 x 600
    geometry.to_canvas([400, 300, 1200, 900])   # {"left": 80.0, "top": 60.0, "width": 160.0, ...}
    geometry.to_image(80, 60, 160, 120)         # [400.0, 300.0, 1200.0, 900.0]

Boxes are pixel-edge ``[x1, y1, x2, y2]`` in image pixels; on the canvas a box is a Fabric.js
rectangle whose ``left``/``top`` is its corner and ``width * scaleX`` / ``height * scaleY`` its
size (the stroke is drawn around that outline and not counted), as in the canvas package's own
``CanvasResult.boxes``. A box the user did not touch comes back with exactly its stored
coordinates (Fabric rounds what it sends to 4 decimals; :func:`read_drawing` recognises the
box and keeps the original numbers), so opening and saving an image never moves a box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cowdemo.detections import Detections, box_iou

Box = tuple[str, list[float]]

#: A Fabric rectangle read back within this many canvas pixels of one the page drew is that
#: box, untouched (Fabric sends 4 decimals).
SAME_RECT_CANVAS_PX = 1e-3
#: New or moved boxes are stored rounded to this many decimals of an image pixel.
DECIMALS = 3
#: Display sizes the page offers: the canvas fits inside (width, height) screen pixels.
CANVAS_SIZES: dict[str, tuple[int, int]] = {
    "Small": (640, 480),
    "Medium": (800, 600),
    "Large": (1024, 768),
    "X-large": (1280, 960),
}
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#9a6324", "#800000", "#000075")
STROKE_WIDTH = 2
LABEL_FONT_SIZE = 14
RECT_TYPES = {"labeledrect", "rect"}
_ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}


@dataclass(frozen=True)
class CanvasGeometry:
    """How an image maps onto the canvas: per-axis scales ``canvas / image``."""

    image_width: int
    image_height: int
    canvas_width: int
    canvas_height: int

    def __post_init__(self) -> None:
        for name in ("image_width", "image_height", "canvas_width", "canvas_height"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CanvasGeometry.{name} must be at least 1")

    @classmethod
    def fit(cls, image_width: int, image_height: int, max_width: int, max_height: int,
            max_upscale: float = 4.0) -> CanvasGeometry:
        """The largest canvas inside ``max_width`` x ``max_height`` that keeps the image's
        aspect (to the nearest pixel), enlarging small images at most ``max_upscale`` times."""
        scale = min(max_width / image_width, max_height / image_height, max_upscale)
        return cls(image_width, image_height, max(1, round(image_width * scale)),
                   max(1, round(image_height * scale)))

    @property
    def scale_x(self) -> float:
        return self.canvas_width / self.image_width

    @property
    def scale_y(self) -> float:
        return self.canvas_height / self.image_height

    def to_canvas(self, xyxy: Sequence[float]) -> dict[str, float]:
        """An image-pixel box as a canvas rectangle (left, top, width, height)."""
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        cw, ch, iw, ih = self.canvas_width, self.canvas_height, self.image_width, self.image_height
        # multiply first, divide last: whole pixels on both sides map exactly (x = W -> cw)
        return {
            "left": x1 * cw / iw,
            "top": y1 * ch / ih,
            "width": (x2 - x1) * cw / iw,
            "height": (y2 - y1) * ch / ih,
        }

    def to_image(self, left: float, top: float, width: float, height: float) -> list[float]:
        """A canvas rectangle as an image-pixel box [x1, y1, x2, y2] (not clipped)."""
        cw, ch, iw, ih = self.canvas_width, self.canvas_height, self.image_width, self.image_height
        return [left * iw / cw, top * ih / ch, (left + width) * iw / cw, (top + height) * ih / ch]


def class_color(class_name: str, classes: Sequence[str]) -> str:
    """A stable colour per class (its position in the dataset's class list)."""
    index = list(classes).index(class_name) if class_name in classes else len(classes)
    return PALETTE[index % len(PALETTE)]


def fill_color(stroke: str, alpha: float = 0.12) -> str:
    red, green, blue = (int(stroke[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def initial_drawing(boxes: Sequence[Box], geometry: CanvasGeometry,
                    classes: Sequence[str]) -> dict[str, Any]:
    """The canvas's ``initial_drawing``: one labelled rectangle per box, in canvas pixels (the
    same objects the canvas's own ``boxes_to_drawing`` makes, coloured per class)."""
    objects = []
    for class_name, xyxy in boxes:
        stroke = class_color(class_name, classes)
        objects.append({
            "type": "LabeledRect",
            "label": class_name,
            **geometry.to_canvas(xyxy),
            "originX": "left",
            "originY": "top",
            "scaleX": 1,
            "scaleY": 1,
            "angle": 0,
            "stroke": stroke,
            "strokeWidth": STROKE_WIDTH,
            "fill": fill_color(stroke),
            "fontSize": LABEL_FONT_SIZE,
            "lockRotation": True,
            "strokeUniform": True,
        })
    return {"objects": objects}


@dataclass
class DrawingBoxes:
    """What the canvas holds, in image pixels: ``boxes`` to store, and ``problems`` (one line
    each) that stop it being stored (an unknown class label)."""

    boxes: list[Box] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def rect_extent(obj: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """The axis-aligned extent (left, top, width, height) of a Fabric rectangle in canvas
    pixels, whatever its origin, scale and rotation; None for a malformed object."""
    try:
        left, top = float(obj.get("left", 0)), float(obj.get("top", 0))
        width = float(obj.get("width", 0)) * abs(float(obj.get("scaleX", 1)))
        height = float(obj.get("height", 0)) * abs(float(obj.get("scaleY", 1)))
        angle = math.radians(float(obj.get("angle", 0) or 0))
        origin_x = _origin(obj.get("originX", "left"))
        origin_y = _origin(obj.get("originY", "top"))
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (left, top, width, height, angle)):
        return None
    if angle == 0:
        return left - origin_x * width, top - origin_y * height, width, height
    cos, sin = math.cos(angle), math.sin(angle)
    # (left, top) is the origin point; the centre is half the size away, rotated.
    dx, dy = (0.5 - origin_x) * width, (0.5 - origin_y) * height
    cx, cy = left + dx * cos - dy * sin, top + dx * sin + dy * cos
    xs, ys = [], []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        px, py = sx * width / 2, sy * height / 2
        xs.append(cx + px * cos - py * sin)
        ys.append(cy + px * sin + py * cos)
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def _origin(value: Any) -> float:
    if isinstance(value, str):
        return _ORIGIN[value]
    return float(value)


def read_drawing(json_data: dict[str, Any] | None, geometry: CanvasGeometry,
                 classes: Sequence[str], default_class: str,
                 baseline: Sequence[Box] = ()) -> DrawingBoxes:
    """The canvas's boxes in image pixels, clipped to the image. Rectangles that match a box
    of ``baseline`` (what the canvas started from) keep its exact coordinates; others are
    rounded to :data:`DECIMALS`. An empty label means ``default_class``; a label that is not
    one of ``classes`` is a problem."""
    out = DrawingBoxes()
    unused = [(cls, list(map(float, xyxy)), geometry.to_canvas(xyxy)) for cls, xyxy in baseline]
    objects = (json_data or {}).get("objects") or []
    ignored = 0
    for number, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict) or str(obj.get("type", "")).lower() not in RECT_TYPES:
            ignored += 1
            continue
        extent = rect_extent(obj)
        if extent is None:
            ignored += 1
            continue
        label = str(obj.get("label") or "").strip() or default_class
        if label not in classes:
            out.problems.append(
                f"Box {number} is labelled '{label}', which is not a class of this dataset "
                f"({', '.join(classes)}): fix the label on the canvas or add the class."
            )
            continue
        match = _match_baseline(label, extent, unused)
        if match is not None:
            out.boxes.append((label, match))
            continue
        xyxy = geometry.to_image(*extent)
        x1, y1 = max(xyxy[0], 0.0), max(xyxy[1], 0.0)
        x2 = min(xyxy[2], float(geometry.image_width))
        y2 = min(xyxy[3], float(geometry.image_height))
        x1, y1, x2, y2 = (round(v, DECIMALS) for v in (x1, y1, x2, y2))
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            out.notes.append(f"Box {number} lies outside the image and was left out.")
            continue
        out.boxes.append((label, [x1, y1, x2, y2]))
    if ignored:
        out.notes.append(f"{ignored} shape(s) that are not boxes were ignored.")
    return out


def _match_baseline(label: str, extent: tuple[float, float, float, float],
                    unused: list[tuple[str, list[float], dict[str, float]]]) -> list[float] | None:
    left, top, width, height = extent
    for index, (cls, xyxy, rect) in enumerate(unused):
        if cls == label and all(
            abs(a - b) <= SAME_RECT_CANVAS_PX
            for a, b in ((left, rect["left"]), (top, rect["top"]), (width, rect["width"]),
                         (height, rect["height"]))
        ):
            del unused[index]
            return xyxy
    return None


def same_boxes(a: Sequence[Box], b: Sequence[Box], tolerance: float = 1e-9) -> bool:
    """Whether two box lists are equal (order matters; coordinates within ``tolerance``)."""
    return len(a) == len(b) and all(
        ca == cb and all(abs(float(u) - float(v)) <= tolerance for u, v in zip(xa, xb))
        for (ca, xa), (cb, xb) in zip(a, b)
    )


def progress_text(done: int, total: int) -> str:
    return f"{done} of {total} images done"


# --- pre-annotation -------------------------------------------------------------------------
def model_boxes(detections: Detections, score_threshold: float,
                classes_shown: Sequence[str] | None, label_as: str | None,
                dataset_classes: Sequence[str]) -> tuple[list[Box], Detections, list[str]]:
    """A model's boxes to start from: those scoring >= ``score_threshold`` in the class filter
    (``None``: all), labelled ``label_as`` (``None``: their own class, which must be one of the
    dataset's). Returns (boxes, the boxes the class filter hid, problems)."""
    shown, hidden = detections.filter(score_threshold).split(classes_shown)
    boxes: list[Box] = []
    unknown = sorted({str(n) for n in shown.class_names} - set(dataset_classes))
    if label_as is None and unknown:
        return [], hidden, [
            f"The model's class {', '.join(repr(u) for u in unknown)} is not a class of this "
            f"dataset ({', '.join(dataset_classes)}): label the boxes as one of its classes, or "
            "add the class."
        ]
    for name, xyxy in zip(shown.class_names, shown.xyxy):
        boxes.append((label_as or str(name), [round(float(v), DECIMALS) for v in xyxy]))
    return boxes, hidden, []


def merge_boxes(existing: Sequence[Box], proposed: Sequence[Box],
                iou_threshold: float = 0.5) -> tuple[list[Box], int]:
    """``existing`` plus the ``proposed`` boxes that do not overlap one of them (IoU below
    ``iou_threshold``): pre-annotation never removes or moves what someone drew. Returns the
    boxes and how many were added."""
    merged = [(c, list(x)) for c, x in existing]
    added = 0
    for class_name, xyxy in proposed:
        if merged:
            ious = box_iou(np.array([xyxy]), np.array([x for _, x in merged]))[0]
            if ious.max() >= iou_threshold:
                continue
        merged.append((class_name, list(xyxy)))
        added += 1
    return merged, added


def clip_to_image(boxes: Sequence[Box], width: int, height: int) -> list[Box]:
    """Boxes clipped to the image; those left with no area are dropped."""
    out = []
    for class_name, (x1, y1, x2, y2) in boxes:
        x1, y1 = max(float(x1), 0.0), max(float(y1), 0.0)
        x2, y2 = min(float(x2), float(width)), min(float(y2), float(height))
        if x2 > x1 and y2 > y1:
            out.append((class_name, [x1, y1, x2, y2]))
    return out


# --- the box table ----------------------------------------------------------------------------
TABLE_COLUMNS = ("class", "x1", "y1", "x2", "y2")


def boxes_table(boxes: Sequence[Box]) -> list[dict[str, Any]]:
    """Rows for the page's box table (class, x1, y1, x2, y2, width, height)."""
    return [
        {"class": c, "x1": x[0], "y1": x[1], "x2": x[2], "y2": x[3],
         "width": x[2] - x[0], "height": x[3] - x[1]}
        for c, x in boxes
    ]


def boxes_from_table(rows: Sequence[dict[str, Any]], classes: Sequence[str]) -> tuple[
        list[Box], list[str]]:
    """Boxes from the edited table rows, and one problem line per bad row."""
    boxes: list[Box] = []
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        class_name = row.get("class")
        if class_name not in classes:
            problems.append(f"Row {number}: choose a class ({', '.join(classes)}).")
            continue
        try:
            xyxy = [float(row[k]) for k in TABLE_COLUMNS[1:]]
        except (TypeError, ValueError, KeyError):
            problems.append(f"Row {number}: x1, y1, x2 and y2 must be numbers.")
            continue
        if not all(math.isfinite(v) for v in xyxy):
            problems.append(f"Row {number}: x1, y1, x2 and y2 must be numbers.")
            continue
        if xyxy[2] <= xyxy[0] or xyxy[3] <= xyxy[1]:
            problems.append(f"Row {number}: x2 must be above x1 and y2 above y1.")
            continue
        boxes.append((str(class_name), xyxy))
    return boxes, problems


def box_lines(boxes: Sequence[Box]) -> str:
    """Boxes as text, one per line: ``1. cow  [x1, y1, x2, y2] = [10.0, 20.0, 110.0, 90.0]``."""
    return "\n".join(
        f"{i}. {c}  [x1, y1, x2, y2] = [{', '.join(f'{v:.1f}' for v in x)}]"
        for i, (c, x) in enumerate(boxes, start=1)
    )
