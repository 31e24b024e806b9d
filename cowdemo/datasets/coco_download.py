"""A local COCO download (``annotations/instances_train2017.json`` + ``train2017/``) filtered by
category names, as a `CocoDataset`: the notebook's "1,968 train2017 images with a cow"::

    cows = load_coco_download("coco/annotations/instances_train2017.json", classes=["cow"])
    len(cows.image_ids)   # 1968 for train2017

Nothing is copied: the dataset's root is the image folder. Only images with at least one box of
the classes are kept, and only the annotations and categories of those classes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from cowdemo.datasets.coco import CocoDataset
from cowdemo.errors import CowdemoError


def default_images_dir(annotations: Path) -> Path | None:
    """COCO's layout: ``annotations/instances_train2017.json`` → ``train2017/`` beside the
    ``annotations`` folder (or inside it, or beside the file)."""
    split = annotations.stem.split("_", 1)[-1]  # instances_train2017 -> train2017
    for candidate in (annotations.parent.parent / split, annotations.parent / split,
                      annotations.parent / "images", annotations.parent):
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    return None


def filter_coco(coco: dict, classes: Sequence[str], where: str) -> dict:
    """Only images with a (non-crowd or crowd) box of ``classes``; only those categories."""
    by_name = {str(c["name"]): int(c["id"]) for c in coco.get("categories", [])}
    missing = [c for c in classes if c not in by_name]
    if missing:
        known = ", ".join(sorted(by_name)[:12]) + (" ..." if len(by_name) > 12 else "")
        raise CowdemoError(f"{where} has no category {', '.join(map(repr, missing))} "
                           f"(it has: {known or 'none'}).")
    keep = {by_name[c] for c in classes}
    annotations = [a for a in coco["annotations"] if int(a["category_id"]) in keep]
    image_ids = {int(a["image_id"]) for a in annotations}
    if not image_ids:
        raise CowdemoError(f"{where} has no box of {', '.join(classes)}.")
    return {
        **{k: v for k, v in coco.items() if k not in ("images", "annotations", "categories")},
        "images": [im for im in coco["images"] if int(im["id"]) in image_ids],
        "annotations": annotations,
        "categories": [c for c in coco["categories"] if int(c["id"]) in keep],
    }


def load_coco_download(
    annotations: str | Path,
    images: str | Path | None = None,
    classes: Sequence[str] = ("cow",),
    name: str | None = None,
    limit: int | None = None,
) -> CocoDataset:
    """The images of ``classes`` in a COCO instances file, read in place from ``images``."""
    path = Path(annotations).expanduser()
    try:
        coco = json.loads(path.read_text())
    except FileNotFoundError:
        raise CowdemoError(f"{path} does not exist: give the instances_*.json file.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CowdemoError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(coco, dict) or not isinstance(coco.get("annotations"), list):
        raise CowdemoError(f"{path} is not a COCO instances file (no annotations list).")
    folder = Path(images).expanduser() if images else default_images_dir(path)
    if folder is None or not folder.is_dir():
        raise CowdemoError(f"Image folder for {path.name} not found: give it with --images "
                           "(COCO's layout: train2017/ beside annotations/).")
    filtered = filter_coco(coco, list(classes), path.name)
    if limit:
        filtered["images"] = sorted(filtered["images"], key=lambda im: int(im["id"]))[:limit]
        kept = {int(im["id"]) for im in filtered["images"]}
        filtered["annotations"] = [a for a in filtered["annotations"]
                                   if int(a["image_id"]) in kept]
    label = name or f"{path.stem.removeprefix('instances_')}-{'-'.join(classes)}"
    return CocoDataset(folder, filtered, label)
