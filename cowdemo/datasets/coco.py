"""`CocoDataset`: the one dataset type every source ends in (the app's store, local COCO
downloads, Deep Lake, the synthetic generator) and every consumer takes (evaluation, training).

A dataset is a folder with ``annotations.json`` (COCO instances format) and its images, with
``file_name`` relative to the folder (``images/x.png``) or to ``images/`` (``x.png``)::

    ds = CocoDataset.load("data/datasets/cows")
    for image in ds.images:
        rgb = ds.read_image(image["id"])
        gt = ds.ground_truth(image["id"])   # GroundTruth: xyxy, class_names, area, iscrowd
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cowdemo import images as image_io
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.files import read_json

ANNOTATIONS_FILE = "annotations.json"


@dataclass
class GroundTruth:
    """The boxes of one image: xyxy pixels, class names, COCO ``area`` and ``iscrowd``."""

    xyxy: np.ndarray
    class_names: np.ndarray
    area: np.ndarray
    iscrowd: np.ndarray
    annotation_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.xyxy)

    def as_detections(self, classes: tuple[str, ...]) -> Detections:
        """The boxes as Detections with score 1 (for drawing and tracking ground truth)."""
        index = {name: i for i, name in enumerate(classes)}
        ids = [index.get(str(n), -1) for n in self.class_names]
        return Detections(self.xyxy, np.ones(len(self)), ids, self.class_names)


@dataclass
class CocoDataset:
    """A COCO-format detection dataset on disk (or in memory with ``root`` for its images)."""

    root: Path
    coco: dict[str, Any]
    name: str = ""
    source: str = field(default="", repr=False, compare=False)  # the JSON file, for messages
    _by_image: dict[int, list[dict]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.name = self.name or self.root.name
        validate_coco(self.coco, self.source or str(self.root / ANNOTATIONS_FILE))
        by_image: dict[int, list[dict]] = defaultdict(list)
        for ann in self.coco["annotations"]:
            by_image[int(ann["image_id"])].append(ann)
        self._by_image = dict(by_image)
        self._images = {int(im["id"]): im for im in self.coco["images"]}
        self._names = {int(c["id"]): str(c["name"]) for c in self.coco["categories"]}

    @classmethod
    def load(cls, root: str | Path, name: str | None = None) -> CocoDataset:
        """Read ``root/annotations.json`` (or a JSON file path, whose folder is the root)."""
        path = Path(root)
        json_path = path if path.suffix == ".json" else path / ANNOTATIONS_FILE
        if not json_path.exists():
            raise CowdemoError(f"{json_path} does not exist: is {path} a dataset folder?")
        coco = read_json(json_path, "COCO annotations file")
        return cls(json_path.parent, coco, name or cls.name_for(path), source=str(json_path))

    @staticmethod
    def name_for(path: str | Path) -> str:
        """The name a dataset loaded from ``path`` gets, which its runs are stored under: the
        folder's name for a folder (or its ``annotations.json``), the file's stem for any other
        COCO JSON file (two ground-truth files in one folder are two datasets)."""
        path = Path(path)
        if path.suffix != ".json":
            return path.name
        return path.parent.name if path.name == ANNOTATIONS_FILE else path.stem

    # --- reading ----------------------------------------------------------------------------
    @property
    def images(self) -> list[dict[str, Any]]:
        return list(self.coco["images"])

    @property
    def image_ids(self) -> list[int]:
        return [int(im["id"]) for im in self.coco["images"]]

    @property
    def categories(self) -> list[dict[str, Any]]:
        return list(self.coco["categories"])

    @property
    def classes(self) -> tuple[str, ...]:
        """Category names in category-id order."""
        return tuple(self._names[k] for k in sorted(self._names))

    @property
    def category_ids(self) -> dict[str, int]:
        return {name: cid for cid, name in self._names.items()}

    def image_info(self, image_id: int) -> dict[str, Any]:
        try:
            return self._images[int(image_id)]
        except KeyError:
            raise CowdemoError(f"Dataset {self.name} has no image with id {image_id}.") from None

    def image_path(self, image_id: int) -> Path:
        file_name = str(self.image_info(image_id)["file_name"])
        for candidate in (self.root / file_name, self.root / "images" / file_name):
            if candidate.is_file():
                return candidate
        return self.root / file_name

    def read_image(self, image_id: int) -> np.ndarray:
        """The image as RGB uint8 (CowdemoError if missing or corrupt)."""
        return image_io.load(self.image_path(image_id))

    def annotations(self, image_id: int) -> list[dict[str, Any]]:
        return list(self._by_image.get(int(image_id), []))

    def ground_truth(self, image_id: int) -> GroundTruth:
        anns = self.annotations(image_id)
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return GroundTruth(
            xyxy=boxes,
            class_names=np.array([self._names[int(a["category_id"])] for a in anns], dtype=str),
            area=np.array(
                [a.get("area", a["bbox"][2] * a["bbox"][3]) for a in anns], dtype=np.float64
            ),
            iscrowd=np.array([int(a.get("iscrowd", 0)) for a in anns], dtype=np.int64),
            annotation_ids=np.array([int(a["id"]) for a in anns], dtype=np.int64),
        )

    def num_boxes(self, class_name: str | None = None) -> int:
        if class_name is None:
            return len(self.coco["annotations"])
        cid = self.category_ids.get(class_name)
        return sum(1 for a in self.coco["annotations"] if a["category_id"] == cid)

    def content_hash(self) -> str:
        """sha256 over the annotations (canonical JSON) and every image file's bytes: equal
        hashes mean equal data, whatever the folder."""
        digest = hashlib.sha256()
        canonical = {k: self.coco[k] for k in ("images", "annotations", "categories")}
        digest.update(json.dumps(canonical, sort_keys=True).encode())
        for image_id in sorted(self.image_ids):
            path = self.image_path(image_id)
            digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        return digest.hexdigest()

    def subset(self, image_ids: list[int], name: str | None = None) -> CocoDataset:
        """The same dataset restricted to ``image_ids`` (images stay where they are)."""
        keep = {int(i) for i in image_ids}
        coco = dict(self.coco)
        coco["images"] = [im for im in self.coco["images"] if int(im["id"]) in keep]
        coco["annotations"] = [a for a in self.coco["annotations"] if int(a["image_id"]) in keep]
        return CocoDataset(self.root, coco, name or self.name)


def validate_coco(coco: Any, where: str = "COCO JSON") -> None:
    """Raise one CowdemoError for the first structural problem (full reports live in
    ``cowdemo.datasets.formats``)."""
    if not isinstance(coco, dict):
        raise CowdemoError(f"{where}: expected a JSON object with images, annotations, categories.")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise CowdemoError(f"{where}: '{key}' is missing or not a list.")
    try:
        image_ids = {int(im["id"]) for im in coco["images"]}
        category_ids = {int(c["id"]) for c in coco["categories"]}
        for c in coco["categories"]:
            str(c["name"])
        for im in coco["images"]:
            str(im["file_name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CowdemoError(f"{where}: an image or category entry is malformed ({exc!r}).") from None
    for i, ann in enumerate(coco["annotations"]):
        problem = _annotation_problem(ann, image_ids, category_ids)
        if problem:
            raise CowdemoError(f"{where}: annotation {i} {problem}.")


def _annotation_problem(ann: Any, image_ids: set[int], category_ids: set[int]) -> str:
    """What is wrong with one COCO annotation, or "" when nothing is."""
    if not isinstance(ann, dict):
        return "is not an object"
    for key in ("image_id", "category_id", "bbox"):
        if key not in ann:
            return f"has no '{key}'"
    try:
        image_id, category_id = int(ann["image_id"]), int(ann["category_id"])
    except (TypeError, ValueError):
        return "has an image_id or category_id that is not a number"
    if image_id not in image_ids:
        return f"names image_id {image_id}, which is not among the images"
    if category_id not in category_ids:
        return f"names category_id {category_id}, which is not among the categories"
    bbox = ann["bbox"]
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return f"has bbox {bbox!r}: expected [x, y, width, height]"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
        return f"has bbox {bbox!r}: expected 4 numbers"
    return ""
