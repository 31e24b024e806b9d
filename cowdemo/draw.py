"""Drawing boxes with class + score labels, one stable colour per class (and per track id)."""

from __future__ import annotations

import colorsys
import hashlib

import cv2
import numpy as np

from cowdemo.detections import Detections

_FIXED = {"cow": (230, 57, 70), "dog": (29, 120, 230), "person": (255, 183, 3)}


def color_for(key: str) -> tuple[int, int, int]:
    """An RGB colour that is the same for the same class name (or track id) in every run."""
    if key in _FIXED:
        return _FIXED[key]
    hue = int(hashlib.md5(key.encode()).hexdigest()[:6], 16) / 0xFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(
    image: np.ndarray,
    detections: Detections,
    show_scores: bool = True,
    thickness: int | None = None,
    copy: bool = True,
) -> np.ndarray:
    """A copy of the RGB ``image`` with each box outlined and labelled "cow 0.92" (or "#7 cow");
    with ``copy=False`` (a contiguous canvas the caller owns) drawn on ``image`` itself."""
    canvas = np.ascontiguousarray(image.copy()) if copy else image
    h, w = canvas.shape[:2]
    thickness = thickness or max(2, round(min(h, w) / 250))
    font_scale = max(0.45, min(h, w) / 900)
    for i in range(len(detections)):
        x1, y1, x2, y2 = (round(float(v)) for v in detections.xyxy[i])
        name = str(detections.class_names[i])
        track = None if detections.track_ids is None else int(detections.track_ids[i])
        color = color_for(name if track is None else f"track-{track}")
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        label = name if track is None else f"#{track} {name}"
        if show_scores:
            label += f" {detections.scores[i]:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 4, top + th + base + 2), color, -1)
        cv2.putText(
            canvas,
            label,
            (x1 + 2, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return canvas


#: Colours of evaluation outcomes (RGB): true positive, false positive, missed ground truth.
TP_COLOR, FP_COLOR, FN_COLOR = (46, 160, 67), (220, 38, 38), (255, 140, 0)


def draw_outcomes(
    image: np.ndarray,
    gt_xyxy: np.ndarray,
    detections: Detections,
    outcome: dict,
) -> np.ndarray:
    """Evaluation outcomes on one image: TP detections green, FP red, missed ground truth
    (FN) orange dashed-looking thin boxes. ``outcome`` is one ``EvalResult.per_image`` entry."""
    canvas = np.ascontiguousarray(image.copy())
    thickness = max(2, round(min(canvas.shape[:2]) / 250))

    def box(xyxy, color, label, width):
        x1, y1, x2, y2 = (round(float(v)) for v in xyxy)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, width, cv2.LINE_AA)
        cv2.putText(canvas, label, (x1 + 2, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    color, 1, cv2.LINE_AA)

    for gt_index in outcome.get("fn", []):
        box(gt_xyxy[gt_index], FN_COLOR, "missed", thickness)
    for det_index in outcome.get("fp", []):
        d = detections[int(det_index)]
        box(d.xyxy[0], FP_COLOR, f"FP {d.class_names[0]} {d.scores[0]:.2f}", thickness)
    for det_index, _gt_index, iou in outcome.get("tp", []):
        d = detections[int(det_index)]
        box(d.xyxy[0], TP_COLOR, f"TP {d.scores[0]:.2f} IoU {iou:.2f}", thickness)
    return canvas
