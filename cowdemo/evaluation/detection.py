"""COCO box mAP in pure numpy, equal to pycocotools' ``COCOeval(iouType="bbox")``.

Two ways in, one engine::

    result = evaluate_coco("instances_val.json", "results.json")  # dicts, lists, paths, JSON text
    result.stats["AP"], result.per_class_ap["cow"]["AP50"]

    evaluator = DetectionEvaluator(["cow"])                          # streaming, torchmetrics style
    for image_id, image, gt_xyxy, gt_names in dataset:
        evaluator.update(image_id, gt_xyxy, gt_names, detector.predict(image))
    result = evaluator.compute()

The twelve stats mirror pycocotools bit for bit: ground truth sorted with ignored boxes last,
detections sorted by score with a stable sort and cut to 100 per image and category, crowd IoU over
the detection's area, greedy matching per IoU threshold, and an accumulation whose stable sort over
scores breaks ties by image id, then by order in the results. pycocotools loops in Python over
every image, category, area range and threshold; here the work runs over flat arrays:

* IoU only within (image, category) groups, all pairs at once; pairs under IoU 0.5 can never match.
* Greedy matching steps over "the k-th detection of every group" at once, for all 10 thresholds and
  all 4 area ranges together (an area range changes which ground truth is ignored, hence the match).
* One sort per category feeds every (threshold, area, maxDets) precision curve; recall-threshold
  look-ups run as a single ``searchsorted`` over integer true-positive counts.
* AP50 over score thresholds reuses that one matching: dropping detections under a threshold removes
  a suffix of every greedy order, so earlier matches never change.

One deliberate difference: pycocotools stores matches by annotation id and so treats a match to an
annotation whose id is 0 as no match; here any id matches.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

try:
    import orjson
except ImportError:  # optional: the standard json parser does the same, slower
    orjson = None
try:
    import msgspec
except ImportError:  # optional: orjson or json then parse every field
    msgspec = None

from cowdemo.coco import NAME_BY_CATEGORY_ID
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError

# The exact parameter values of pycocotools' Params.setDetParams (linspace, not arange: see there).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES: tuple[tuple[str, float, float], ...] = (
    ("all", 0.0, 1e5**2),
    ("small", 0.0, 32.0**2),
    ("medium", 32.0**2, 96.0**2),
    ("large", 96.0**2, 1e5**2),
)
STAT_NAMES = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)  # fmt: skip
DEFAULT_SCORE_THRESHOLDS = np.linspace(0.0, 1.0, 51)
CONFUSION_IOU = 0.5

_IOU_CAPPED = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)  # pycocotools: iou = min([t, 1 - 1e-10])
_AREA_LO = np.array([lo for _, lo, _ in AREA_RANGES])
_AREA_HI = np.array([hi for _, _, hi in AREA_RANGES])


# --- result ----------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """Everything one COCO box evaluation produces; ``to_dict()`` is JSON- and SQLite-ready.

    Attributes:
        stats: the 12 COCO numbers in pycocotools order (``STAT_NAMES``): AP, AP50, AP75, APs,
            APm, APl, AR1, AR10, AR100, ARs, ARm, ARl; -1 where undefined (no ground truth in
            that size range).
        per_class_ap: class name -> {"AP", "AP50", "num_gt"} (-1 for classes without ground
            truth; ``num_gt`` counts non-crowd boxes).
        pr_curves: {"recall": 101 recall points, "iou50" / "iou75": {"mean": precision per recall
            point, averaged over classes with ground truth, "per_class": {name: precision}}}
            (all areas, 100 detections per image); -1 where no class has ground truth.
        per_image: image id -> {"tp": [(det, gt, iou)], "fp": [det], "fn": [gt], "ignored": [det]}
            at IoU 0.5. ``det`` indexes the image's detections and ``gt`` its annotations, both in
            the order given (for ``evaluate_coco``: the order of that image's entries in the
            results list and in ``annotations``). ``ignored``: matched to a crowd box, beyond
            100 per class, or of a class the ground truth lacks.
        ap50_vs_score_threshold: {"thresholds", "ap50", "precision", "recall", "f1"}: what
            keeping only detections with score >= threshold would give (AP50 exactly as a fresh
            evaluation would; precision / recall / F1 pooled over classes at IoU 0.5, precision
            1 when nothing is kept).
        confusions: "dog on cow" -> count of detections whose class the ground truth lacks,
            overlapping a (non-crowd) ground-truth box at IoU >= 0.5 (each counted once, on its best
            overlap).
        unscored: class name -> count of detections whose class the ground truth lacks.
        counts: numbers of images, ground-truth boxes and detections evaluated.
    """

    stats: dict[str, float]
    per_class_ap: dict[str, dict[str, float]]
    pr_curves: dict[str, Any]
    per_image: dict[Any, dict[str, list]]
    ap50_vs_score_threshold: dict[str, list[float]]
    confusions: dict[str, int] = field(default_factory=dict)
    unscored: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def stats_array(self) -> np.ndarray:
        """The 12 stats as pycocotools' ``COCOeval.stats`` array."""
        return np.array([self.stats[name] for name in STAT_NAMES])

    def summary(self) -> str:
        """The stats as aligned text lines, one per stat."""
        return "\n".join(f"{name:>6} {value:7.4f}" for name, value in self.stats.items())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (per-image entries become a list with their ``image_id``)."""
        return {
            "stats": dict(self.stats),
            "per_class_ap": {k: dict(v) for k, v in self.per_class_ap.items()},
            "pr_curves": self.pr_curves,
            "per_image": [
                {
                    "image_id": image_id,
                    "tp": [list(t) for t in entry["tp"]],
                    "fp": list(entry["fp"]),
                    "fn": list(entry["fn"]),
                    "ignored": list(entry["ignored"]),
                }
                for image_id, entry in self.per_image.items()
            ],
            "ap50_vs_score_threshold": self.ap50_vs_score_threshold,
            "confusions": dict(self.confusions),
            "unscored": dict(self.unscored),
            "counts": dict(self.counts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """Inverse of :meth:`to_dict` (e.g. after ``json.loads``)."""
        per_image = {
            entry["image_id"]: {
                "tp": [tuple(t) for t in entry["tp"]],
                "fp": list(entry["fp"]),
                "fn": list(entry["fn"]),
                "ignored": list(entry["ignored"]),
            }
            for entry in data["per_image"]
        }
        return cls(
            stats=dict(data["stats"]),
            per_class_ap={k: dict(v) for k, v in data["per_class_ap"].items()},
            pr_curves=data["pr_curves"],
            per_image=per_image,
            ap50_vs_score_threshold=data["ap50_vs_score_threshold"],
            confusions=dict(data.get("confusions", {})),
            unscored=dict(data.get("unscored", {})),
            counts=dict(data.get("counts", {})),
        )


# --- flat inputs to the engine -----------------------------------------------------------------
@dataclass
class _Truth:
    """Ground-truth boxes of known images and categories, in the order given."""

    image: np.ndarray  # int64 rank of the image id among the sorted image ids
    category: np.ndarray  # int64 index into the sorted category ids
    xywh: np.ndarray  # (n, 4) float64
    area: np.ndarray  # the annotation's area field (segment area in COCO)
    iscrowd: np.ndarray  # bool
    local: np.ndarray  # index among the image's annotations, for the gallery


@dataclass
class _Found:
    """Detections in the order given."""

    image: np.ndarray
    category: np.ndarray  # -1: a class the ground truth lacks
    xywh: np.ndarray
    score: np.ndarray
    local: np.ndarray
    name: np.ndarray  # str class name (used for classes the ground truth lacks)


# --- the fields box evaluation reads ------------------------------------------------------------
# A COCO ground truth is mostly polygons (``segmentation``: 0.3 s of orjson's 0.35 s on the 25 MB
# 5,000-image replica in bench/bench_eval.py). Decoded against these schemas, msgspec skips every
# other field without building Python objects for it; anything that does not fit them (a wrong
# type, bad JSON) is parsed again in full so the usual one-line error names it.
class _GtImage(TypedDict, total=False):
    id: Any


class _GtAnnotation(TypedDict, total=False):
    image_id: Any
    category_id: Any
    bbox: Any
    area: Any
    iscrowd: Any


class _GtCategory(TypedDict, total=False):
    id: Any
    name: Any


class _GroundTruthBoxes(TypedDict, total=False):
    images: list[_GtImage]
    annotations: list[_GtAnnotation]
    categories: list[_GtCategory]


class _ResultBox(TypedDict, total=False):
    image_id: Any
    category_id: Any
    bbox: Any
    score: Any
    area: Any


_BOX_SCHEMAS: dict[str, Any] = {"ground truth": _GroundTruthBoxes, "results": list[_ResultBox]}
_DECODERS: dict[str, Any] = {}


def _decode_boxes_only(text: str | bytes, schema: str) -> Any:
    """``text`` decoded with only the fields box evaluation reads, or None when msgspec is
    missing or the text does not fit the schema (the caller then parses it in full)."""
    if msgspec is None:
        return None
    decoder = _DECODERS.get(schema)
    if decoder is None:
        decoder = _DECODERS[schema] = msgspec.json.Decoder(_BOX_SCHEMAS[schema])
    try:
        return decoder.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return None


# --- public entry points -------------------------------------------------------------------------
def load_coco_json(source: Any, what: str = "COCO JSON", boxes_only: str | None = None) -> Any:
    """A parsed COCO dict / results list from a dict, list, path, JSON text or bytes.

    A ``str`` that starts with ``{`` or ``[`` is read as JSON text, any other ``str`` as a path.
    ``boxes_only`` ("ground truth" or "results"): text is parsed for the fields box evaluation
    reads only (ids, boxes, areas, crowd flags, scores, category names), several times faster
    on a ground truth with polygons; dicts and lists are returned as given.
    """
    if isinstance(source, (Mapping, list)):
        return source
    text: str | bytes | None = None
    if isinstance(source, (bytes, bytearray)):
        text = bytes(source)
    elif isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        text = source
    elif isinstance(source, (str, Path)):
        path = Path(source)
        try:
            text = path.read_bytes()
        except OSError as exc:
            reason = getattr(exc, "strerror", None) or exc
            message = f"Cannot read the {what} file {path} ({reason}): check the path."
            raise CowdemoError(message) from None
    else:
        raise CowdemoError(
            f"The {what} must be a dict, a list, a path or JSON text, not {type(source).__name__}."
        )
    if boxes_only is not None:
        parsed = _decode_boxes_only(text, boxes_only)
        if parsed is not None:
            return parsed
    if orjson is not None:  # several times faster on big COCO files
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # json below names the line and column
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CowdemoError(
            f"The {what} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): "
            "export it again or fix the file."
        ) from None


def evaluate_coco(
    ground_truth: Any,
    results: Any,
    *,
    result_category_names: Mapping[int, str] | None = None,
    score_thresholds: Sequence[float] | np.ndarray = DEFAULT_SCORE_THRESHOLDS,
) -> EvalResult:
    """Evaluate COCO results against COCO ground truth; stats equal pycocotools' COCOeval (bbox).

    Args:
        ground_truth: COCO dict (``images``, ``annotations`` with ``bbox`` x, y, w, h, ``area``,
            ``iscrowd``, ``category_id``; ``categories``), or a path / JSON text of one.
        results: COCO results list (``image_id``, ``category_id``, ``bbox``, ``score``), or a path /
            JSON text of one.
        result_category_names: when the results use another id space than the ground truth (a COCO
            model, cow = 21, scored on a dataset whose only category is cow = 1), the results' id ->
            class name; classes are then matched by name. Without it, ids are compared directly.
            Either way, detections of classes the ground truth lacks are reported in
            ``confusions`` and ``unscored`` instead of being scored.
        score_thresholds: where to sample ``ap50_vs_score_threshold``.

    Raises:
        CowdemoError: unreadable JSON, missing keys, results for images not in the ground truth.
    """
    gt = load_coco_json(ground_truth, "COCO ground truth", boxes_only="ground truth")
    res = load_coco_json(results, "COCO results", boxes_only="results")
    image_ids, cat_ids, cat_names, truth = _parse_ground_truth(gt)
    found = _parse_results(res, image_ids, cat_ids, cat_names, result_category_names)
    return _evaluate(image_ids, cat_names, truth, found, score_thresholds)


class DetectionEvaluator:
    """Streaming COCO box evaluation: ``update`` per image, then ``compute``; ``reset`` to reuse.

    ``categories`` are the ground truth's classes: names (ids 1..n are given in order) or COCO
    category dicts (``{"id": 21, "name": "cow"}``). Detections are matched to them by class name;
    other classes land in ``EvalResult.confusions``.
    """

    def __init__(
        self,
        categories: Sequence[str] | Sequence[Mapping[str, Any]],
        score_thresholds: Sequence[float] | np.ndarray = DEFAULT_SCORE_THRESHOLDS,
    ):
        cats: dict[int, str] = {}
        for i, cat in enumerate(categories):
            if isinstance(cat, Mapping):
                cats[int(cat["id"])] = str(cat.get("name", cat["id"]))
            else:
                cats[i + 1] = str(cat)
        self.category_ids = sorted(cats)
        self.category_names = [cats[c] for c in self.category_ids]
        self._index_by_name = {name: k for k, name in enumerate(self.category_names)}
        self._index_by_id = {c: k for k, c in enumerate(self.category_ids)}
        self.score_thresholds = np.asarray(score_thresholds, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        self._images: dict[Any, tuple] = {}

    def update(
        self,
        image_id: Any,
        gt_xyxy: Any,
        gt_classes: Sequence[str] | Sequence[int] | np.ndarray,
        detections: Detections,
        *,
        gt_area: Any = None,
        gt_iscrowd: Any = None,
    ) -> None:
        """Add one image: its ground-truth boxes (xyxy pixels), their class names (or category
        ids), and the detector's output. ``gt_area`` defaults to the box area (COCO uses the
        segment area for its size ranges); ``gt_iscrowd`` to all False."""
        if image_id in self._images:
            raise CowdemoError(f"Image {image_id!r} was already added to this evaluation.")
        boxes = np.asarray(gt_xyxy, dtype=np.float64).reshape(-1, 4)
        n = len(boxes)
        classes = list(np.asarray(gt_classes).reshape(-1).tolist())
        if len(classes) != n:
            raise CowdemoError(
                f"Image {image_id!r}: {n} ground-truth boxes but {len(classes)} classes."
            )
        try:
            category = np.array(
                [
                    self._index_by_name[c] if isinstance(c, str) else self._index_by_id[int(c)]
                    for c in classes
                ],
                dtype=np.int64,
            )
        except KeyError as exc:
            raise CowdemoError(
                f"Image {image_id!r}: ground-truth class {exc.args[0]!r} is not one of the "
                f"evaluation's categories {self.category_names}."
            ) from None
        xywh = boxes.copy()
        xywh[:, 2:] -= xywh[:, :2]
        area = xywh[:, 2] * xywh[:, 3] if gt_area is None else np.asarray(gt_area, np.float64)
        crowd = np.zeros(n, bool) if gt_iscrowd is None else np.asarray(gt_iscrowd, bool)
        if area.shape != (n,) or crowd.shape != (n,):
            raise CowdemoError(
                f"Image {image_id!r}: gt_area and gt_iscrowd need one value per box."
            )
        names = np.asarray(detections.class_names, dtype=str)
        det_category = np.array([self._index_by_name.get(s, -1) for s in names.tolist()], np.int64)
        self._images[image_id] = (category, xywh, area, crowd, det_category, detections.xywh,
                                  detections.scores.copy(), names)  # fmt: skip

    def compute(self) -> EvalResult:
        try:
            image_ids = sorted(self._images)
        except TypeError:
            raise CowdemoError("Image ids of one evaluation must be mutually comparable.") from None
        parts = [self._images[i] for i in image_ids]
        n_gt = np.array([len(p[0]) for p in parts], np.int64)
        n_dt = np.array([len(p[4]) for p in parts], np.int64)
        ranks = np.arange(len(parts))

        def joined(j: int, shape: tuple, dtype: Any) -> np.ndarray:
            arrays = [np.asarray(p[j], dtype).reshape(shape) for p in parts]
            return np.concatenate(arrays) if arrays else np.zeros((0, *shape[1:]), dtype)

        truth = _Truth(
            image=np.repeat(ranks, n_gt),
            category=joined(0, (-1,), np.int64),
            xywh=joined(1, (-1, 4), np.float64),
            area=joined(2, (-1,), np.float64),
            iscrowd=joined(3, (-1,), bool),
            local=_local_index(n_gt),
        )
        found = _Found(
            image=np.repeat(ranks, n_dt),
            category=joined(4, (-1,), np.int64),
            xywh=joined(5, (-1, 4), np.float64),
            score=joined(6, (-1,), np.float64),
            local=_local_index(n_dt),
            name=joined(7, (-1,), str),
        )
        return _evaluate(image_ids, self.category_names, truth, found, self.score_thresholds)


# --- parsing ---------------------------------------------------------------------------------
def _local_index(counts: np.ndarray) -> np.ndarray:
    """0..n-1 within each consecutive block of the given sizes."""
    total = int(counts.sum())
    return np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)


def _rank_in_sorted_groups(sorted_keys: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal keys (keys already sorted)."""
    n = len(sorted_keys)
    idx = np.arange(n)
    if n == 0:
        return idx
    first = np.ones(n, bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return idx - np.maximum.accumulate(np.where(first, idx, 0))


def _position_in_group(keys: np.ndarray) -> np.ndarray:
    """Position of each element among the elements with the same key, in array order."""
    order = np.argsort(keys, kind="stable")
    out = np.empty(len(keys), np.int64)
    out[order] = _rank_in_sorted_groups(keys[order])
    return out


def _parse_ground_truth(gt: Any) -> tuple[list, list, list[str], _Truth]:
    if not isinstance(gt, Mapping) or not isinstance(gt.get("images"), list):
        raise CowdemoError(
            "COCO ground truth must be a JSON object with 'images', 'annotations' and "
            "'categories' lists."
        )
    try:
        image_ids = sorted({im["id"] for im in gt["images"]})
        cats = {c["id"]: str(c.get("name", c["id"])) for c in gt.get("categories", [])}
        cat_ids = sorted(cats)
    except (KeyError, TypeError):
        raise CowdemoError(
            "COCO ground truth: every image and category needs an 'id' (comparable numbers)."
        ) from None
    anns = gt.get("annotations", [])
    if not isinstance(anns, list):
        raise CowdemoError("COCO ground truth: 'annotations' must be a list.")
    image_index = {iid: i for i, iid in enumerate(image_ids)}
    cat_index = {cid: k for k, cid in enumerate(cat_ids)}
    try:
        image = np.array([image_index.get(a["image_id"], -1) for a in anns], np.int64)
        category = np.array([cat_index.get(a["category_id"], -1) for a in anns], np.int64)
        xywh = np.array([a["bbox"] for a in anns], np.float64).reshape(len(anns), 4)
        area = np.array([a.get("area", np.nan) for a in anns], np.float64)
        crowd = np.array([a.get("iscrowd", 0) for a in anns]).astype(bool).reshape(-1)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CowdemoError(_first_bad_entry(anns, ("image_id", "category_id", "bbox"),
                                            "COCO ground-truth annotation")) from None  # fmt: skip
    if not np.isfinite(xywh).all():
        raise CowdemoError("COCO ground truth: an annotation bbox holds NaN or infinity.")
    area = np.where(np.isnan(area), xywh[:, 2] * xywh[:, 3], area)
    local = _position_in_group(image)
    # pycocotools only evaluates annotations of the listed images and categories.
    keep = (image >= 0) & (category >= 0)
    truth = _Truth(image[keep], category[keep], xywh[keep], area[keep], crowd[keep], local[keep])
    return image_ids, cat_ids, [cats[c] for c in cat_ids], truth


def _first_bad_entry(rows: list, keys: tuple[str, ...], what: str) -> str:
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            return f"{what} {i} is not a JSON object; each needs {', '.join(keys)}."
        missing = [k for k in keys if k not in row]
        if missing:
            return f"{what} {i} lacks {', '.join(missing)}; each needs {', '.join(keys)}."
        bbox = row["bbox"]
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            return f"{what} {i} has bbox {bbox!r}; it must be [x, y, width, height]."
        try:
            [float(v) for v in bbox]
            float(row.get("score", 0.0))
            float(row.get("area", 0.0))
            hash(row["image_id"])
            hash(row["category_id"])
        except (TypeError, ValueError):
            return f"{what} {i} holds a value that is not a number: {row!r:.120}."
    return f"{what}s are malformed; each needs {', '.join(keys)}."


def _parse_results(
    res: Any,
    image_ids: list,
    cat_ids: list,
    cat_names: list[str],
    result_category_names: Mapping[int, str] | None,
) -> _Found:
    if not isinstance(res, list):
        raise CowdemoError(
            "COCO results must be a JSON list of {image_id, category_id, bbox, score} objects."
        )
    keys = ("image_id", "category_id", "bbox", "score")
    image_index = {iid: i for i, iid in enumerate(image_ids)}
    try:
        image = np.array([image_index.get(r["image_id"], -1) for r in res], np.int64)
        raw_cat = [r["category_id"] for r in res]
        xywh = np.array([r["bbox"] for r in res], np.float64).reshape(len(res), 4)
        score = np.array([r["score"] for r in res], np.float64).reshape(len(res))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CowdemoError(_first_bad_entry(res, keys, "COCO results entry")) from None
    if (image < 0).any():
        i = int(np.argmax(image < 0))
        raise CowdemoError(
            f"COCO results entry {i} names image_id {res[i]['image_id']!r}, which is not in the "
            "ground truth: results must refer to the dataset's images."
        )
    if not (np.isfinite(xywh).all() and np.isfinite(score).all()):
        raise CowdemoError("COCO results: a bbox or score holds NaN or infinity.")
    # Class of each distinct result category id, then the ground-truth index of that class.
    if result_category_names is None:
        by_id = dict(zip(cat_ids, range(len(cat_ids))))
        name_of = {c: NAME_BY_CATEGORY_ID.get(c, f"category {c}") for c in set(raw_cat)}
        lookup = {c: (by_id.get(c, -1), name_of[c]) for c in name_of}
    else:
        by_name = {name: k for k, name in enumerate(cat_names)}
        lookup = {}
        for c in set(raw_cat):
            name = str(result_category_names.get(c, f"category {c}"))
            lookup[c] = (by_name.get(name, -1), name)
    pairs = [lookup[c] for c in raw_cat]
    category = np.array([p[0] for p in pairs], np.int64)
    name = np.array([p[1] for p in pairs], dtype=str) if pairs else np.zeros(0, str)
    return _Found(image, category, xywh, score, _position_in_group(image), name)


@dataclass
class _Matches:
    """pycocotools' evaluateImg for every image and category at once (see ``_evaluate``)."""

    d: np.ndarray  # scored detections (indices into found), within 100 per image and class
    d_rank: np.ndarray
    is_tp: np.ndarray  # (T, A, len(d))
    is_fp: np.ndarray
    npig: np.ndarray  # (A, K) ground truth that counts
    g_order: np.ndarray
    g_ignore: np.ndarray  # (A, G) in g_order
    g_matched: np.ndarray
    iou: np.ndarray
    pd: np.ndarray
    pg: np.ndarray
    match: np.ndarray


def _match_all(n_cats: int, truth: _Truth, found: _Found) -> _Matches:
    # Ground truth in (image, category, given order); detections in (image, category, score desc,
    # given order) — the order of pycocotools' stable sorts — cut to 100 per image and category.
    g_order = np.lexsort((np.arange(len(truth.image)), truth.category, truth.image))
    g_key = truth.image[g_order] * n_cats + truth.category[g_order]
    g_xywh, g_area = truth.xywh[g_order], truth.area[g_order]
    g_crowd, g_cat = truth.iscrowd[g_order], truth.category[g_order]

    known = np.flatnonzero(found.category >= 0)
    order = np.lexsort((known, -found.score[known], found.category[known], found.image[known]))
    d_all = known[order]
    d_rank_all = _rank_in_sorted_groups(found.image[d_all] * n_cats + found.category[d_all])
    d = d_all[d_rank_all < MAX_DETS[-1]]
    d_rank = d_rank_all[d_rank_all < MAX_DETS[-1]]
    d_key = found.image[d] * n_cats + found.category[d]
    d_xywh = found.xywh[d]
    d_area = d_xywh[:, 2] * d_xywh[:, 3]  # pycocotools loadRes: area = w * h

    # IoU of every (detection, ground truth) pair of a group; keep those that can ever match.
    pd, pg = _group_pairs(d_key, g_key)
    iou = _coco_iou(d_xywh[pd], g_xywh[pg], g_crowd[pg])
    candidate = iou >= _IOU_CAPPED.min()
    pd, pg, iou = pd[candidate], pg[candidate], iou[candidate]

    g_ignore = g_crowd[None, :] | (g_area < _AREA_LO[:, None]) | (g_area > _AREA_HI[:, None])
    match, g_matched = _greedy_match(pd, pg, iou, d_key, g_crowd, g_ignore, len(d), len(g_key))

    matched = match >= 0
    match_gt = pg[np.where(matched, match, 0)] if len(pg) else np.zeros(match.shape, np.int64)
    d_out = (d_area < _AREA_LO[:, None]) | (d_area > _AREA_HI[:, None])
    d_ignore = np.where(matched, g_ignore[np.arange(len(AREA_RANGES))[:, None], match_gt], d_out)
    is_tp = matched & ~d_ignore
    is_fp = ~matched & ~d_ignore

    npig = np.stack([np.bincount(g_cat[~ig], minlength=n_cats) for ig in g_ignore])  # (A, K)
    return _Matches(d, d_rank, is_tp, is_fp, npig, g_order, g_ignore, g_matched, iou, pd, pg,
                    match)


# --- the engine ------------------------------------------------------------------------------
def _evaluate(
    image_ids: list,
    cat_names: list[str],
    truth: _Truth,
    found: _Found,
    score_thresholds: Sequence[float] | np.ndarray,
) -> EvalResult:
    n_cats = len(cat_names)
    m = _match_all(n_cats, truth, found)
    d, d_rank, is_tp, is_fp, npig = m.d, m.d_rank, m.is_tp, m.is_fp, m.npig
    g_order, iou, pd, pg, match, g_ignore, g_matched = (
        m.g_order, m.iou, m.pd, m.pg, m.match, m.g_ignore, m.g_matched
    )
    d_score = found.score[d]
    acc = np.lexsort((d, found.image[d], -d_score, found.category[d]))  # accumulate's order
    precision, recall, score_curve = _accumulate(
        found.category[d][acc], d_rank[acc], d_score[acc], is_tp[:, :, acc], is_fp[:, :, acc],
        npig, n_cats, np.asarray(score_thresholds, np.float64),
    )  # fmt: skip

    per_image = _per_image(
        image_ids, truth, found, g_order, d, iou, pd, pg, match[0, 0], is_tp[0, 0], is_fp[0, 0],
        ~g_ignore[0] & ~g_matched[0, 0],
    )  # fmt: skip
    confusions, unscored = _confusions(truth, found, cat_names)
    return EvalResult(
        stats=_summarize(precision, recall),
        per_class_ap=_per_class_ap(precision, npig, cat_names),
        pr_curves=_pr_curves(precision, cat_names),
        per_image=per_image,
        ap50_vs_score_threshold=score_curve,
        confusions=confusions,
        unscored=unscored,
        counts={
            "images": len(image_ids),
            "ground_truth": len(truth.image),
            "detections": len(found.image),
            "categories": n_cats,
        },
    )


def _group_pairs(d_key: np.ndarray, g_key_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (detection, ground truth) index pair with equal keys, grouped by detection."""
    lo = np.searchsorted(g_key_sorted, d_key, "left")
    counts = np.searchsorted(g_key_sorted, d_key, "right") - lo
    pd = np.repeat(np.arange(len(d_key)), counts)
    start = np.cumsum(counts) - counts
    pg = np.arange(len(pd)) - np.repeat(start - lo, counts)
    return pd, pg


def _coco_iou(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of paired xywh boxes, with the same floating-point steps as pycocotools' bbIou (C):
    a crowd box's union is the detection's area alone."""
    w = np.minimum(d[:, 2] + d[:, 0], g[:, 2] + g[:, 0]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3] + d[:, 1], g[:, 3] + g[:, 1]) - np.maximum(d[:, 1], g[:, 1])
    inter = w * h
    da = d[:, 2] * d[:, 3]
    union = np.where(crowd, da, da + g[:, 2] * g[:, 3] - inter)
    out = np.zeros(len(d))
    np.divide(inter, union, out=out, where=(w > 0) & (h > 0))
    return out


def _greedy_match(
    pd: np.ndarray,
    pg: np.ndarray,
    iou: np.ndarray,
    d_key: np.ndarray,
    g_crowd: np.ndarray,
    g_ignore: np.ndarray,
    n_det: int,
    n_gt: int,
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' greedy matching for all IoU thresholds and area ranges at once.

    Per detection (in score order within its group) pycocotools takes, among ground truth that
    is still free (or crowd) with IoU >= threshold, the one that is not ignored if any, then the
    highest IoU, then the last in order. Groups are independent, so step k handles the k-th
    detection (counting only detections with a candidate) of every group together.

    Returns the matched pair index per (threshold, area, detection), -1 when unmatched, and the
    matched flag per (threshold, area, ground truth).
    """
    n_t, n_a = len(_IOU_CAPPED), len(g_ignore)
    match = np.full((n_t, n_a, n_det), -1, np.int64)
    g_matched = np.zeros((n_t, n_a, n_gt), bool)
    # A pair whose detection and ground truth have no other candidate cannot compete: it matches
    # at every threshold its IoU reaches, whatever the area range.
    alone = (np.bincount(pd, minlength=n_det)[pd] == 1) & (np.bincount(pg, minlength=n_gt)[pg] == 1)
    pair_index = np.flatnonzero(alone)
    hit = iou[alone] >= _IOU_CAPPED[:, None]  # (T, pairs)
    match[:, :, pd[alone]] = np.where(hit, pair_index, -1)[:, None, :]
    g_matched[:, :, pg[alone]] = hit[:, None, :]
    pair_index = np.flatnonzero(~alone)  # positions in the caller's candidate arrays
    if len(pair_index) == 0:
        return match, g_matched
    pd, pg, iou = pd[pair_index], pg[pair_index], iou[pair_index]
    cand_det, per_det = np.unique(pd, return_counts=True)
    step_of_det = _rank_in_sorted_groups(d_key[cand_det])
    order = np.argsort(np.repeat(step_of_det, per_det), kind="stable")
    pd, pg, iou = pd[order], pg[order], iou[order]
    pair_index = pair_index[order]
    step_sorted = np.repeat(step_of_det, per_det)[order]
    bounds = np.searchsorted(step_sorted, np.arange(step_sorted[-1] + 2))
    not_ignored = ~g_ignore
    thr = _IOU_CAPPED[:, None, None]
    for s in range(len(bounds) - 1):
        sl = slice(bounds[s], bounds[s + 1])
        sd, sg, si = pd[sl], pg[sl], iou[sl]
        first = np.ones(len(sd), bool)
        first[1:] = sd[1:] != sd[:-1]
        starts = np.flatnonzero(first)
        owner = np.cumsum(first) - 1  # which of this step's detections each pair belongs to
        free = ~g_matched[:, :, sg] | g_crowd[sg]
        valid = (si >= thr) & free  # (T, A, P)
        valid_kept = valid & not_ignored[None, :, sg]
        has_kept = np.logical_or.reduceat(valid_kept, starts, axis=2)
        chosen_set = np.where(has_kept[:, :, owner], valid_kept, valid)
        score = np.where(chosen_set, si, -1.0)
        best = np.maximum.reduceat(score, starts, axis=2)
        at_best = chosen_set & (score == best[:, :, owner])
        last = np.maximum.reduceat(np.where(at_best, np.arange(len(sd)), -1), starts, axis=2)
        t_i, a_i, j = np.nonzero(last >= 0)
        picked = last[t_i, a_i, j]
        g_matched[t_i, a_i, sg[picked]] = True
        match[t_i, a_i, sd[starts[j]]] = pair_index[bounds[s] + picked]
    return match, g_matched


def _segment_reverse_cummax(values: np.ndarray, seg_start: np.ndarray, seg_end: np.ndarray) -> None:
    """In place, per segment of the last axis: make values non-increasing (pycocotools' precision
    envelope, ``pr[i-1] = max(pr[i-1], pr[i])`` from the right)."""
    for s, e in zip(seg_start.tolist(), seg_end.tolist()):
        if e - s > 1:
            block = values[..., s:e]
            block[...] = np.maximum.accumulate(block[..., ::-1], axis=-1)[..., ::-1]


def _first_count_reaching(npig: np.ndarray, n_max: int) -> np.ndarray:
    """For each (area, category) and recall threshold, the smallest true-positive count j with
    ``j / npig >= threshold`` in floating point (pycocotools' ``searchsorted(rc, recThrs)``);
    ``n_max + 1`` (never reached) when no count does."""
    out = np.full((*npig.shape, len(RECALL_THRESHOLDS)), n_max + 1, np.int64)
    cache: dict[int, np.ndarray] = {}
    for (a, k), n in np.ndenumerate(npig):
        if n > 0:
            if n not in cache:
                rc = np.arange(n + 1, dtype=np.float64) / n
                cache[n] = np.minimum(np.searchsorted(rc, RECALL_THRESHOLDS, "left"), n_max + 1)
            out[a, k] = cache[n]
    return out


def _accumulate(
    cat: np.ndarray,
    rank: np.ndarray,
    score: np.ndarray,
    is_tp: np.ndarray,
    is_fp: np.ndarray,
    npig: np.ndarray,
    n_cats: int,
    score_thresholds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, list[float]]]:
    """pycocotools' accumulate over detections sorted by (category, score desc, image, given
    order): precision (T, R, K, A) at 100 detections, recall (T, K, A, M), and the score sweep.

    A detection left out (over a maxDets cut, under a score threshold) acts as an ignored one: it
    repeats the previous curve point, which changes no precision or recall."""
    n_t, n_a, n = is_tp.shape
    n_r = len(RECALL_THRESHOLDS)
    seg_start = np.searchsorted(cat, np.arange(n_cats), "left")
    seg_end = np.searchsorted(cat, np.arange(n_cats), "right")
    has_gt = npig > 0  # (A, K)

    # Recall per maxDets: true positives within the first m of each image and category.
    recall = -np.ones((n_t, n_cats, n_a, len(MAX_DETS)))
    nonempty = np.flatnonzero(seg_end > seg_start)
    with np.errstate(divide="ignore", invalid="ignore"):
        for m_i, m in enumerate(MAX_DETS):
            total = np.zeros((n_t, n_a, n_cats), np.int64)
            if len(nonempty):
                within = is_tp & (rank < m)
                total[:, :, nonempty] = np.add.reduceat(
                    within, seg_start[nonempty], axis=2, dtype=np.int64
                )
            rec = np.where(has_gt[None], total / npig[None], -1.0)
            recall[:, :, :, m_i] = rec.transpose(0, 2, 1)

    # Precision at 101 recall points, 100 detections per image and category.
    rows = n_t * n_a
    tp_c = np.zeros((rows, n + 1), np.int64)
    fp_c = np.zeros((rows, n + 1), np.int64)
    np.cumsum(is_tp.reshape(rows, n), axis=1, out=tp_c[:, 1:])
    np.cumsum(is_fp.reshape(rows, n), axis=1, out=fp_c[:, 1:])
    tp_local = tp_c[:, 1:] - tp_c[:, seg_start][:, cat]
    fp_local = fp_c[:, 1:] - fp_c[:, seg_start][:, cat]
    tp_f = tp_local.astype(np.float64)
    raw_pr = tp_f / (fp_local.astype(np.float64) + tp_f + np.spacing(1))
    pr = raw_pr.copy()
    _segment_reverse_cummax(pr, seg_start, seg_end)

    # First curve position per (row, category, recall threshold): one searchsorted over integer
    # keys (row, category, true-positive count), which increase along the flattened rows.
    jmin = _first_count_reaching(npig, n)  # (A, K, R)
    big = n + 2
    row_ids = np.arange(rows)
    keys = ((row_ids[:, None] * n_cats + cat[None, :]) * big + tp_local).ravel()
    area_of_row = row_ids % n_a
    queries = (row_ids[:, None, None] * n_cats + np.arange(n_cats)[None, :, None]) * big
    queries = queries + jmin[area_of_row]  # (rows, K, R)
    pos = np.searchsorted(keys, queries.ravel(), "left").reshape(rows, n_cats, n_r)
    pos -= row_ids[:, None, None] * n
    found = pos < seg_end[None, :, None]
    pos = np.minimum(pos, max(n - 1, 0))
    if n:
        value = np.take_along_axis(pr, pos.reshape(rows, -1), axis=1).reshape(pos.shape)
        value = np.where(found, value, 0.0)
    else:
        value = np.zeros(pos.shape)
    value = np.where(has_gt[area_of_row][:, :, None], value, -1.0)
    precision = value.reshape(n_t, n_a, n_cats, n_r).transpose(0, 3, 2, 1)  # (T, R, K, A)

    score_curve = _score_curve(
        score, cat, raw_pr[0], pos[0], found[0], is_tp[0, 0], is_fp[0, 0], npig[0],
        seg_start, seg_end, score_thresholds,
    )  # fmt: skip
    return precision, recall, score_curve


def _per_class_ap(precision: np.ndarray, npig: np.ndarray, names: list[str]) -> dict:
    return {
        name: {
            "AP": _mean_defined(precision[:, :, k, 0]),
            "AP50": _mean_defined(precision[0, :, k, 0]),
            "num_gt": int(npig[0, k]),
        }
        for k, name in enumerate(names)
    }


def _pr_curves(precision: np.ndarray, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"recall": RECALL_THRESHOLDS.tolist()}
    for label, t in (("iou50", 0.5), ("iou75", 0.75)):
        p = precision[int(np.argmin(np.abs(IOU_THRESHOLDS - t))), :, :, 0]  # (R, K)
        defined = p > -1
        n_defined = defined.sum(axis=1)
        mean = np.where(defined, p, 0).sum(axis=1) / np.maximum(n_defined, 1)
        out[label] = {
            "mean": np.where(n_defined > 0, mean, -1.0).tolist(),
            "per_class": {name: p[:, k].tolist() for k, name in enumerate(names)},
        }
    return out


def _mean_defined(s: np.ndarray) -> float:
    """pycocotools' ``np.mean(s[s > -1])``, -1 when nothing is defined."""
    s = s[s > -1]
    return -1.0 if s.size == 0 else float(np.mean(s))


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """pycocotools' summarize for boxes, element order kept so the means agree to the last bit.
    ``precision`` is (T, R, K, A) at 100 detections; ``recall`` is (T, K, A, M)."""
    area = {name: i for i, (name, _, _) in enumerate(AREA_RANGES)}
    m100 = MAX_DETS.index(100)

    def ap(iou: float | None = None, rng: str = "all") -> float:
        s = precision[:, :, :, area[rng]]
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        return _mean_defined(s)

    def ar(max_dets: int, rng: str = "all") -> float:
        return _mean_defined(recall[:, :, area[rng], MAX_DETS.index(max_dets)])

    values = [
        ap(), ap(0.5), ap(0.75), ap(rng="small"), ap(rng="medium"), ap(rng="large"),
        ar(MAX_DETS[0]), ar(MAX_DETS[1]), ar(MAX_DETS[m100]),
        ar(100, "small"), ar(100, "medium"), ar(100, "large"),
    ]  # fmt: skip
    return dict(zip(STAT_NAMES, values))


def _score_curve(
    score: np.ndarray,
    cat: np.ndarray,
    raw_pr: np.ndarray,
    pos: np.ndarray,
    found: np.ndarray,
    is_tp: np.ndarray,
    is_fp: np.ndarray,
    npig: np.ndarray,
    seg_start: np.ndarray,
    seg_end: np.ndarray,
    thresholds: np.ndarray,
) -> dict[str, list[float]]:
    """AP50 and pooled precision / recall / F1 at IoU 0.5 for each score threshold, from the one
    matching: keeping score >= threshold keeps a prefix of every category's sorted curve, so only
    the precision envelope has to be redone per threshold."""
    kept = score[None, :] >= thresholds[:, None]  # (S, N)
    pr = np.where(kept, raw_pr[None, :], 0.0)
    _segment_reverse_cummax(pr, seg_start, seg_end)
    n_s = len(thresholds)
    if len(score):
        at = np.broadcast_to(pos.reshape(1, -1), (n_s, pos.size))
        reached = found[None] & np.take_along_axis(kept, at, axis=1).reshape(n_s, *pos.shape)
        value = np.take_along_axis(pr, at, axis=1).reshape(n_s, *pos.shape)
        value = np.where(reached, value, 0.0)
    else:
        value = np.zeros((n_s, *pos.shape))
    value = np.where(npig[None, :, None] > 0, value, -1.0).transpose(0, 2, 1)  # (S, R, K)
    ap50 = [_mean_defined(v) for v in value]

    tp_scores = np.sort(score[is_tp])
    fp_scores = np.sort(score[is_fp])
    tp = len(tp_scores) - np.searchsorted(tp_scores, thresholds, "left")
    fp = len(fp_scores) - np.searchsorted(fp_scores, thresholds, "left")
    n_gt = int(npig.sum())
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
    recall = tp / n_gt if n_gt else np.zeros(len(thresholds))
    denom = precision + recall
    f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    return {
        "thresholds": thresholds.tolist(),
        "ap50": ap50,
        "precision": precision.tolist(),
        "recall": np.asarray(recall, np.float64).tolist(),
        "f1": f1.tolist(),
    }


def _per_image(
    image_ids: list,
    truth: _Truth,
    found: _Found,
    g_order: np.ndarray,
    d: np.ndarray,
    iou: np.ndarray,
    pd: np.ndarray,
    pg: np.ndarray,
    match: np.ndarray,
    is_tp: np.ndarray,
    is_fp: np.ndarray,
    missed: np.ndarray,
) -> dict[Any, dict[str, list]]:
    """TP (det, gt, iou) / FP / FN / ignored per image at IoU 0.5, all areas, 100 per class."""
    tp_d = d[is_tp]
    tp_pair = match[is_tp]
    tp_g = g_order[pg[tp_pair]] if len(tp_pair) else np.zeros(0, np.int64)
    fp_d = d[is_fp]
    status = np.zeros(len(found.image), np.int8)  # 0 ignored, 1 tp, 2 fp
    status[tp_d] = 1
    status[fp_d] = 2
    ig_d = np.flatnonzero(status == 0)
    fn_g = g_order[missed]

    def by_image(image: np.ndarray, local: np.ndarray, *extra: np.ndarray) -> tuple[list, list]:
        order = np.lexsort((local, image))
        bounds = np.searchsorted(image[order], np.arange(len(image_ids) + 1)).tolist()
        return bounds, [local[order].tolist()] + [e[order].tolist() for e in extra]

    tp_b, (tp_dl, tp_gl, tp_iou) = by_image(
        found.image[tp_d], found.local[tp_d], truth.local[tp_g], iou[tp_pair] if len(iou) else
        np.zeros(0),
    )  # fmt: skip
    fp_b, (fp_l,) = by_image(found.image[fp_d], found.local[fp_d])
    ig_b, (ig_l,) = by_image(found.image[ig_d], found.local[ig_d])
    fn_b, (fn_l,) = by_image(truth.image[fn_g], truth.local[fn_g])
    tp_all = list(zip(tp_dl, tp_gl, tp_iou))
    return {
        image_id: {
            "tp": tp_all[tp_b[i] : tp_b[i + 1]],
            "fp": fp_l[fp_b[i] : fp_b[i + 1]],
            "fn": fn_l[fn_b[i] : fn_b[i + 1]],
            "ignored": ig_l[ig_b[i] : ig_b[i + 1]],
        }
        for i, image_id in enumerate(image_ids)
    }


def _confusions(
    truth: _Truth, found: _Found, cat_names: list[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Detections of classes the ground truth lacks: how many lie on a ground-truth box of some
    class (IoU >= 0.5, best overlap, crowd boxes skipped), and how many there are per class."""
    other = np.flatnonzero(found.category < 0)
    if len(other) == 0:
        return {}, {}
    unscored = dict(Counter(found.name[other].tolist()))
    solid = np.flatnonzero(~truth.iscrowd)
    g = solid[np.argsort(truth.image[solid], kind="stable")]
    pd, pg = _group_pairs(found.image[other], truth.image[g])
    iou = _coco_iou(found.xywh[other][pd], truth.xywh[g][pg], np.zeros(len(pd), bool))
    hit = iou >= CONFUSION_IOU
    pd, pg, iou = pd[hit], pg[hit], iou[hit]
    best = np.lexsort((-iou, pd))  # per detection, highest IoU first
    first = np.ones(len(best), bool)
    first[1:] = pd[best][1:] != pd[best][:-1]
    best = best[first]
    det_names = found.name[other][pd[best]].tolist()
    gt_names = [cat_names[k] for k in truth.category[g][pg[best]].tolist()]
    confusions = Counter(f"{a} on {b}" for a, b in zip(det_names, gt_names))
    return dict(sorted(confusions.items())), dict(sorted(unscored.items()))
