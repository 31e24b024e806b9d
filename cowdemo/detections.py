"""`Detections`: the one currency every backend returns and every drawer, metric and tracker takes.

Parallel numpy arrays validated once, so every consumer can trust the shapes::

    dets = box.predict(image)
    cows = dets[dets.class_names == "cow"]
    confident = dets.filter(score_threshold=0.5, classes=["cow"])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cowdemo.coco import CATEGORY_ID_BY_NAME, COCO_CLASSES, NAME_BY_CATEGORY_ID
from cowdemo.errors import CowdemoError


@dataclass
class Detections:
    """Boxes found in one image.

    Attributes:
        xyxy: (n, 4) float64 boxes in pixels, (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1.
        scores: (n,) float64 confidences in [0, 1].
        class_ids: (n,) int64 indices into the producing model's class list (for COCO models the
            contiguous 0..79 space: dog 16, cow 19). Names travel alongside, so consumers that
            compare models with different class lists use ``class_names``.
        class_names: (n,) str array, the class name of each box.
        track_ids: (n,) int64 track ids, or None when the boxes are not tracked.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: np.ndarray
    track_ids: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float64).reshape(-1, 4)
        n = len(self.xyxy)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        self.class_names = np.asarray(self.class_names, dtype=str).reshape(-1)
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        for name in ("scores", "class_ids", "class_names", "track_ids"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"Detections.{name} has {len(value)} entries for {n} boxes")
        if n and not np.isfinite(self.xyxy).all():
            raise ValueError("Detections.xyxy holds NaN or infinite values")
        if n and ((self.xyxy[:, 2] < self.xyxy[:, 0]) | (self.xyxy[:, 3] < self.xyxy[:, 1])).any():
            raise ValueError("Detections.xyxy must have x2 >= x1 and y2 >= y1")

    # --- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls, with_tracks: bool = False) -> Detections:
        """No boxes; the neutral element of :meth:`merge`."""
        return cls(
            np.zeros((0, 4)),
            np.zeros(0),
            np.zeros(0, np.int64),
            np.zeros(0, str),
            np.zeros(0, np.int64) if with_tracks else None,
        )

    @classmethod
    def from_class_ids(
        cls,
        xyxy: Any,
        scores: Any,
        class_ids: Any,
        classes: Sequence[str],
        track_ids: Any = None,
    ) -> Detections:
        """Build from ids into a class list, e.g. a contiguous COCO model output::

        Detections.from_class_ids(boxes, scores, [19], COCO_CLASSES)  # one cow
        """
        ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        names = np.asarray([classes[i] for i in ids], dtype=str)
        return cls(xyxy, scores, ids, names, track_ids)

    @classmethod
    def merge(cls, parts: Iterable[Detections]) -> Detections:
        """Concatenate several Detections (track ids kept only if every part has them)."""
        parts = list(parts)
        if not parts:
            return cls.empty()
        tracks = None
        if all(p.track_ids is not None for p in parts):
            tracks = np.concatenate([p.track_ids for p in parts])
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.class_ids for p in parts]),
            np.concatenate([p.class_names for p in parts]),
            tracks,
        )

    # --- access --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """Boolean mask, integer array or slice: ``dets[dets.scores > 0.5]``."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.scores[index],
            self.class_ids[index],
            self.class_names[index],
            None if self.track_ids is None else self.track_ids[index],
            dict(self.meta),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Detections):
            return NotImplemented
        same_tracks = (self.track_ids is None) == (other.track_ids is None) and (
            self.track_ids is None or np.array_equal(self.track_ids, other.track_ids)
        )
        return bool(
            np.array_equal(self.xyxy, other.xyxy)
            and np.array_equal(self.scores, other.scores)
            and np.array_equal(self.class_ids, other.class_ids)
            and np.array_equal(self.class_names, other.class_names)
            and same_tracks
        )

    @property
    def area(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])

    @property
    def xywh(self) -> np.ndarray:
        """COCO-style (x, y, width, height) boxes."""
        out = self.xyxy.copy()
        out[:, 2:] -= out[:, :2]
        return out

    @property
    def centers(self) -> np.ndarray:
        return (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2

    def filter(
        self, score_threshold: float = 0.0, classes: Iterable[str] | None = None
    ) -> Detections:
        """Boxes with score >= ``score_threshold`` and, if given, a class name in ``classes``."""
        keep = self.scores >= score_threshold
        if classes is not None:
            keep &= np.isin(self.class_names, list(classes))
        return self[keep]

    def split(self, classes: Iterable[str] | None) -> tuple[Detections, Detections]:
        """(boxes of ``classes``, all other boxes); ``None`` keeps everything in the first."""
        if classes is None:
            return self, self[np.zeros(len(self), bool)]
        keep = np.isin(self.class_names, list(classes))
        return self[keep], self[~keep]

    def sorted_by_score(self) -> Detections:
        return self[np.argsort(-self.scores, kind="stable")]

    # --- conversions ---------------------------------------------------------------------
    def to_coco_results(
        self, image_id: int, category_ids: Mapping[str, int] = CATEGORY_ID_BY_NAME
    ) -> list[dict[str, Any]]:
        """COCO results entries (``bbox`` as x, y, w, h; COCO category ids, cow = 21).

        Boxes whose class has no category id in ``category_ids`` are left out: a results file
        can only name categories the dataset has.
        """
        rows = []
        for box, score, name in zip(self.xywh, self.scores, self.class_names):
            if str(name) not in category_ids:
                continue
            rows.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(category_ids[str(name)]),
                    "bbox": [round(float(v), 4) for v in box],
                    "score": round(float(score), 6),
                }
            )
        return rows

    @classmethod
    def from_coco_results(
        cls,
        rows: Iterable[Mapping[str, Any]],
        image_id: int | None = None,
        names_by_category_id: Mapping[int, str] = NAME_BY_CATEGORY_ID,
        classes: Sequence[str] = COCO_CLASSES,
    ) -> Detections:
        """Read COCO results entries (optionally only those of ``image_id``)."""
        boxes, scores, names = [], [], []
        for i, row in enumerate(rows):
            try:
                if image_id is not None and int(row["image_id"]) != int(image_id):
                    continue
                x, y, w, h = (float(v) for v in row["bbox"])
                name = names_by_category_id[int(row["category_id"])]
                score = float(row.get("score", 1.0))
            except (KeyError, TypeError, ValueError) as exc:
                raise CowdemoError(
                    f"COCO results entry {i} is malformed ({exc!r}): each entry needs image_id, "
                    "category_id, bbox [x, y, w, h] and score."
                ) from None
            if w < 0 or h < 0:
                raise CowdemoError(f"COCO results entry {i} has a negative width or height.")
            boxes.append([x, y, x + w, y + h])
            scores.append(score)
            names.append(name)
        index = {name: i for i, name in enumerate(classes)}
        ids = [index.get(n, -1) for n in names]
        return cls(np.asarray(boxes).reshape(-1, 4), scores, ids, names)

    def notebook_view(self, classes: Sequence[str] = COCO_CLASSES) -> dict[str, Any]:
        """The original notebook's detectron2 ``Instances`` fields as plain arrays.

        ``pred_classes`` are contiguous COCO indices (16 = dog, 19 = cow, 0 = person), looked up
        by name so any backend's output reads the same; names outside ``classes`` give -1.
        """
        index = {name: i for i, name in enumerate(classes)}
        return {
            "pred_boxes": self.xyxy.astype(np.float32),
            "scores": self.scores.astype(np.float32),
            "pred_classes": np.asarray([index.get(str(n), -1) for n in self.class_names], np.int64),
        }

    def summary(self) -> str:
        """One line for captions: "2 cow (best 0.97), 1 dog (best 0.41)" or "no boxes"."""
        if not len(self):
            return "no boxes"
        parts = []
        for name in np.unique(self.class_names):
            scores = self.scores[self.class_names == name]
            parts.append((float(scores.max()), f"{len(scores)} {name} (best {scores.max():.2f})"))
        return ", ".join(text for _, text in sorted(parts, reverse=True))

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per box, for tables and CSV."""
        records = []
        for i in range(len(self)):
            x1, y1, x2, y2 = (float(v) for v in self.xyxy[i])
            record = {
                "class": str(self.class_names[i]),
                "score": float(self.scores[i]),
                "x1": x1,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "width": x2 - x1,
                "height": y2 - y1,
            }
            if self.track_ids is not None:
                record["track_id"] = int(self.track_ids[i])
            records.append(record)
        return records


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n, 4) and (m, 4) xyxy boxes, shape (n, m)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
