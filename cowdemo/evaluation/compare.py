"""Is B really better than A? A paired bootstrap over images of every headline metric.

    comparison = compare_models(dataset.coco, results_a, results_b, names=("coco", "tuned"))
    comparison.metrics["AP50"].low, comparison.metrics["AP50"].verdict
    print("\\n".join(comparison.sentences()))
    # "tuned's AP50 is 0.10 higher than coco's, 95% interval 0.03 to 0.17: better"

Each of ``n_boot`` rounds draws as many images as the dataset has, with replacement (one draw
for both models: paired), scores both models on that sample and keeps B - A. The interval is
the central ``confidence`` share of those differences (percentile bootstrap, as hotcoco's
``compare()``). An interval above zero reads "better", below zero "worse", one that holds zero
"too few images to tell". Same ``seed``, same inputs: same intervals.

Matching is per image, so it is done once: a sample only changes how often each image (its
detections and its boxes) counts. An image drawn k times counts as k copies side by side in the
ranking, and a sample of every image once gives exactly the COCO numbers (pycocotools').
Metrics: AP, AP50, AP75, AR100 and AP50 per class (``AP50/cow``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cowdemo.errors import CowdemoError
from cowdemo.evaluation.detection import (
    RECALL_THRESHOLDS,
    _match_all,
    _parse_ground_truth,
    _parse_results,
    load_coco_json,
)

HEADLINE = ("AP", "AP50", "AP75", "AR100")
BETTER, WORSE, UNSURE, UNDEFINED = "better", "worse", "too few images to tell", "n/a"


@dataclass(frozen=True)
class MetricDifference:
    """B - A for one metric: the values on all images and the bootstrap interval."""

    metric: str
    a: float | None  # None where the metric is undefined (COCO's -1)
    b: float | None
    difference: float | None
    low: float | None
    high: float | None
    verdict: str  # "better" | "worse" | "too few images to tell" | "n/a"

    @property
    def excludes_zero(self) -> bool:
        return self.verdict in (BETTER, WORSE)

    def sentence(self, name_a: str = "A", name_b: str = "B", confidence: float = 0.95) -> str:
        """"B's AP50 is 0.10 higher than A's, 95% interval 0.03 to 0.17: better"."""
        if self.difference is None or self.low is None or self.high is None:
            return f"{name_b}'s {self.metric} vs {name_a}'s: n/a (no ground truth to score)"
        size = abs(self.difference)
        word = "higher" if self.difference > 0 else "lower" if self.difference < 0 else "the same"
        amount = "" if word == "the same" else f"{_num(size)} "
        than = "as" if word == "the same" else "than"
        return (
            f"{name_b}'s {self.metric} is {amount}{word} {than} {name_a}'s, "
            f"{confidence:.0%} interval {_num(self.low)} to {_num(self.high)}: {self.verdict}"
        )


def _num(value: float) -> str:
    """Two decimals, never "-0.00"."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


