"""Label-error suspects: boxes in a dataset that look wrong because the models disagree with them.

Two kinds, after the label-error checks of hotcoco and FiftyOne's "mistakenness":

* ``"missing"``: a confident detection (score >= ``min_score``) whose best IoU with any ground-truth
  box of the same class in its image is < ``iou``: perhaps someone forgot to draw that box.
  Confident detections of several models on the same object (same image and class, IoU >= ``iou``
  between them) become one suspect that lists every model that saw it.
* ``"stray"``: a ground-truth box that no detection of any model (any score, same class) overlaps
  with IoU >= 0.1: perhaps a wrong, shifted or stray box.

    suspects = find_suspects(dataset.coco, {"frcnn": results_a, "fine-tuned": results_b})
    for s in suspects[:10]:
        print(s.kind, s.file_name, s.category, s.box, s.score, s.models)

``rank`` orders the list (higher = more suspicious, sorted descending):

* missing: best score x the share of the given models that saw it (0.9 from one of two models
  ranks as 0.45; 0.9 from both as 0.9);
* stray: 1 - the best IoU any same-class detection reaches (always > 0.9, since that IoU is
  < 0.1): a box nothing comes near outranks everything but the most confident, agreed misses.

Crowd ground-truth boxes are never stray (COCO never counts them as misses), and a detection
inside a crowd box is not missing (its IoU with the crowd box is taken over the detection's area,
as COCO does). Detections of classes the ground truth lacks, or of images it lacks, are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cowdemo.errors import CowdemoError

STRAY_IOU = 0.1


@dataclass(frozen=True)
class Suspect:
    """One box that may be a labelling mistake (see the module docstring)."""

    kind: str  # "missing" | "stray"
    image_id: int
    file_name: str
    box: tuple[float, float, float, float]  # COCO x, y, w, h in pixels
    category: str  # class name
    score: float | None  # best detection score ("missing"); None for "stray"
    models: tuple[str, ...]  # the models that saw it ("missing") / all models given ("stray")
    rank: float  # higher = more suspicious

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        out = asdict(self)
        out["box"] = list(self.box)
        out["models"] = list(self.models)
        return out


def box_iou(a: np.ndarray, b: np.ndarray, crowd: np.ndarray | None = None) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of COCO x, y, w, h boxes; where ``crowd[j]``, column j is the
    intersection over the area of ``a``'s box (COCO's rule for crowd regions)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] * a[:, 3])[:, None]
    union = area_a + (b[:, 2] * b[:, 3])[None] - inter
    if crowd is not None:
        union = np.where(np.asarray(crowd, bool)[None], area_a, union)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def find_suspects(
    ground_truth: dict,
    results: Mapping[str, list[dict]],
    *,
    min_score: float = 0.7,
    iou: float = 0.5,
) -> list[Suspect]:
    """Label-error suspects of ``ground_truth`` given the models' ``results``, most suspicious
    first.

    ground_truth: a COCO dict; results: model name -> COCO results list (category ids of the
    ground truth). Only images in the ground truth count. "missing": a detection with score >=
    min_score whose best IoU with any same-class ground truth box of its image is < iou. "stray":
    a ground truth box that no detection of any model (any score, same class) overlaps with
    IoU >= 0.1.

    Raises:
        CowdemoError: a ground truth or results entry without the keys COCO requires.
    """
    try:
        images = {
            int(im["id"]): str(im.get("file_name", im["id"])) for im in ground_truth["images"]
        }
        names = {int(c["id"]): str(c.get("name", c["id"])) for c in ground_truth["categories"]}
        truth: dict[tuple[int, int], list[tuple[list[float], bool]]] = {}
        for a in ground_truth.get("annotations", []):
            key = (int(a["image_id"]), int(a["category_id"]))
            if key[0] in images and key[1] in names:
                truth.setdefault(key, []).append((list(map(float, a["bbox"])),
                                                  bool(a.get("iscrowd", 0))))
    except (KeyError, TypeError, ValueError) as exc:
        raise CowdemoError(f"The ground truth is not a COCO dict ({exc!r} missing or wrong): "
                           "it needs images, categories and annotations with bbox.") from None
    models = tuple(results)
    found: dict[tuple[int, int], list[tuple[list[float], float, str]]] = {}
    for model, rows in results.items():
        try:
            for r in rows:
                key = (int(r["image_id"]), int(r["category_id"]))
                if key[0] in images and key[1] in names:
                    found.setdefault(key, []).append((list(map(float, r["bbox"])),
                                                      float(r["score"]), model))
        except (KeyError, TypeError, ValueError) as exc:
            raise CowdemoError(f"The results of {model!r} are not a COCO results list ({exc!r} "
                               "missing or wrong): each entry needs image_id, category_id, bbox "
                               "and score.") from None

    suspects: list[Suspect] = []
    for key in sorted(set(truth) | set(found)):
        image_id, category_id = key
        gt = truth.get(key, [])
        dets = found.get(key, [])
        g_box = np.array([b for b, _ in gt], np.float64).reshape(-1, 4)
        g_crowd = np.array([c for _, c in gt], bool)
        d_box = np.array([b for b, _, _ in dets], np.float64).reshape(-1, 4)
        d_score = np.array([s for _, s, _ in dets], np.float64)
        overlap = box_iou(d_box, g_box, g_crowd)  # (detections, ground truth)
        common = {"image_id": image_id, "file_name": images[image_id],
                  "category": names[category_id]}
        # Stray: no detection of any model comes to IoU 0.1 (crowd boxes never count).
        best_gt = overlap.max(axis=0) if len(dets) else np.zeros(len(gt))
        for j in np.flatnonzero((best_gt < STRAY_IOU) & ~g_crowd):
            suspects.append(Suspect("stray", box=tuple(g_box[j].tolist()), score=None,
                                    models=models, rank=float(1.0 - best_gt[j]), **common))
        # Missing: confident detections far from every same-class box, grouped across models.
        best_det = overlap.max(axis=1) if len(gt) else np.zeros(len(dets))
        lonely = np.flatnonzero((d_score >= min_score) & (best_det < iou))
        lonely = lonely[np.argsort(-d_score[lonely], kind="stable")]
        clusters: list[tuple[int, set[str]]] = []  # (leading detection, models that saw it)
        for i in lonely.tolist():
            for lead, seen in clusters:
                if box_iou(d_box[i], d_box[lead])[0, 0] >= iou:
                    seen.add(dets[i][2])
                    break
            else:
                clusters.append((i, {dets[i][2]}))
        for lead, seen in clusters:
            score = float(d_score[lead])
            suspects.append(Suspect(
                "missing", box=tuple(d_box[lead].tolist()), score=score,
                models=tuple(m for m in models if m in seen),
                rank=score * len(seen) / max(len(models), 1), **common,
            ))  # fmt: skip
    suspects.sort(key=lambda s: (-s.rank, s.image_id, s.kind, s.box))
    return suspects


def suspects_table(suspects: list[Suspect]) -> list[dict[str, Any]]:
    """The suspects as plain dicts (one per row) for tables, JSON and reports."""
    return [s.to_dict() for s in suspects]
