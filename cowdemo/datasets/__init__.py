"""Datasets: the `CocoDataset` type, the app's store, formats, and the synthetic generator."""

from __future__ import annotations

from pathlib import Path

from cowdemo.datasets.coco import CocoDataset


def open_dataset(name_or_path: str | Path) -> CocoDataset:
    """A dataset folder (or COCO JSON file) by path, else a dataset of the app's store by name."""
    path = Path(name_or_path)
    if path.exists():
        return CocoDataset.load(path)
    from cowdemo.datasets.store import DatasetStore

    return DatasetStore().get(str(name_or_path))


__all__ = ["CocoDataset", "open_dataset"]
