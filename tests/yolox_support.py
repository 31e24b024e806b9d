"""Shared by the YOLOX tests: the shared YOLOX-Nano ONNX export rebuilt in PyTorch once per test
session (each caller gets its own copy), and Megvii-format weights files made from it."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import torch
from helpers import shared_path

ONNX = "models/yolox-nano/yolox_nano.onnx"


@lru_cache(maxsize=1)
def _nano():
    from cowdemo.models.yolox_torch import module_from_onnx

    return module_from_onnx(shared_path(ONNX))


def nano_from_onnx():
    """(module, info) of the shared export: a fresh copy per call (skips where it is absent)."""
    module, info = _nano()
    return copy.deepcopy(module), info


def write_official_nano(folder: Path) -> Path:
    """``folder/yolox_nano.pth`` in the layout of Megvii's release files ({"model": ...}),
    holding the shared export's COCO weights."""
    module, _ = nano_from_onnx()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "yolox_nano.pth"
    torch.save({"model": module.state_dict(), "start_epoch": 300}, path)
    return path
