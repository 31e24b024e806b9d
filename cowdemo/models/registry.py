"""The model registry: every detector by name, with whether it is ready and, if not, why.

Sources, in the order they are listed:
- built-in torchvision COCO models (weights found locally or downloaded on first use);
- built-in YOLOX COCO models in PyTorch (Megvii's official ``.pth``, found or downloaded alike);
- fine-tuned cowdemo checkpoints in ``checkpoints/`` (self-describing);
- ONNX detectors in YOLOX export format in ``checkpoints/`` (or given by path);
- detectron2's model-zoo Faster R-CNN when detectron2 is importable.

Loading goes through one table of loaders keyed by ``kind``, not an if-chain.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from cowdemo.coco import COCO_CLASSES
from cowdemo.devices import resolve_device
from cowdemo.errors import CowdemoError
from cowdemo.models.base import Detector
from cowdemo.models.checkpoints import (
    CHECKPOINT_SUFFIXES,
    load_checkpoint_detector,
    read_checkpoint_info,
)
from cowdemo.models.detectron2_backend import Detectron2Detector, detectron2_available
from cowdemo.models.torchvision_frcnn import ARCHITECTURES, load_coco_detector
from cowdemo.models.weights import (
    checkpoints_dir,
    missing_weights_message,
    offline,
    resolve_weights,
    torch_cache_dir,
)

READY, MISSING, UNAVAILABLE = "ready", "weights missing", "unavailable"


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the registry."""

    name: str
    kind: str  # "torchvision-coco" | "yolox-coco" | "checkpoint" | "onnx-yolox" | "detectron2"
    description: str
    classes: tuple[str, ...]
    status: str
    reason: str = ""
    path: Path | None = None
    architecture: str = ""
    base_model: str = ""
    url: str = ""
    metadata: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def available(self) -> bool:
        return self.status != UNAVAILABLE


BUILTIN_COCO = {
    "frcnn-r50-fpn-coco": "frcnn-r50-fpn",
    "frcnn-r50-fpn-v2-coco": "frcnn-r50-fpn-v2",
    "frcnn-mobilenet-v3-coco": "frcnn-mobilenet-v3",
}
#: YOLOX COCO models in PyTorch (pixeltable-yolox): registry name -> YOLOX size.
BUILTIN_YOLOX = {"yolox-nano-coco": "nano", "yolox-tiny-coco": "tiny", "yolox-s-coco": "s"}
DETECTRON2_NAME = "d2-frcnn-r50-fpn-3x-coco"
DEFAULT_MODEL = "frcnn-r50-fpn-coco"


def _weights_status(name: str, url: str, folder: Path) -> tuple[str, str, Path | None]:
    """(status, reason, local file) of a built-in model whose weights file is ``url``'s: ready
    when the file is in ``folder`` or torch's cache, else downloaded on first use or, offline,
    unavailable with the exact file to put where."""
    filename = Path(urlparse(url).path).name
    local = next(
        (p for p in (folder / filename, torch_cache_dir() / filename) if p.is_file()), None
    )
    reason = missing_weights_message(name, filename, url, folder)
    if local is not None:
        return READY, "", local
    if offline():
        return UNAVAILABLE, reason, None
    return MISSING, reason + " (downloaded on first use when online)", None


def _builtin_specs(folder: Path) -> list[ModelSpec]:
    specs = []
    for name, arch_name in BUILTIN_COCO.items():
        arch = ARCHITECTURES[arch_name]
        status, reason, local = _weights_status(name, arch.coco_url, folder)
        specs.append(
            ModelSpec(name, "torchvision-coco",
                      f"{arch.description}; COCO box AP {arch.coco_box_ap}", COCO_CLASSES,
                      status, reason, local, arch_name, url=arch.coco_url)
        )  # fmt: skip
    return specs


def _builtin_yolox_specs(folder: Path) -> list[ModelSpec]:
    from cowdemo.models.yolox_torch import SIZES, architecture_name, yolox_available

    ok, why = yolox_available()
    specs = []
    for name, size_name in BUILTIN_YOLOX.items():
        size = SIZES[size_name]
        status, reason, local = _weights_status(name, size.url, folder)
        if not ok:
            status, reason = UNAVAILABLE, why
        specs.append(
            ModelSpec(name, "yolox-coco", f"YOLOX-{size_name.capitalize()} in PyTorch "
                      f"({size.input_size} px); COCO box AP {size.coco_ap}", COCO_CLASSES,
                      status, reason, local, architecture_name(size_name), url=size.url)
        )
    return specs


def _yolox_weight_files() -> set[str]:
    from cowdemo.models.yolox_torch import SIZES

    return {Path(urlparse(s.url).path).name for s in SIZES.values()}


def _coco_weight_files() -> set[str]:
    return {Path(urlparse(a.coco_url).path).name for a in ARCHITECTURES.values()} | \
        _yolox_weight_files()


def _checkpoint_specs(folder: Path) -> list[ModelSpec]:
    specs = []
    plain_weights = _coco_weight_files()
    for path in sorted(p for p in folder.glob("*") if p.suffix in CHECKPOINT_SUFFIXES):
        if path.name in plain_weights:
            continue
        try:
            info = read_checkpoint_info(path)
            metrics = info.metadata.get("metrics", {})
            metrics = metrics if isinstance(metrics, dict) else {}
        except Exception as exc:  # one bad file is that model unavailable, never a broken list
            reason = str(exc) if isinstance(exc, CowdemoError) else (
                f"{path} could not be read ({type(exc).__name__}: {exc})")
            specs.append(
                ModelSpec(path.stem, "checkpoint", "unreadable checkpoint", (), UNAVAILABLE,
                          reason, path)
            )
            continue
        summary = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float))
        specs.append(
            ModelSpec(
                path.stem,
                "checkpoint",
                f"fine-tuned {info.architecture} from {info.base_model or '?'} on "
                f"{', '.join(info.classes)}" + (f" ({summary})" if summary else ""),
                info.classes,
                READY,
                "",
                path,
                info.architecture,
                info.base_model,
                metadata=info.metadata,
            )
        )
    return specs


