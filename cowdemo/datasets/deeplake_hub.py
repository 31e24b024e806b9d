"""Deep Lake (Activeloop hub) datasets → `CocoDataset`, as the notebook did with
``hub.load('hub://activeloop/coco-train').filter("categories in ['cow']")``::

    cows = import_deeplake("hub://activeloop/coco-train", classes=["cow"])   # needs a network
    local = import_deeplake("/data/my-deeplake-ds", classes=["cow"])         # any v3 dataset

Uses the Deep Lake v3 API (``deeplake<4``; ``hub`` 3.x is only an alias of it; deeplake 4
cannot open the Activeloop COCO datasets, deeplake issue #3076). The tensors are found by
htype: ``image`` (images), ``bbox`` (boxes; the ``coords`` info says LTWH / LTRB / CCWH, pixel
or fractional; COCO's is LTWH pixel) and ``class_label`` (categories, names in
``info.class_names``); an ``iscrowd``/``iscrowds`` tensor is used when present. Samples with at
least one box of the classes are written once, images as their stored (JPEG/PNG) bytes, to
``<data>/imported/<source>-<classes>/``; a second call reads that folder.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cowdemo import images as image_io
from cowdemo.datasets.coco import ANNOTATIONS_FILE, CocoDataset
from cowdemo.errors import CowdemoError
from cowdemo.files import atomic_write_bytes

REMOTE_PREFIXES = ("hub://", "s3://", "gcs://", "gs://", "az://", "azure://", "mem://")
Progress = Callable[[int, int], None]


def is_deeplake_source(spec: str | Path) -> bool:
    """A hub:// (or cloud) URL, or a local folder holding a Deep Lake dataset."""
    text = str(spec)
    return text.startswith(REMOTE_PREFIXES) or (Path(text) / "dataset_meta.json").is_file()


def _import_deeplake():
    try:
        with warnings.catch_warnings():
            # deeplake 3 checks PyPI on import and advises `pip install -U deeplake`, which
            # would install 4.x: the version that cannot open these datasets. Not shown.
            warnings.filterwarnings("ignore", message="A newer version of deeplake")
            import deeplake
    except ImportError:
        raise CowdemoError(
            "Deep Lake is not installed: pip install 'deeplake<4' (the v3 API; hub 3.x is an "
            "alias of it)."
        ) from None
    major = int(str(deeplake.__version__).split(".")[0])
    if major >= 4:
        raise CowdemoError(
            f"deeplake {deeplake.__version__} cannot open Activeloop's hub datasets (deeplake "
            "issue #3076) and has another API: pip install 'deeplake<4'."
        )
    return deeplake


def _pick(ds, htype: str, preferred: Sequence[str]) -> Any:
    tensors = ds.tensors
    for name in preferred:
        if name in tensors and tensors[name].htype == htype:
            return tensors[name]
    found = [t for t in tensors.values() if t.htype == htype]
    if not found:
        raise CowdemoError(
            f"The Deep Lake dataset has no {htype} tensor (tensors: {', '.join(tensors)})."
        )
    return found[0]


