"""Self-describing fine-tuned checkpoints: architecture, classes, base model and metadata travel
with the weights, so the registry can list them and any picker can load them.

File layout (a plain dict that ``torch.load(weights_only=True)`` reads)::

    {"cowdemo_checkpoint": 1, "architecture": "frcnn-r50-fpn", "classes": ["cow"],
     "base_model": "frcnn-r50-fpn-coco", "metadata": {...}, "model": state_dict}
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cowdemo.errors import CowdemoError
from cowdemo.models.torchvision_frcnn import TorchvisionDetector, _load_into, get_architecture
from cowdemo.models.weights import load_state_dict

FORMAT_VERSION = 1
CHECKPOINT_SUFFIXES = (".pt", ".pth")


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    architecture: str
    classes: tuple[str, ...]
    base_model: str
    metadata: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    architecture: str,
    classes: list[str] | tuple[str, ...],
    base_model: str,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write atomically (temp file in the same folder, then rename): a crash mid-write never
    replaces a good checkpoint with a broken one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "cowdemo_checkpoint": FORMAT_VERSION,
        "architecture": architecture,
        "classes": list(classes),
        "base_model": base_model,
        "metadata": dict(metadata or {}),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read(path: Path, mmap: bool) -> dict:
    if mmap:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:
            data = load_state_dict(path, "cowdemo")  # gives the clear error
    else:
        data = load_state_dict(path, "cowdemo")
    if not isinstance(data, dict) or "cowdemo_checkpoint" not in data:
        raise CowdemoError(
            f"{path} is not a cowdemo checkpoint (no architecture and classes inside): "
            "fine-tune with `cowdemo train` or load plain weights with --weights."
        )
    for key in ("architecture", "classes", "model"):
        if key not in data:
            raise CowdemoError(f"{path} is a damaged cowdemo checkpoint: '{key}' is missing.")
    return data


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """Metadata only (memory-mapped, so listing many checkpoints stays fast)."""
    path = Path(path)
    data = _read(path, mmap=True)
    return CheckpointInfo(
        path=path,
        architecture=str(data["architecture"]),
        classes=tuple(str(c) for c in data["classes"]),
        base_model=str(data.get("base_model", "")),
        metadata=dict(data.get("metadata", {})),
    )


def load_checkpoint_detector(path: str | Path, device: str, name: str | None = None):
    """A ready detector from a cowdemo checkpoint; output label k is ``classes[k - 1]``."""
    path = Path(path)
    data = _read(path, mmap=False)
    arch = get_architecture(str(data["architecture"]))
    classes = [str(c) for c in data["classes"]]
    model = arch.build(num_classes=len(classes) + 1)
    _load_into(model, data["model"], path, arch.name)
    label_map = {k + 1: k for k in range(len(classes))}
    return TorchvisionDetector(name or path.stem, model, classes, label_map, device)
