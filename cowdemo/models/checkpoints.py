"""Self-describing fine-tuned checkpoints: architecture, classes, base model and metadata travel
with the weights, so the registry can list them and any picker can load them.

File layout (a plain dict that ``torch.load(weights_only=True)`` reads)::

    {"cowdemo_checkpoint": 1, "architecture": "frcnn-r50-fpn", "classes": ["cow"],
     "base_model": "frcnn-r50-fpn-coco", "metadata": {...}, "model": state_dict}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cowdemo.errors import CowdemoError
from cowdemo.files import atomic_write_with
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
    payload = {
        "cowdemo_checkpoint": FORMAT_VERSION,
        "architecture": architecture,
        "classes": list(classes),
        "base_model": base_model,
        "metadata": dict(metadata or {}),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return atomic_torch_save(payload, path)


def atomic_torch_save(payload: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` through :func:`cowdemo.files.atomic_write_with`: a crash or a full disk
    mid-write never replaces a good checkpoint with a broken one (OSError is raised as is)."""
    return atomic_write_with(path, lambda handle: torch.save(payload, handle))


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
    problem = _field_problem(data)
    if problem:
        raise CowdemoError(f"{path} is a damaged cowdemo checkpoint: {problem}.")
    return data


def _field_problem(data: dict) -> str:
    """What is wrong with a checkpoint's fields (types and architecture), or ""."""
    classes = data["classes"]
    if not isinstance(classes, (list, tuple)) or not classes or not all(
        isinstance(c, str) and c for c in classes
    ):
        return f"'classes' must be a non-empty list of class names, not {classes!r:.60}"
    if not isinstance(data["architecture"], str):
        return f"'architecture' must be a name, not {data['architecture']!r:.60}"
    from cowdemo.models.yolox_torch import SIZES, architecture_name

    yolox = {architecture_name(size) for size in SIZES}
    if data["architecture"] not in yolox:
        try:
            get_architecture(data["architecture"])
        except CowdemoError as exc:
            return str(exc).rstrip(".").replace(": choose one of ", ": choose one of "
                                                + ", ".join(sorted(yolox)) + ", ")
    if not isinstance(data.get("metadata", {}), dict):
        return f"'metadata' must be a mapping, not {data['metadata']!r:.60}"
    if not isinstance(data.get("base_model", ""), str):
        return "'base_model' must be a name"
    if not isinstance(data["model"], dict):
        return "'model' must be a state dict of tensors"
    return ""


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


def read_checkpoint(path: str | Path) -> dict:
    """The whole checkpoint (weights included) as the plain dict described above."""
    return _read(Path(path), mmap=False)


def apply_inference_settings(model: torch.nn.Module, metadata: dict[str, Any]) -> None:
    """The input size a fine-tune learned at (``metadata["inference"]``, written by
    ``cowdemo.training``): a model trained on 320-pixel images is run on 320-pixel images."""
    settings = metadata.get("inference") or {}
    if "min_size" in settings:
        model.transform.min_size = (int(settings["min_size"]),)
    if "max_size" in settings:
        model.transform.max_size = int(settings["max_size"])


def load_checkpoint_detector(path: str | Path, device: str, name: str | None = None):
    """A ready detector from a cowdemo checkpoint; output label k is ``classes[k - 1]``."""
    path = Path(path)
    data = _read(path, mmap=False)
    arch = get_architecture(str(data["architecture"]))
    classes = [str(c) for c in data["classes"]]
    model = arch.build(num_classes=len(classes) + 1)
    _load_into(model, data["model"], path, arch.name)
    apply_inference_settings(model, dict(data.get("metadata", {})))
    label_map = {k + 1: k for k in range(len(classes))}
    return TorchvisionDetector(name or path.stem, model, classes, label_map, device)