def _onnx_specs(folder: Path) -> list[ModelSpec]:
    return [
        ModelSpec(
            path.stem,
            "onnx-yolox",
            f"YOLOX ONNX export ({path.name}), onnxruntime",
            COCO_CLASSES,
            READY,
            "",
            path,
        )
        for path in sorted(folder.glob("*.onnx"))
    ]


def _detectron2_specs() -> list[ModelSpec]:
    ok, reason = detectron2_available()
    return [
        ModelSpec(
            DETECTRON2_NAME,
            "detectron2",
            "detectron2 faster_rcnn_R_50_FPN_3x (the original notebook's model), COCO box AP 40.2",
            COCO_CLASSES,
            READY if ok else UNAVAILABLE,
            reason,
        )
    ]


def list_models(folder: Path | None = None) -> list[ModelSpec]:
    """Every model the registry knows, ready or not, with the reason when not."""
    folder = Path(folder) if folder else checkpoints_dir()
    return (
        _builtin_specs(folder)
        + _builtin_yolox_specs(folder)
        + _checkpoint_specs(folder)
        + _onnx_specs(folder)
        + _detectron2_specs()
    )


def _is_model_path(name: str) -> bool:
    path = Path(name).expanduser()
    return path.suffix in (".onnx", *CHECKPOINT_SUFFIXES) and (path.exists() or os.sep in name)


def model_name(name_or_path: str) -> str:
    """The name runs of a model are stored under: a model file's stem, else the name given."""
    return Path(name_or_path).stem if _is_model_path(name_or_path) else name_or_path


def find_model(name: str, folder: Path | None = None) -> ModelSpec:
    """A registry entry by name, or an entry for a file path (.onnx or cowdemo checkpoint)."""
    path = Path(name).expanduser()
    if _is_model_path(name):
        if not path.is_file():
            raise CowdemoError(f"Model file {path} does not exist.")
        if path.suffix == ".onnx":
            return ModelSpec(path.stem, "onnx-yolox", f"YOLOX ONNX {path.name}", COCO_CLASSES,
                             READY, "", path)
        info = read_checkpoint_info(path)
        return ModelSpec(path.stem, "checkpoint", f"fine-tuned {info.architecture}",
                         info.classes, READY, "", path, info.architecture, info.base_model,
                         metadata=info.metadata)
    specs = list_models(folder)
    for spec in specs:
        if spec.name == name:
            return spec
    raise CowdemoError(
        f"Unknown model {name!r}: choose one of {', '.join(s.name for s in specs)} "
        "(`cowdemo models` lists them), or give a path to an .onnx or .pt file."
    )


def _load_torchvision_coco(spec: ModelSpec, device: str, weights: str | None) -> Detector:
    path = resolve_weights(spec.name, spec.url, explicit=weights or spec.path)
    return load_coco_detector(spec.name, spec.architecture, path, device)


def _load_yolox_coco(spec: ModelSpec, device: str, weights: str | None) -> Detector:
    from cowdemo.models.yolox_torch import (
        YoloxTorchDetector,
        module_from_pth,
        size_of_architecture,
    )

    size = size_of_architecture(spec.architecture)
    path = resolve_weights(spec.name, spec.url, explicit=weights or spec.path)
    module = module_from_pth(size.name, path)
    return YoloxTorchDetector(spec.name, module, COCO_CLASSES, size.input_size, device)


def _load_checkpoint(spec: ModelSpec, device: str, weights: str | None) -> Detector:
    if spec.architecture.startswith("yolox-"):  # a YOLOX fine-tune
        from cowdemo.models.yolox_torch import load_yolox_checkpoint_detector

        return load_yolox_checkpoint_detector(weights or spec.path, device, name=spec.name)
    return load_checkpoint_detector(weights or spec.path, device, name=spec.name)


def _load_onnx(spec: ModelSpec, device: str, weights: str | None) -> Detector:
    from cowdemo.models.yolox_onnx import YoloxOnnxDetector

    return YoloxOnnxDetector(weights or spec.path, device=device, name=spec.name)


def _load_detectron2(spec: ModelSpec, device: str, weights: str | None) -> Detector:
    return Detectron2Detector(spec.name, device=device, weights=weights)


LOADERS: dict[str, Callable[[ModelSpec, str, str | None], Detector]] = {
    "torchvision-coco": _load_torchvision_coco,
    "yolox-coco": _load_yolox_coco,
    "checkpoint": _load_checkpoint,
    "onnx-yolox": _load_onnx,
    "detectron2": _load_detectron2,
}


def load_detector(
    name: str,
    device: str = "auto",
    weights: str | None = None,
    folder: Path | None = None,
) -> Detector:
    """Load a detector by registry name or file path on ``device`` ("auto", "cpu", "cuda")."""
    spec = find_model(name, folder)
    if spec.status == UNAVAILABLE and not (weights and spec.kind in ("torchvision-coco",
                                                                     "yolox-coco")):
        if spec.kind == "checkpoint":  # a bad file in checkpoints/: say which model it is
            raise CowdemoError(f"Model {spec.name} is unavailable: {spec.reason}")
        raise CowdemoError(spec.reason or f"Model {spec.name} is unavailable.")
    return LOADERS[spec.kind](spec, resolve_device(device), weights)
