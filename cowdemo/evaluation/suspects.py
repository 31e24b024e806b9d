"""Likely label errors: where the models and the ground truth disagree so clearly that a person
should look (the idea of FiftyOne Brain's "mistakenness", kept to two plain rules)::

    suspects = find_suspects(dataset.coco, {"frcnn": results_a, "tuned": results_b})
    suspects[0].kind, suspects[0].file_name, suspects[0].box   # "missing", "a.jpg", (x, y, w, h)

- **missing**: a detection scoring at least ``min_score`` whose best IoU with the ground truth
  boxes of its class on its image is below ``iou``: a box someone forgot to draw (or a confident
  false detection). The same place found by several models is one suspect naming them all.
- **stray**: a ground truth box that no detection of any model, at any score and of its class,
  overlaps with IoU >= 0.1: a box drawn by mistake (or an object every model misses).

``rank`` orders the list, most suspicious first: for a missing box its best score times the
share of the models that found it; for a stray box ``1 - `` the best IoU any detection of its
class reaches (so between 0.9 and 1: no model sees anything there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cowdemo.detections import box_iou

#: A ground truth box overlapped by a detection of its class at least this much is not stray.
STRAY_IOU = 0.1


@dataclass(frozen=True)
class Suspect:
    """One likely label error (see the module docstring)."""

    kind: str  # "missing" | "stray"
    image_id: int
    file_name: str
    box: tuple[float, float, float, float]  # COCO x, y, w, h in pixels
    category: str  # class name
    score: float | None  # best detection score ("missing"); None for "stray"
    models: tuple[str, ...]  # the models that saw it ("missing") / all models given ("stray")
    rank: float  # higher = more suspicious; the list is sorted by rank, descending


def _xyxy(bbox: Any) -> list[float]:
    x, y, w, h = (float(v) for v in bbox)
    return [x, y, x + w, y + h]


def find_suspects(ground_truth: dict, results: Mapping[str, list[dict]], *,
                  min_score: float = 0.7, iou: float = 0.5) -> list[Suspect]:
    """ground_truth: a COCO dict; results: model name -> COCO results list. Only images in the
    ground truth count. "missing": a detection with score >= min_score whose best IoU with any
    same-class ground truth box of its image is < iou. "stray": a ground truth box that no
    detection of any model (any score, same class) overlaps with IoU >= 0.1."""
    images = {int(im["id"]): im for im in ground_truth.get("images", [])}
    names = {int(c["id"]): str(c["name"]) for c in ground_truth.get("categories", [])}
    truth: dict[tuple[int, int], list[dict]] = {}
    for ann in ground_truth.get("annotations", []):
        if int(ann["image_id"]) in images:
            truth.setdefault((int(ann["image_id"]), int(ann["category_id"])), []).append(ann)
    found: dict[tuple[int, int], list[tuple[str, float, list[float]]]] = {}
    for model, rows in results.items():
        for row in rows:
            image_id = int(row["image_id"])
            if image_id in images:
                found.setdefault((image_id, int(row["category_id"])), []).append(
                    (model, float(row["score"]), _xyxy(row["bbox"])))
    all_models = tuple(results)
    out: list[Suspect] = []

    def suspect(kind, key, xyxy, score, models, rank) -> Suspect:
        image_id, category_id = key
        x1, y1, x2, y2 = xyxy
        category = names.get(category_id, f"category {category_id}")
        return Suspect(kind, image_id, str(images[image_id].get("file_name", "")),
                       (x1, y1, x2 - x1, y2 - y1), category, score, models, rank)

    for key, detections in found.items():
        gt_boxes = np.asarray([_xyxy(a["bbox"]) for a in truth.get(key, [])]).reshape(-1, 4)
        confident = sorted((d for d in detections if d[1] >= min_score), key=lambda d: -d[1])
        clusters: list[tuple[list[float], float, set[str]]] = []  # box, best score, models
        for model, score, xyxy in confident:
            if len(gt_boxes) and box_iou(np.asarray([xyxy]), gt_boxes).max() >= iou:
                continue
            same = next((c for c in clusters
                         if box_iou(np.asarray([xyxy]), np.asarray([c[0]]))[0, 0] >= iou), None)
            if same is None:
                clusters.append((xyxy, score, {model}))
            else:
                same[2].add(model)
        for xyxy, score, models in clusters:
            seen_by = tuple(m for m in all_models if m in models)
            out.append(suspect("missing", key, xyxy, score, seen_by,
                               score * len(seen_by) / len(all_models)))

    for key, anns in truth.items():
        boxes = np.asarray([d[2] for d in found.get(key, [])]).reshape(-1, 4)
        for ann in anns:
            if ann.get("iscrowd"):
                continue  # a crowd region is not one object a model should find
            xyxy = _xyxy(ann["bbox"])
            best = float(box_iou(np.asarray([xyxy]), boxes).max()) if len(boxes) else 0.0
            if best < STRAY_IOU:
                out.append(suspect("stray", key, xyxy, None, all_models, 1.0 - best))
    out.sort(key=lambda s: (-s.rank, s.image_id, s.kind, s.box))
    return out
