"""The "annotate next" queue: the images not done yet, most useful to label first, each with
the reason it ranks where it does ("A sees 3 cows, B sees 1")::

    predictions = {m: {i: detector[m].predict(dataset.read_image(i)) for i in todo} for m in ...}
    queue = rank_images(dataset, predictions, score_threshold=0.5, classes=("cow",))
    queue[0].image_id, queue[0].score, queue[0].reason

The score (higher = label sooner) adds three parts, each between 0 and 1:

- **disagreement** (weight 1, needs two models): the boxes of model A and model B at the score
  threshold are paired when they overlap (IoU >= 0.5, best pairs first); disagreement =
  (unpaired boxes + pairs with different classes) / (pairs + unpaired boxes). Two models that
  see the same cows score 0; one that sees 3 cows where the other sees 1 scores 2/3.
- **uncertainty** (weight 0.5, per model, averaged): half of it is the share of the model's
  boxes that score near the threshold (within ±0.15) among those near it or above, half is
  ``1 / (1 + confident boxes)`` (confident: at least threshold + 0.15): an image with weak
  boxes only, or with no confident box at all, is one the model is unsure about.
- **closeness to a tracker break** (weight 1, video frames only): ``1 / (1 + d)`` where ``d``
  is how many processed frames the frame is from the nearest id switch, suspected switch or
  track break (remembered when the frame was added, see :mod:`cowdemo.datasets.video_frames`).

Ties keep the dataset's order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cowdemo.datasets import formats
from cowdemo.detections import Detections, box_iou

WEIGHTS = {"disagreement": 1.0, "uncertainty": 0.5, "switch": 1.0}
MATCH_IOU = 0.5
NEAR_THRESHOLD = 0.15


@dataclass(frozen=True)
class QueueItem:
    """One image of the queue: its score, the three parts, and why, in words."""

    image_id: int
    file_name: str
    score: float
    disagreement: float
    uncertainty: float
    switch: float
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('x') else 's'}"


def describe(dets: Detections) -> str:
    """``3 cows`` / ``2 cows, 1 horse`` / ``nothing``."""
    if not len(dets):
        return "nothing"
    names, counts = np.unique(np.asarray(dets.class_names, dtype=str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return ", ".join(_plural(int(counts[i]), str(names[i])) for i in order)


def pair_boxes(a: Detections, b: Detections, iou: float = MATCH_IOU) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs (index in a, index in b) overlapping by at least ``iou``, best
    overlap first; classes are not looked at."""
    if not len(a) or not len(b):
        return []
    overlaps = box_iou(a.xyxy, b.xyxy)
    pairs, used_a, used_b = [], set(), set()
    for flat in np.argsort(-overlaps, axis=None, kind="stable"):
        i, j = np.unravel_index(flat, overlaps.shape)
        if overlaps[i, j] < iou:
            break
        if i not in used_a and j not in used_b:
            pairs.append((int(i), int(j)))
            used_a.add(i)
            used_b.add(j)
    return pairs


def disagreement(a: Detections, b: Detections, name_a: str = "A",
                 name_b: str = "B") -> tuple[float, str]:
    """How much two models' boxes disagree (0..1, see the module docstring) and in words."""
    pairs = pair_boxes(a, b)
    unpaired = len(a) + len(b) - 2 * len(pairs)
    conflicts = sum(1 for i, j in pairs if str(a.class_names[i]) != str(b.class_names[j]))
    total = len(pairs) + unpaired
    value = (unpaired + conflicts) / total if total else 0.0
    if value == 0:
        text = f"{name_a} and {name_b} agree: {describe(a)}"
    else:
        text = f"{name_a} sees {describe(a)}, {name_b} sees {describe(b)}"
        extras = []
        if unpaired:
            extras.append(f"{_plural(unpaired, 'box')} without a match")
        if conflicts:
            extras.append(f"{conflicts} with another class")
        text += f" ({', '.join(extras)})"
    return value, text


