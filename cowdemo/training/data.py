"""Training data: from a `CocoDataset` to checked, clipped, split, shuffled and flipped batches.

``prepare_data`` reads every image once (a corrupt one is skipped and listed, never a crash in
the middle of training), turns the boxes of the chosen classes into training targets (boxes
reaching past the border are clipped, boxes with no area left are rejected; both are listed),
and splits off a held-out set. The batch order is a pure function of (seed, position), so a
resumed run sees exactly the batches the interrupted one would have, on any number of
processes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cowdemo.datasets.coco import CocoDataset
from cowdemo.errors import CowdemoError

#: Problems kept word for word in reports (the counts are always complete).
MAX_LISTED = 50
#: A box narrower or lower than this (pixels, after clipping) is rejected.
MIN_BOX_SIDE = 1.0


@dataclass
class ImageTarget:
    """One training image: where to read it and its boxes in the new model's label space."""

    image_id: int
    width: int
    height: int
    boxes: np.ndarray  # (n, 4) float32 xyxy, inside the image
    labels: np.ndarray  # (n,) int64, 1..K (0 is background)


@dataclass
class DataReport:
    """What preparing the data found: counts and the first problems, word for word."""

    images: int = 0
    train_images: int = 0
    val_images: int = 0
    boxes: dict[str, int] = field(default_factory=dict)
    skipped_images: list[str] = field(default_factory=list)
    clipped_boxes: list[str] = field(default_factory=list)
    rejected_boxes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def note(self, kind: str, message: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        listed = getattr(self, kind)
        if len(listed) < MAX_LISTED:
            listed.append(message)

    def summary(self) -> str:
        parts = [f"{self.train_images} training and {self.val_images} held-out images",
                 ", ".join(f"{n} {c} boxes" for c, n in self.boxes.items())]
        for kind, what in (("skipped_images", "unreadable images skipped"),
                           ("clipped_boxes", "boxes clipped to the image"),
                           ("rejected_boxes", "boxes rejected")):
            if self.counts.get(kind):
                parts.append(f"{self.counts[kind]} {what}")
        return "; ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images, "train_images": self.train_images,
            "val_images": self.val_images, "boxes": dict(self.boxes),
            "skipped_images": list(self.skipped_images),
            "clipped_boxes": list(self.clipped_boxes),
            "rejected_boxes": list(self.rejected_boxes), "counts": dict(self.counts),
            "summary": self.summary(),
        }  # fmt: skip


@dataclass
class PreparedData:
    train: list[ImageTarget]
    val: CocoDataset
    report: DataReport
    dataset: CocoDataset


def _check_classes(dataset: CocoDataset, classes: Sequence[str]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for image_id in dataset.image_ids:
        gt = dataset.ground_truth(image_id)
        counts.update(str(n) for n, crowd in zip(gt.class_names, gt.iscrowd) if not crowd)
    missing = [c for c in classes if counts.get(c, 0) == 0]
    if missing:
        have = ", ".join(f"{n} {c}" for c, n in counts.most_common(8)) or "no boxes at all"
        raise CowdemoError(
            f"Dataset {dataset.name} has no boxes of class {', '.join(map(repr, missing))} "
            f"(it has: {have}): choose classes it has (--classes) or annotate some first."
        )
    return {c: counts[c] for c in classes}


def _image_size(dataset: CocoDataset, image_id: int) -> tuple[int, int] | str:
    """(width, height) of a readable image, else the error message."""
    try:
        rgb = dataset.read_image(image_id)
    except CowdemoError as exc:
        return str(exc)
    return int(rgb.shape[1]), int(rgb.shape[0])


def _targets(
    dataset: CocoDataset, image_id: int, size: tuple[int, int], classes: Sequence[str],
    report: DataReport,
) -> ImageTarget:
    width, height = size
    gt = dataset.ground_truth(image_id)
    label_of = {name: k + 1 for k, name in enumerate(classes)}
    boxes, labels = [], []
    where = f"{dataset.image_path(image_id).name} (image {image_id})"
    for xyxy, name, crowd, ann_id in zip(gt.xyxy, gt.class_names, gt.iscrowd, gt.annotation_ids):
        if crowd or str(name) not in label_of:
            continue  # crowd regions mark "many, unboxed": no single-object target
        clipped = np.clip(xyxy, 0, [width, height, width, height])
        box_text = "[" + ", ".join(f"{v:g}" for v in xyxy) + "]"
        if (clipped[2] - clipped[0] < MIN_BOX_SIDE) or (clipped[3] - clipped[1] < MIN_BOX_SIDE):
            report.note("rejected_boxes", f"{where}: box {ann_id} {box_text} has no area inside "
                        f"the {width}x{height} image")
            continue
        if not np.array_equal(clipped, xyxy):
            report.note("clipped_boxes", f"{where}: box {ann_id} {box_text} clipped to the "
                        f"{width}x{height} image")
        boxes.append(clipped)
        labels.append(label_of[str(name)])
    return ImageTarget(
        image_id, width, height,
        np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64),
    )  # fmt: skip


