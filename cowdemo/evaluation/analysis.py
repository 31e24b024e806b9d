"""Why a model misses (TIDE error types) and whether its scores mean what they say (calibration).

Both read one COCO evaluation (IoU 0.5, all sizes, 100 detections per image and class) and give
plain data (``to_dict()``) for pages, the CLI and reports::

    errors = tide_errors(dataset.coco, results)       # results: COCO results list
    errors.delta_ap["Loc"], errors.counts["Miss"], errors.per_image[7]["Bkg"]
    cal = calibration(dataset.coco, results)
    cal.ece, cal.bins

The definitions are hotcoco 1.3's (``COCOeval.tide_errors`` / ``COCOeval.calibration``), which
follow tidecv (Bolya et al., "TIDE: A General Toolbox for Identifying Object Detection Errors",
ECCV 2020). Every false positive at IoU ``pos_thr`` gets the first type that applies:

1. ``Loc``: its best IoU with a same-class box is within [bg_thr, pos_thr] (right class, poor box);
2. ``Cls``: its best IoU with a box of another class is >= pos_thr (right place, wrong class);
3. ``Dupe``: a same-class box it overlaps at >= pos_thr is already taken by a higher score;
4. ``Bkg``: it overlaps no box of any other class by more than bg_thr (nothing there);
5. ``Both``: otherwise (wrong class and poor box).

``Miss``: a ground-truth box no detection matched and no Loc / Cls detection points at. The
``delta_ap`` of a type is how much AP50 (mean over classes with ground truth) rises when every
error of that type is fixed: Loc / Cls detections become true positives, Dupe / Bkg / Both
detections are removed, missed boxes are found at the top of the ranking. ``FP`` / ``FN`` are
tidecv's two oracles: no false positive at all, and every missed box dropped from the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cowdemo.detections import Detections
from cowdemo.evaluation.detection import (
    IOU_THRESHOLDS,
    MAX_DETS,
    RECALL_THRESHOLDS,
    EvalResult,
    _parse_ground_truth,
    _parse_results,
    evaluate_coco,
    load_coco_json,
)
from cowdemo.evaluation.suspects import box_iou

ERROR_TYPES = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")
FP_TYPES = ERROR_TYPES[:5]
ERROR_LABELS = {
    "Cls": "wrong class",
    "Loc": "poor box (right class)",
    "Both": "wrong class and poor box",
    "Dupe": "duplicate",
    "Bkg": "background (nothing there)",
    "Miss": "missed",
}

#: chart-axis names
ERROR_SHORT_LABELS = {"Cls": "wrong class", "Loc": "poor box", "Both": "class + box",
                      "Dupe": "duplicate", "Bkg": "background", "Miss": "missed"}  # fmt: skip


@dataclass
class TideErrors:
    """TIDE error types of one model (see the module docstring).

    Attributes:
        delta_ap: type -> AP50 gained by fixing every error of that type (``Cls``, ``Loc``,
            ``Both``, ``Dupe``, ``Bkg``, ``Miss``, and the oracles ``FP``, ``FN``).
        counts: type -> number of errors (detections for the five false-positive types, ground-
            truth boxes for ``Miss``).
        ap_base: AP at ``pos_thr`` (mean over classes with ground truth) before any fix.
        per_image: image id -> type -> indices of that image's detections (ground-truth boxes
            for ``Miss``), in the order given, as in ``EvalResult.per_image``.
    """

    delta_ap: dict[str, float]
    counts: dict[str, int]
    ap_base: float
    pos_thr: float = 0.5
    bg_thr: float = 0.1
    per_image: dict[Any, dict[str, list[int]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "delta_ap": dict(self.delta_ap), "counts": dict(self.counts),
            "ap_base": self.ap_base, "pos_thr": self.pos_thr, "bg_thr": self.bg_thr,
            "per_image": [{"image_id": k, **v} for k, v in self.per_image.items()],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TideErrors:
        per_image = {
            e["image_id"]: {t: list(e.get(t, [])) for t in ERROR_TYPES} for e in data["per_image"]
        }
        return cls(dict(data["delta_ap"]), {k: int(v) for k, v in data["counts"].items()},
                   float(data["ap_base"]), float(data["pos_thr"]), float(data["bg_thr"]),
                   per_image)  # fmt: skip


@dataclass
class Calibration:
    """How well scores predict correctness: a detection is correct when it is a true positive
    at ``iou_threshold`` (crowd-matched ones left out, as COCO ignores them).

    Attributes:
        ece: expected calibration error, sum over bins of count / total x |accuracy - confidence|.
        mce: the largest per-bin |accuracy - confidence|.
        bins: one dict per equal-width score bin: bin_lower, bin_upper, avg_confidence,
            avg_accuracy, count (0 and averages 0 for an empty bin).
        per_category: class name -> ECE of its detections alone.
    """

    ece: float
    mce: float
    bins: list[dict[str, float]]
    per_category: dict[str, float]
    iou_threshold: float
    n_bins: int
    num_detections: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ece": self.ece, "mce": self.mce, "bins": [dict(b) for b in self.bins],
            "per_category": dict(self.per_category), "iou_threshold": self.iou_threshold,
            "n_bins": self.n_bins, "num_detections": self.num_detections,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


# --- shared: which detections a COCO evaluation scored, and how --------------------------------
@dataclass
class _Scored:
    image_ids: list
    cat_names: list[str]
    truth: Any
    found: Any
    in_cell: np.ndarray  # scored (known class, within 100 per image and class)
    tp: np.ndarray
    fp: np.ndarray
    ignored: np.ndarray  # in a cell but matched to a crowd box
    det_gt: np.ndarray  # index into truth of the matched box, -1
    gt_matched: np.ndarray  # per truth box
    gt_missed: np.ndarray  # per truth box: non-crowd and unmatched
    num_gt: np.ndarray  # per category, non-crowd boxes


def _scored(ground_truth: Any, results: Any, result: EvalResult | None) -> _Scored:
    gt = load_coco_json(ground_truth, "COCO ground truth", boxes_only="ground truth")
    res = load_coco_json(results, "COCO results", boxes_only="results")
    image_ids, _, cat_names, truth = _parse_ground_truth(gt)
    found = _parse_results(res, image_ids, _cat_ids(gt), cat_names, None)
    if result is None:
        result = evaluate_coco(gt, res, score_thresholds=[0.0])
    n = len(found.image)
    # rank within (image, category) by score, stable: pycocotools keeps the first 100
    order = np.lexsort((np.arange(n), -found.score, found.category, found.image))
    key = found.image[order] * (len(cat_names) + 1) + found.category[order]
    start = np.ones(n, bool)
    start[1:] = key[1:] != key[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - first
    in_cell = (found.category >= 0) & (rank < MAX_DETS[-1])

    det_index = {(int(i), int(loc)): d for d, (i, loc) in enumerate(zip(found.image, found.local))}
    gt_index = {(int(i), int(loc)): g for g, (i, loc) in enumerate(zip(truth.image, truth.local))}
    tp = np.zeros(n, bool)
    fp = np.zeros(n, bool)
    det_gt = np.full(n, -1, np.int64)
    gt_missed = np.zeros(len(truth.image), bool)
    for i, image_id in enumerate(image_ids):
        entry = result.per_image.get(image_id)
        if entry is None:
            continue
        for d_local, g_local, _ in entry["tp"]:
            d = det_index[(i, int(d_local))]
            tp[d] = True
            det_gt[d] = gt_index[(i, int(g_local))]
        for d_local in entry["fp"]:
            fp[det_index[(i, int(d_local))]] = True
        for g_local in entry["fn"]:
            gt_missed[gt_index[(i, int(g_local))]] = True
    gt_matched = np.zeros(len(truth.image), bool)
    gt_matched[det_gt[tp]] = True
    ignored = in_cell & ~tp & ~fp
    num_gt = np.bincount(truth.category[~truth.iscrowd], minlength=len(cat_names))
    return _Scored(image_ids, cat_names, truth, found, in_cell, tp, fp, ignored, det_gt,
                   gt_matched, gt_missed, num_gt)  # fmt: skip


def _cat_ids(gt: Mapping[str, Any]) -> list:
    return sorted({c["id"] for c in gt.get("categories", [])})


def _ap(matched: np.ndarray, ignored: np.ndarray, num_gt: int) -> float:
    """101-point interpolated AP of detections already in ranking order (pycocotools' way;
    an ignored detection keeps its rank but counts as neither kind); 0 without ground truth."""
    if num_gt <= 0 or len(matched) == 0:
        return 0.0
    tp = np.cumsum(matched & ~ignored).astype(np.float64)
    fp = np.cumsum(~matched & ~ignored).astype(np.float64)
    recall = tp / num_gt
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, RECALL_THRESHOLDS, "left")
    reached = precision[at[at < len(recall)]]
    total = float(np.cumsum(reached)[-1]) if len(reached) else 0.0  # summed in order
    return total / len(RECALL_THRESHOLDS)


def _ranked(found: Any, d: np.ndarray) -> np.ndarray:
    """Detections ``d`` in COCO's ranking: score descending, then image, then given order."""
    return d[np.lexsort((found.local[d], found.image[d], -found.score[d]))]


