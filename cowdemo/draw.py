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
) -> np.ndarray:
    """A copy of the RGB ``image`` with each box outlined and labelled "cow 0.92" (or "#7 cow")."""
    canvas = np.ascontiguousarray(image.copy())
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