def uncertainty(dets: Detections, threshold: float, name: str = "the model",
                margin: float = NEAR_THRESHOLD) -> tuple[float, str]:
    """How unsure a model is on an image (0..1, see the module docstring) and in words; ``dets``
    holds every box the model gave, at any score."""
    scores = np.asarray(dets.scores, dtype=float)
    near = int(((scores >= threshold - margin) & (scores < threshold + margin)).sum())
    confident = int((scores >= threshold + margin).sum())
    weak_share = near / (near + confident) if near + confident else 0.0
    value = 0.5 * weak_share + 0.5 / (1 + confident)
    parts = []
    if near:
        parts.append(f"{_plural(near, 'box')} of {name} score near the {threshold:.2f} "
                     f"threshold ({max(threshold - margin, 0):.2f}-{threshold + margin:.2f})")
    if not confident:
        parts.append(f"{name} has no confident box (score ≥ {threshold + margin:.2f})")
    elif confident <= 1:
        parts.append(f"{name} has only {confident} confident box")
    return value, "; ".join(parts)


def switch_closeness(image: dict[str, Any]) -> tuple[float, str]:
    """1 / (1 + frames to the nearest tracker break) for a video frame, 0 otherwise."""
    nearest = (image.get("video") or {}).get("nearest_break")
    if not nearest:
        return 0.0, ""
    distance = int(nearest["distance"])
    what = {"switch": "an id switch", "suspected": "a suspected id switch",
            "break": "a track break"}.get(nearest.get("kind"), "a tracker break")
    where = "at" if distance == 0 else f"{_plural(distance, 'frame')} from"
    return 1.0 / (1 + distance), f"{where} {what} (frame {nearest['frame']})"


def rank_images(dataset: Any, predictions: Mapping[str, Mapping[int, Detections]],
                score_threshold: float = 0.5, classes: Sequence[str] | None = None,
                image_ids: Sequence[int] | None = None) -> list[QueueItem]:
    """The images not done (or ``image_ids``), best to label first. ``predictions``: one or two
    models' raw detections per image id (any score; ``classes`` filters them, None keeps all)."""
    models = list(predictions)[:2]
    if not models:
        raise ValueError("rank_images needs the predictions of at least one model")
    ids = list(image_ids) if image_ids is not None else [
        int(im["id"]) for im in dataset.images if not formats.is_done(im)]
    items = []
    for image_id in ids:
        info = dataset.image_info(image_id)
        raw = {m: predictions[m][image_id].filter(0.0, classes) for m in models}
        shown = {m: raw[m].filter(score_threshold) for m in models}
        parts: list[tuple[float, str]] = []
        d = 0.0
        if len(models) == 2:
            d, text = disagreement(shown[models[0]], shown[models[1]], *models)
            parts.append((WEIGHTS["disagreement"] * d + 1e-9, text))
        else:
            parts.append((1e-9, f"{models[0]} sees {describe(shown[models[0]])} at score ≥ "
                                f"{score_threshold:.2f}"))
        unsure = [uncertainty(raw[m], score_threshold, m) for m in models]
        u = float(np.mean([v for v, _ in unsure]))
        text = "; ".join(t for _, t in unsure if t)
        if text:
            parts.append((WEIGHTS["uncertainty"] * u, text))
        s, text = switch_closeness(info)
        if text:
            parts.append((WEIGHTS["switch"] * s, text))
        score = WEIGHTS["disagreement"] * d + WEIGHTS["uncertainty"] * u + WEIGHTS["switch"] * s
        reasons = tuple(t for _, t in sorted(parts, key=lambda p: -p[0]))
        items.append(QueueItem(image_id, str(info["file_name"]), round(score, 6), d, u, s,
                               reasons))
    order = sorted(range(len(items)), key=lambda k: (-items[k].score, k))
    return [items[k] for k in order]


def queue_neighbour(queue: Sequence[int], image_id: int, step: int) -> int | None:
    """The image ``step`` places from ``image_id`` in the queue (None past either end); an
    image not in the queue (done meanwhile) goes to the queue's first."""
    if image_id not in queue:
        return queue[0] if queue else None
    position = list(queue).index(image_id) + step
    return queue[position] if 0 <= position < len(queue) else None