def _mean_in_order(values: list[float]) -> float:
    return float(np.cumsum(values)[-1]) / len(values) if values else 0.0


# --- TIDE --------------------------------------------------------------------------------------
def tide_errors(
    ground_truth: Any,
    results: Any,
    *,
    result: EvalResult | None = None,
    pos_thr: float = 0.5,
    bg_thr: float = 0.1,
) -> TideErrors:
    """TIDE error types of ``results`` (a COCO results list in the ground truth's category ids)
    against ``ground_truth`` (a COCO dict); both may be paths or JSON text. ``result`` is
    ``evaluate_coco(ground_truth, results)`` when already computed. Equal to hotcoco's
    ``COCOeval.tide_errors(pos_thr, bg_thr)`` (matching at IoU 0.5; ``pos_thr`` classifies)."""
    if abs(pos_thr - IOU_THRESHOLDS[0]) > 1e-9:
        # hotcoco snaps pos_thr to the nearest IoU threshold for matching; ours matches at 0.5.
        raise ValueError("tide_errors matches at IoU 0.5; pos_thr must be 0.5")
    s = _scored(ground_truth, results, result)
    truth, found = s.truth, s.found
    n_det = len(found.image)
    fp_type = np.full(n_det, -1, np.int64)
    fp_target = np.full(n_det, -1, np.int64)
    covered = np.zeros(len(truth.image), bool)
    by_image_gt: dict[int, np.ndarray] = {}
    order = np.argsort(truth.image, kind="stable")
    bounds = np.searchsorted(truth.image[order], np.arange(len(s.image_ids) + 1))
    for i in range(len(s.image_ids)):
        by_image_gt[i] = order[bounds[i]:bounds[i + 1]]
    for d in np.flatnonzero(s.fp).tolist():
        g = by_image_gt[int(found.image[d])]
        same = g[truth.category[g] == found.category[d]]
        # hotcoco walks a cell's boxes in pycocotools' order: non-crowd first
        same = same[np.argsort(truth.iscrowd[same], kind="stable")]
        iou_same = box_iou(found.xywh[d], truth.xywh[same], truth.iscrowd[same])[0]
        max_same = float(iou_same.max()) if len(same) and iou_same.max() > 0 else 0.0
        arg_same = int(same[np.argmax(iou_same)]) if max_same > 0 else -1
        best_taken = bool(np.any((iou_same >= pos_thr) & s.gt_matched[same]))
        other = g[(truth.category[g] != found.category[d]) & ~truth.iscrowd[g]]
        iou_other = box_iou(found.xywh[d], truth.xywh[other])[0]
        max_cross = float(iou_other.max()) if len(other) and iou_other.max() > 0 else 0.0
        arg_cross = int(other[np.argmax(iou_other)]) if max_cross > 0 else -1
        if bg_thr <= max_same <= pos_thr:
            kind, target = 1, arg_same  # Loc
        elif max_cross >= pos_thr:
            kind, target = 0, arg_cross  # Cls
        elif best_taken:
            kind, target = 3, -1  # Dupe
        elif max_cross <= bg_thr:
            kind, target = 4, -1  # Bkg
        else:
            kind, target = 2, -1  # Both
        fp_type[d] = kind
        fp_target[d] = target
        if target >= 0:
            covered[target] = True
    miss = s.gt_missed & ~covered
    # Fixing a Cls error moves the detection to its box's class (tidecv): it leaves its own
    # class's ranking and joins the other's as a true positive.
    # tidecv's BestGTMatch: of all Loc and Cls errors pointing at one free box, only the
    # highest-scoring (first in COCO's order on ties) becomes a true positive when fixed; the
    # others, and those pointing at an already matched box or a crowd region, are removed.
    fixes_tp = np.zeros(n_det, bool)
    candidates = np.flatnonzero((fp_type <= 1) & (fp_type >= 0) & (fp_target >= 0))
    target = fp_target[candidates]
    candidates = candidates[~s.gt_matched[target] & ~truth.iscrowd[target]]  # crowd: never a TP
    candidates = candidates[np.lexsort((found.local[candidates], found.category[candidates],
                                        -found.score[candidates], fp_target[candidates]))]
    first = np.ones(len(candidates), bool)
    first[1:] = fp_target[candidates][1:] != fp_target[candidates][:-1]
    fixes_tp[candidates[first]] = True
    target_cat = np.full(n_det, -1, np.int64)
    is_cls = fp_type == 0
    moved_cls = is_cls & fixes_tp
    target_cat[moved_cls] = truth.category[fp_target[moved_cls]]

    deltas: dict[str, list[float]] = {k: [] for k in (*ERROR_TYPES, "FP", "FN")}
    base_all: list[float] = []
    for k in range(len(s.cat_names)):
        n_gt = int(s.num_gt[k])
        if n_gt == 0:
            continue
        own = s.in_cell & (found.category == k)
        d = _ranked(found, np.flatnonzero(own))
        matched, ignored, kinds = s.tp[d], s.ignored[d], fp_type[d]
        base = _ap(matched, ignored, n_gt)
        base_all.append(base)
        for t, name in enumerate(FP_TYPES):
            hit = kinds == t
            if name == "Cls":
                moved = np.flatnonzero((own & ~is_cls) | (target_cat == k))
                # moved-in detections rank after this class's own ones of equal score
                moved = moved[np.lexsort((found.local[moved], found.image[moved],
                                          target_cat[moved] == k, -found.score[moved]))]
                fixed = _ap(s.tp[moved] | (target_cat[moved] == k), s.ignored[moved], n_gt)
            elif name == "Loc":
                fixed = _ap(matched | (hit & fixes_tp[d]), ignored | (hit & ~fixes_tp[d]), n_gt)
            else:
                fixed = _ap(matched, ignored | hit, n_gt)
            deltas[name].append(fixed - base)
        deltas["FP"].append(_ap(matched, ignored | (kinds >= 0), n_gt) - base)
        cat_gt = (truth.category == k) & ~truth.iscrowd
        n_fn = int(np.sum(s.gt_missed & cat_gt))
        deltas["FN"].append(_ap(matched, ignored, n_gt - n_fn) - base)
        # Fixing a miss takes the box out of the count (tidecv's MissedError).
        n_miss = int(np.sum(miss & cat_gt))
        deltas["Miss"].append(_ap(matched, ignored, n_gt - n_miss) - base if n_miss else 0.0)
    counts = {name: int(np.sum(fp_type == t)) for t, name in enumerate(FP_TYPES)}
    counts["Miss"] = int(miss.sum())

    per_image: dict[Any, dict[str, list[int]]] = {
        image_id: {t: [] for t in ERROR_TYPES} for image_id in s.image_ids
    }
    for d in np.flatnonzero(fp_type >= 0).tolist():
        per_image[s.image_ids[found.image[d]]][FP_TYPES[fp_type[d]]].append(int(found.local[d]))
    for g in np.flatnonzero(miss).tolist():
        per_image[s.image_ids[truth.image[g]]]["Miss"].append(int(truth.local[g]))
    for entry in per_image.values():
        for t in ERROR_TYPES:
            entry[t].sort()
    return TideErrors(
        delta_ap={k: _mean_in_order(v) for k, v in deltas.items()}, counts=counts,
        ap_base=_mean_in_order(base_all), pos_thr=pos_thr, bg_thr=bg_thr, per_image=per_image,
    )  # fmt: skip