@dataclass
class Comparison:
    """Model B against model A on the same images (see the module docstring)."""

    model_a: str
    model_b: str
    n_images: int
    n_boot: int
    seed: int
    confidence: float
    metrics: dict[str, MetricDifference] = field(default_factory=dict)

    def sentences(self) -> list[str]:
        return [m.sentence(self.model_a, self.model_b, self.confidence)
                for m in self.metrics.values()]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["metrics"] = {k: asdict(v) for k, v in self.metrics.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        metrics = {k: MetricDifference(**v) for k, v in data["metrics"].items()}
        fields = {k: data[k] for k in ("model_a", "model_b", "n_images", "n_boot", "seed",
                                       "confidence")}  # fmt: skip
        return cls(**fields, metrics=metrics)


# --- one model's matches, ready to be resampled ------------------------------------------------
@dataclass
class _Scoring:
    """One model's per-detection outcomes (all IoU thresholds, all sizes, 100 per image and
    class) in ranking order per class, plus the ground truth that counts per image and class."""

    cat: np.ndarray  # (n,) class index, sorted by class
    image: np.ndarray  # (n,) image rank
    tp: np.ndarray  # (T, n)
    fp: np.ndarray
    seg_start: np.ndarray  # (K,)
    seg_end: np.ndarray
    gt_per_image: np.ndarray  # (images, K)


def _scoring(gt: Any, res: Any) -> tuple[list[str], _Scoring]:
    image_ids, cat_ids, cat_names, truth = _parse_ground_truth(gt)
    found = _parse_results(res, image_ids, cat_ids, cat_names, None)
    n_cats = len(cat_names)
    m = _match_all(n_cats, truth, found)
    d = m.d
    order = np.lexsort((d, found.image[d], -found.score[d], found.category[d]))
    cat = found.category[d][order]
    counted = ~m.g_ignore[0]  # area "all": crowd boxes never count
    g_image = truth.image[m.g_order][counted]
    g_cat = truth.category[m.g_order][counted]
    gt_per_image = np.zeros((len(image_ids), n_cats), np.int64)
    np.add.at(gt_per_image, (g_image, g_cat), 1)
    return cat_names, _Scoring(
        cat=cat, image=found.image[d][order], tp=m.is_tp[:, 0, order], fp=m.is_fp[:, 0, order],
        seg_start=np.searchsorted(cat, np.arange(n_cats), "left"),
        seg_end=np.searchsorted(cat, np.arange(n_cats), "right"), gt_per_image=gt_per_image,
    )  # fmt: skip


def _metrics(s: _Scoring, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AP per (IoU threshold, class) and recall at 100 per (IoU threshold, class), NaN where a
    class has no ground truth, with image i counted ``weight[i]`` times."""
    n_t, n = s.tp.shape
    n_cats = len(s.seg_start)
    npig = weight @ s.gt_per_image  # (K,)
    w = weight[s.image]
    tp_c = np.zeros((n_t, n + 1), np.int64)
    fp_c = np.zeros((n_t, n + 1), np.int64)
    np.cumsum(s.tp * w, axis=1, out=tp_c[:, 1:])
    np.cumsum(s.fp * w, axis=1, out=fp_c[:, 1:])
    tp_l = tp_c[:, 1:] - tp_c[:, s.seg_start][:, s.cat]
    fp_l = fp_c[:, 1:] - fp_c[:, s.seg_start][:, s.cat]
    has_gt = npig > 0
    recall = np.full((n_t, n_cats), np.nan)
    total_tp = tp_c[:, s.seg_end] - tp_c[:, s.seg_start]
    recall[:, has_gt] = total_tp[:, has_gt] / npig[has_gt]
    ap = np.full((n_t, n_cats), np.nan)
    ap[:, has_gt] = 0.0
    if n == 0:
        return ap, recall
    tp_f = tp_l.astype(np.float64)
    precision = tp_f / (tp_f + fp_l + np.spacing(1))
    # precision envelope per class: a reverse running maximum that never crosses into the
    # class before (offsets keep classes apart; precision lies in [0, 1])
    offset = 2.0 * (n_cats - s.cat)
    env = np.maximum.accumulate((precision + offset)[:, ::-1], axis=1)[:, ::-1] - offset
    # first rank reaching each recall threshold: the smallest count c with c / npig >= r
    n_safe = np.maximum(npig, 1)
    need = np.floor(RECALL_THRESHOLDS[None, :] * n_safe[:, None])
    need = np.where(need / n_safe[:, None] >= RECALL_THRESHOLDS[None, :], need, need + 1)
    big = int(np.max(npig) + n + 2)
    rows = np.arange(n_t)[:, None] * n_cats
    keys = ((rows + s.cat[None, :]) * big + tp_l).ravel()  # increasing along the flat array
    queries = ((rows[:, :, None] + np.arange(n_cats)[None, :, None]) * big
               + need[None].astype(np.int64))  # (T, K, R)  # fmt: skip
    pos = np.searchsorted(keys, queries.ravel(), "left").reshape(queries.shape)
    pos -= np.arange(n_t)[:, None, None] * n
    found = pos < s.seg_end[None, :, None]
    pos = np.minimum(pos, n - 1)
    value = np.take_along_axis(env, pos.reshape(n_t, -1), axis=1).reshape(pos.shape)
    value = np.where(found, value, 0.0)
    ap[:, has_gt] = value.mean(axis=2)[:, has_gt]
    return ap, recall


def _headline(ap: np.ndarray, recall: np.ndarray, cat_names: Sequence[str]) -> dict[str, float]:
    def mean(x: np.ndarray) -> float:
        x = x[~np.isnan(x)]
        return float(x.mean()) if x.size else np.nan

    out = {"AP": mean(ap), "AP50": mean(ap[0]), "AP75": mean(ap[5]), "AR100": mean(recall)}
    for k, name in enumerate(cat_names):
        out[f"AP50/{name}"] = float(ap[0, k])
    return out


def compare_models(
    ground_truth: Any,
    results_a: Any,
    results_b: Any,
    *,
    names: tuple[str, str] = ("A", "B"),
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """Paired bootstrap over images of B - A (see the module docstring). ``ground_truth`` is a
    COCO dict, ``results_a`` / ``results_b`` COCO results lists in its category ids (or paths /
    JSON text of them)."""
    if n_boot < 1 or not 0 < confidence < 1:
        raise CowdemoError("The bootstrap needs n_boot >= 1 and a confidence between 0 and 1.")
    gt = load_coco_json(ground_truth, "COCO ground truth", boxes_only="ground truth")
    cat_names, a = _scoring(gt, load_coco_json(results_a, "COCO results of A", "results"))
    _, b = _scoring(gt, load_coco_json(results_b, "COCO results of B", "results"))
    n_images = a.gt_per_image.shape[0]
    if n_images == 0:
        raise CowdemoError("The ground truth has no images to compare the models on.")
    full = np.ones(n_images, np.int64)
    point_a = _headline(*_metrics(a, full), cat_names)
    point_b = _headline(*_metrics(b, full), cat_names)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {k: [] for k in point_a}
    for _ in range(n_boot):
        weight = np.bincount(rng.integers(0, n_images, n_images), minlength=n_images)
        sa = _headline(*_metrics(a, weight), cat_names)
        sb = _headline(*_metrics(b, weight), cat_names)
        for k in samples:
            samples[k].append(sb[k] - sa[k])
    tail = (1 - confidence) / 2 * 100
    metrics = {}
    for k in point_a:
        va, vb = point_a[k], point_b[k]
        diffs = np.asarray(samples[k])
        diffs = diffs[~np.isnan(diffs)]
        if np.isnan(va) or np.isnan(vb) or diffs.size == 0:
            metrics[k] = MetricDifference(k, None, None, None, None, None, UNDEFINED)
            continue
        low, high = (float(x) for x in np.percentile(diffs, [tail, 100 - tail]))
        verdict = BETTER if low > 0 else WORSE if high < 0 else UNSURE
        metrics[k] = MetricDifference(k, va, vb, vb - va, low, high, verdict)
    return Comparison(names[0], names[1], n_images, n_boot, seed, confidence, metrics)