def split_ids(image_ids: Sequence[int], val_fraction: float, seed: int) -> tuple[list, list]:
    """A seeded held-out split: (train ids, val ids), both sorted; at least one of each."""
    ids = sorted(int(i) for i in image_ids)
    if len(ids) < 2:
        raise CowdemoError(
            f"A dataset with {len(ids)} readable image(s) cannot be split into training and "
            "held-out images: add images or give a separate validation dataset."
        )
    order = np.random.default_rng([seed, 7919]).permutation(len(ids))
    n_val = min(len(ids) - 1, max(1, round(len(ids) * val_fraction)))
    val = sorted(ids[i] for i in order[:n_val])
    train = sorted(ids[i] for i in order[n_val:])
    return train, val


def prepare_data(
    dataset: CocoDataset,
    classes: Sequence[str],
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    val_dataset: CocoDataset | None = None,
    progress=None,
) -> PreparedData:
    """Check images and boxes, build targets, split. Raises CowdemoError when nothing is left
    to learn from (no boxes of the classes, every image unreadable)."""
    report = DataReport(images=len(dataset.image_ids))
    _check_classes(dataset, classes)
    sizes: dict[int, tuple[int, int]] = {}
    for done, image_id in enumerate(dataset.image_ids, start=1):
        size = _image_size(dataset, image_id)
        if isinstance(size, str):
            report.note("skipped_images", size)
        else:
            sizes[image_id] = size
        if progress:
            progress(done, len(dataset.image_ids))
    if not sizes:
        raise CowdemoError(f"No image of dataset {dataset.name} could be read "
                           f"({report.skipped_images[0] if report.skipped_images else 'empty'}).")
    readable = sorted(sizes)
    if val_dataset is None:
        train_ids, val_ids = split_ids(readable, val_fraction, seed)
        val = dataset.subset(val_ids, name=f"{dataset.name}-heldout")
    else:
        train_ids, val = readable, val_dataset
    train = [_targets(dataset, i, sizes[i], classes, report) for i in train_ids]
    boxes = Counter(classes[int(label) - 1] for t in train for label in t.labels)
    if not boxes:
        raise CowdemoError(
            f"After the held-out split and box checks no training image of {dataset.name} has "
            f"a box of {', '.join(classes)}: add annotated images or lower the held-out share."
        )
    report.boxes = {c: int(boxes.get(c, 0)) for c in classes}
    report.train_images, report.val_images = len(train), len(val.image_ids)
    return PreparedData(train, val, report, dataset)


# --- batches ----------------------------------------------------------------------------------
class SampleStream:
    """An endless stream of image indices: epoch after epoch, each a seeded permutation.

    Position ``k`` of the stream is always the same image, so any slice of it can be read
    without state: micro-batch ``q`` is positions ``q * batch .. (q + 1) * batch``, and process
    ``r`` of ``w`` reads micro-batches ``r, r + w, ...``.
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self._cache: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            self._cache = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return self._cache[epoch]

    def __getitem__(self, position: int) -> int:
        return int(self._perm(position // self.n)[position % self.n])

    def flip(self, position: int) -> bool:
        """Whether the sample at ``position`` is flipped (seeded per position)."""
        return bool(np.random.default_rng([self.seed, 104729, position]).random() < 0.5)


class BatchSampler(torch.utils.data.Sampler):
    """Micro-batches of (stream position, image index) for one process, from ``start_micro``
    (the micro-batch count already done by this process), forever."""

    def __init__(self, stream: SampleStream, batch_size: int, start_micro: int, rank: int = 0,
                 world_size: int = 1):
        self.stream, self.batch_size = stream, batch_size
        self.start, self.rank, self.world = start_micro, rank, world_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        micro = self.start
        while True:
            q = micro * self.world + self.rank
            positions = range(q * self.batch_size, (q + 1) * self.batch_size)
            yield [(p, self.stream[p]) for p in positions]
            micro += 1


class TrainSet(torch.utils.data.Dataset):
    """Reads one image (RGB float tensor in [0, 1]) with its target, flipped when the stream
    says so."""

    def __init__(self, dataset: CocoDataset, targets: list[ImageTarget], stream: SampleStream,
                 hflip: bool):
        self.dataset, self.targets, self.stream, self.hflip = dataset, targets, stream, hflip

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        position, index = item
        target = self.targets[index]
        rgb = self.dataset.read_image(target.image_id)
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)
        boxes = torch.from_numpy(target.boxes.copy())
        if self.hflip and self.stream.flip(position):
            image = image.flip(-1)
            boxes = torch.stack([target.width - boxes[:, 2], boxes[:, 1],
                                 target.width - boxes[:, 0], boxes[:, 3]], dim=1)
        return image, {"boxes": boxes.reshape(-1, 4), "labels": torch.from_numpy(target.labels)}


def collate(batch: list) -> tuple[list, list]:
    images, targets = zip(*batch)
    return list(images), list(targets)
