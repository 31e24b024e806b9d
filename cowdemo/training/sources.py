"""Where training data comes from; every source ends in a `CocoDataset`:

- a dataset made in the app (the dataset store, by name);
- a dataset folder (``annotations.json`` + images) or a COCO JSON file inside its folder;
- a local COCO download: ``instances_train2017.json`` (+ ``--images train2017/``), filtered
  to the images with a box of the chosen classes;
- Deep Lake: ``hub://activeloop/coco-train`` (with a network) or a local Deep Lake folder;
- ``synthetic[:N[:WIDTHxHEIGHT]]``: the built-in generator (N images, default 200 at 320x240).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from cowdemo.datasets.coco import ANNOTATIONS_FILE, CocoDataset
from cowdemo.errors import CowdemoError

SYNTHETIC = re.compile(r"^synthetic(?::(\d+))?(?::(\d+)x(\d+))?(?::seed=(\d+))?$")


def synthetic_dataset(n: int = 200, width: int = 320, height: int = 240,
                      seed: int = 0) -> CocoDataset:
    """A synthetic cows dataset under ``<data>/synthetic/`` (made once, then re-read)."""
    from cowdemo.datasets.synthetic import make_dataset
    from cowdemo.training.locks import data_dir

    folder = data_dir() / "synthetic" / f"cows-{n}-{width}x{height}-seed{seed}"
    if not (folder / ANNOTATIONS_FILE).is_file():
        make_dataset(folder, n_images=n, seed=seed, width=width, height=height)
    return CocoDataset.load(folder, name=folder.name)


def _is_instances_file(path: Path) -> bool:
    if path.suffix != ".json" or not path.is_file():
        return False
    if path.name.startswith("instances_"):
        return True
    try:
        head = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(head, dict) and len(head.get("categories", [])) > 1


def open_training_dataset(
    spec: str | Path,
    classes: Sequence[str],
    images: str | Path | None = None,
    *,
    limit: int | None = None,
    is_main: bool = True,
    barrier: Callable[[], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CocoDataset:
    """Resolve a ``--dataset`` value to a CocoDataset (see the module docstring).
    ``progress(done, total)`` follows a Deep Lake import (the one source that can take
    minutes: it downloads)."""
    text = str(spec).strip()
    if not text:
        raise CowdemoError("Choose a dataset to train on (--dataset NAME or FOLDER).")
    match = SYNTHETIC.match(text)
    if match:
        n, w, h, seed = match.groups()
        return _once(lambda: synthetic_dataset(int(n or 200), int(w or 320), int(h or 240),
                                               int(seed or 0)), is_main, barrier)
    from cowdemo.datasets.deeplake_hub import import_deeplake, is_deeplake_source

    if is_deeplake_source(text):
        return _once(lambda: import_deeplake(text, classes, limit=limit, progress=progress),
                     is_main, barrier)
    path = Path(text).expanduser()
    if images is not None or _is_instances_file(path):
        from cowdemo.datasets.coco_download import load_coco_download

        return load_coco_download(path, images, classes, limit=limit)
    from cowdemo.datasets import open_dataset

    if not path.exists() and (len(path.parts) > 1 or path.suffix):
        raise CowdemoError(f"Dataset {text} not found: give a dataset name, a folder with "
                           f"{ANNOTATIONS_FILE}, a COCO instances JSON or a Deep Lake path.")
    try:
        dataset = open_dataset(text)
    except ImportError:
        raise CowdemoError(
            f"Dataset {text} is not a folder, and the dataset store is not available to "
            "look it up by name: give the dataset's folder."
        ) from None
    return dataset.subset(dataset.image_ids[:limit]) if limit else dataset


def check_source(spec: str | Path) -> None:
    """A quick check that ``spec`` can name a dataset (before a job is started for it): the
    slow part (reading, importing, downloading) is left to the job."""
    from cowdemo.datasets.deeplake_hub import REMOTE_PREFIXES

    text = str(spec).strip()
    if not text:
        raise CowdemoError("Choose a dataset to train on (--dataset NAME or FOLDER).")
    if SYNTHETIC.match(text) or text.startswith(REMOTE_PREFIXES):
        return
    path = Path(text).expanduser()
    if path.exists():
        return
    if len(path.parts) > 1 or path.suffix:
        raise CowdemoError(f"Dataset {text} not found: give a dataset name, a folder with "
                           f"{ANNOTATIONS_FILE}, a COCO instances JSON or a Deep Lake path.")
    from cowdemo.datasets.store import DatasetStore

    store = DatasetStore()
    if not store.exists(text):
        known = ", ".join(store.names()) or "none yet"
        raise CowdemoError(f"There is no dataset named '{text}' (datasets: {known}): give a "
                           "dataset name, a folder or a path.")


def _once(make: Callable[[], CocoDataset], is_main: bool,
          barrier: Callable[[], None] | None) -> CocoDataset:
    """Make (write) on the main process first, then read on the others (DDP)."""
    if is_main:
        try:
            return make()
        finally:
            if barrier:
                barrier()
    if barrier:
        barrier()
    return make()