# --- calibration -------------------------------------------------------------------------------
def _bins(score: np.ndarray, correct: np.ndarray, n_bins: int) -> list[dict[str, float]]:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.minimum((score * n_bins).astype(np.int64), n_bins - 1)
    out = []
    for b in range(n_bins):
        inside = which == b
        count = int(inside.sum())
        out.append({
            "bin_lower": float(edges[b]), "bin_upper": float(edges[b + 1]),
            "avg_confidence": float(score[inside].mean()) if count else 0.0,
            "avg_accuracy": float(correct[inside].mean()) if count else 0.0,
            "count": count,
        })  # fmt: skip
    return out


def _errors(bins: list[dict[str, float]]) -> tuple[float, float]:
    total = sum(b["count"] for b in bins)
    if total == 0:
        return 0.0, 0.0
    gaps = [abs(b["avg_accuracy"] - b["avg_confidence"]) for b in bins if b["count"]]
    ece = sum(b["count"] / total * abs(b["avg_accuracy"] - b["avg_confidence"]) for b in bins)
    return float(ece), float(max(gaps))


def calibration(
    ground_truth: Any,
    results: Any,
    *,
    result: EvalResult | None = None,
    n_bins: int = 10,
    iou_threshold: float = 0.5,
) -> Calibration:
    """Reliability bins and expected calibration error of ``results`` against ``ground_truth``
    (as for :func:`tide_errors`); hotcoco's ``COCOeval.calibration(n_bins, 0.5)``."""
    if abs(iou_threshold - IOU_THRESHOLDS[0]) > 1e-9:
        raise ValueError("calibration is computed at IoU 0.5")
    s = _scored(ground_truth, results, result)
    used = s.in_cell & ~s.ignored
    score = np.clip(s.found.score[used], 0.0, 1.0)
    correct = s.tp[used]
    bins = _bins(score, correct, n_bins)
    ece, mce = _errors(bins)
    per_category = {}
    for k, name in enumerate(s.cat_names):
        mine = s.found.category[used] == k
        if mine.any():
            per_category[name] = _errors(_bins(score[mine], correct[mine], n_bins))[0]
    return Calibration(ece, mce, bins, per_category, iou_threshold, n_bins, int(used.sum()))


# --- the app's inputs --------------------------------------------------------------------------
def results_from_predictions(
    predictions: Mapping[int, Detections], category_ids: Mapping[str, int]
) -> list[dict[str, Any]]:
    """A COCO results list from per-image Detections, every box kept in order (classes the
    dataset lacks get category id -1, which no evaluation scores), so result indices equal the
    Detections' indices as in ``EvalResult.per_image``."""
    rows = []
    for image_id, dets in predictions.items():
        if dets is None:
            continue
        xyxy = np.asarray(dets.xyxy, np.float64).reshape(-1, 4)
        for box, score, name in zip(xyxy.tolist(), dets.scores.tolist(), dets.class_names):
            rows.append({
                "image_id": int(image_id), "category_id": int(category_ids.get(str(name), -1)),
                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": float(score),
            })  # fmt: skip
    return rows