def to_xywh(boxes: np.ndarray, coords: dict[str, Any], width: int, height: int) -> np.ndarray:
    """Deep Lake bbox values → COCO [x, y, w, h] pixels."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    mode = str(coords.get("mode", "LTWH")).upper()
    if coords.get("type", "pixel") == "fractional":
        boxes = boxes * [width, height, width, height]
    if mode == "LTRB":
        boxes = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
    elif mode == "CCWH":
        boxes = np.column_stack([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, 2:]])
    elif mode != "LTWH":
        raise CowdemoError(f"Unknown Deep Lake box mode {mode!r} (expected LTWH, LTRB or CCWH).")
    return boxes


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[-80:] or "dataset"


def default_import_dir(source: str, classes: Sequence[str]) -> Path:
    from cowdemo.training.locks import data_dir

    return data_dir() / "imported" / f"{_slug(source)}-{_slug('-'.join(classes))}"


def _cached(folder: Path, source: str, classes: Sequence[str], limit: int | None):
    try:
        coco = json.loads((folder / ANNOTATIONS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    info = coco.get("info", {})
    if (info.get("source") == source and info.get("classes") == list(classes)
            and info.get("limit") == limit):
        return CocoDataset(folder, coco, folder.name)
    return None


def _image_bytes(sample, compression: str | None) -> tuple[bytes, str]:
    if compression in ("jpeg", "jpg", "png"):
        return sample.tobytes(), ".jpg" if compression in ("jpeg", "jpg") else ".png"
    array = np.asarray(sample.numpy())
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return image_io.encode_png(array[..., :3].astype(np.uint8)), ".png"


def import_deeplake(
    source: str | Path,
    classes: Sequence[str] = ("cow",),
    out_dir: str | Path | None = None,
    limit: int | None = None,
    token: str | None = None,
    progress: Progress | None = None,
) -> CocoDataset:
    """The samples of ``source`` with a box of ``classes`` as a COCO folder (made once)."""
    source = str(source)
    classes = list(classes)
    folder = Path(out_dir) if out_dir else default_import_dir(source, classes)
    cached = _cached(folder, source, classes, limit)
    if cached is not None:
        return cached
    deeplake = _import_deeplake()
    try:
        ds = deeplake.load(source, read_only=True, verbose=False, token=token)
    except Exception as exc:  # network, auth and format errors come in many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CowdemoError(f"Deep Lake dataset {source} cannot be opened ({first}).") from None
    images = _pick(ds, "image", ("images", "image"))
    boxes = _pick(ds, "bbox", ("boxes", "bbox", "bounding_boxes"))
    labels = _pick(ds, "class_label", ("categories", "labels", "category"))
    crowd = next((ds.tensors[n] for n in ("iscrowds", "iscrowd") if n in ds.tensors), None)
    names = [str(n) for n in (labels.info.class_names or [])]
    missing = [c for c in classes if c not in names]
    if missing:
        raise CowdemoError(f"Deep Lake dataset {source} has no class "
                           f"{', '.join(map(repr, missing))} (it has: {', '.join(names[:12])}).")
    wanted = {names.index(c) for c in classes}
    label_lists = labels.numpy(aslist=True)
    chosen = [i for i, row in enumerate(label_lists)
              if wanted & {int(v) for v in np.asarray(row).reshape(-1)}]
    if limit:
        chosen = chosen[:limit]
    if not chosen:
        raise CowdemoError(f"Deep Lake dataset {source} has no sample with {', '.join(classes)}.")
    coords = dict(boxes.info.get("coords", {}) or {})
    compression = images.meta.sample_compression
    category_id = {names.index(c): k + 1 for k, c in enumerate(classes)}
    coco: dict[str, Any] = {
        "info": {"description": f"{', '.join(classes)} from Deep Lake {source}",
                 "source": source, "classes": classes, "limit": limit},
        "images": [], "annotations": [],
        "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)],
    }  # fmt: skip
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for done, index in enumerate(chosen, start=1):
        sample = images[index]
        height, width = (int(v) for v in sample.shape[:2])
        data, suffix = _image_bytes(sample, compression)
        file_name = f"images/{index:07d}{suffix}"
        atomic_write_bytes(folder / file_name, data)
        image_id = index + 1
        coco["images"].append({"id": image_id, "file_name": file_name, "width": width,
                               "height": height, "deeplake_index": index})
        row_labels = np.asarray(label_lists[index]).reshape(-1).astype(int)
        xywh = to_xywh(boxes[index].numpy(), coords, width, height)
        crowd_row = (np.asarray(crowd[index].numpy()).reshape(-1) if crowd is not None
                     else np.zeros(len(row_labels)))
        for k, (label, box) in enumerate(zip(row_labels, xywh)):
            if int(label) not in category_id:
                continue
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": image_id,
                "category_id": category_id[int(label)], "bbox": [float(v) for v in box],
                "area": float(box[2] * box[3]),
                "iscrowd": int(crowd_row[k]) if k < len(crowd_row) else 0,
            })  # fmt: skip
        if progress:
            progress(done, len(chosen))
    atomic_write_bytes(folder / ANNOTATIONS_FILE, json.dumps(coco).encode())
    return CocoDataset(folder, coco, folder.name)

