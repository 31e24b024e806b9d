"""Datasets: the `CocoDataset` type, the app's store, formats, and the synthetic generator."""

from __future__ import annotations

from pathlib import Path

from cowdemo.datasets.coco import CocoDataset


def open_dataset(name_or_path: str | Path, store=None) -> CocoDataset:
    """A dataset folder (or COCO JSON file) by path, else the images marked done of a dataset
    of the app's store by name (an image nobody has annotated yet is not ground truth). The
    sample dataset ``synthetic-sample`` is made on first use, as the app's pages do."""
    path = Path(name_or_path)
    if store is None and path.exists():
        return CocoDataset.load(path)
    from cowdemo.datasets.store import SAMPLE_NAME, DatasetStore
    from cowdemo.errors import CowdemoError

    store = store or DatasetStore()
    if str(name_or_path) == SAMPLE_NAME:
        store.ensure_sample()
    dataset = store.annotated(str(name_or_path))
    if not dataset.image_ids:
        raise CowdemoError(
            f"Dataset {name_or_path} has no image marked done yet: annotate some on the "
            "Annotate page (or import labelled data)."
        )
    return dataset


def dataset_name(name_or_path: str | Path) -> str:
    """The name runs of ``name_or_path`` are stored under, the same whichever way the dataset
    was given to `cowdemo evaluate` or `cowdemo check`: a folder or COCO JSON file by the name
    :meth:`CocoDataset.name_for` gives it, anything else taken as a stored dataset's name."""
    path = Path(name_or_path)
    return CocoDataset.name_for(path) if path.exists() else str(name_or_path)


__all__ = ["CocoDataset", "dataset_name", "open_dataset"]
