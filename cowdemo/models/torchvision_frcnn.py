"""torchvision Faster R-CNN backends: the notebook's R50-FPN (COCO), its v2, MobileNet-v3, and
fine-tuned checkpoints of any of them.

COCO models output COCO category ids (1..90, cow = 21); they are mapped to the contiguous
0..79 space (cow = 19) with names kept. Fine-tuned models output 1..K for their own classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cowdemo.coco import COCO_CLASSES, CONTIGUOUS_BY_CATEGORY_ID
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.models.base import Detector
from cowdemo.models.weights import load_state_dict


@dataclass(frozen=True)
class Architecture:
    """A torchvision detection architecture, buildable offline with any number of classes."""

    name: str
    builder_name: str  # in torchvision.models.detection, imported when a network is built
    coco_url: str  # torchvision's COCO_V1 weights (tests check it against torchvision's enum)
    coco_box_ap: float
    description: str

    @property
    def builder(self) -> Callable[..., torch.nn.Module]:
        from torchvision.models import detection

        return getattr(detection, self.builder_name)

    def build(self, num_classes: int = 91) -> torch.nn.Module:
        """The network with random weights and ``num_classes`` outputs (background included)."""
        return self.builder(weights=None, weights_backbone=None, num_classes=num_classes)


#: torchvision is imported only when a network is built: listing the models (the app's first
#: page, ``cowdemo models``) does not pay its 1.5 s import.
TORCHVISION_MODELS = "https://download.pytorch.org/models/"


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "frcnn-r50-fpn",
            "fasterrcnn_resnet50_fpn",
            TORCHVISION_MODELS + "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
            37.0,
            "Faster R-CNN R50-FPN: the notebook's architecture (detectron2 R_50_FPN_3x)",
        ),
        Architecture(
            "frcnn-r50-fpn-v2",
            "fasterrcnn_resnet50_fpn_v2",
            TORCHVISION_MODELS + "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
            46.7,
            "Faster R-CNN R50-FPN v2: more accurate, a little slower",
        ),
        Architecture(
            "frcnn-mobilenet-v3",
            "fasterrcnn_mobilenet_v3_large_fpn",
            TORCHVISION_MODELS + "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
            32.8,
            "Faster R-CNN MobileNet-v3-Large FPN: fast on CPU",
        ),
    )
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise CowdemoError(
            f"Unknown architecture {name!r}: choose one of {', '.join(ARCHITECTURES)}."
        ) from None


class TorchvisionDetector(Detector):
    """A torchvision Faster R-CNN in eval mode.

    ``label_to_class`` maps the network's output labels to indices into ``classes``
    (COCO category ids → contiguous ids for COCO weights; label k → k - 1 for fine-tunes).
    """

    def __init__(
        self,
        name: str,
        model: torch.nn.Module,
        classes: Sequence[str],
        label_to_class: dict[int, int],
        device: str = "cpu",
        mixed_precision: bool = True,
    ):
        self.name = name
        self.classes = tuple(classes)
        self.device = device
        self.model = model.eval().to(device)
        self.min_score = float(getattr(model.roi_heads, "score_thresh", 0.05))
        lut = np.full(max(label_to_class, default=0) + 1, -1, dtype=np.int64)
        for label, index in label_to_class.items():
            lut[label] = index
        self._lut = lut
        self._autocast = mixed_precision and device.startswith("cuda")

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        if not len(images):
            return []
        tensors = [
            torch.from_numpy(np.ascontiguousarray(im)).to(self.device).permute(2, 0, 1).float()
            / 255.0
            for im in images
        ]
        with torch.autocast("cuda", enabled=self._autocast):
            outputs = self.model(tensors)
        results = []
        for image, out in zip(images, outputs):
            labels = out["labels"].cpu().numpy()
            ids = self._lut[np.clip(labels, 0, len(self._lut) - 1)]
            keep = ids >= 0
            # The resize back to the input size can overshoot the border by float error.
            boxes = out["boxes"].float().cpu().numpy()[keep].astype(np.float64)
            h, w = image.shape[:2]
            np.clip(boxes, 0, [w, h, w, h], out=boxes)
            results.append(
                Detections.from_class_ids(
                    boxes,
                    out["scores"].float().cpu().numpy()[keep],
                    ids[keep],
                    self.classes,
                )
            )
        return results


def coco_label_map() -> dict[int, int]:
    """torchvision COCO label (category id) → contiguous index."""
    return dict(CONTIGUOUS_BY_CATEGORY_ID)


def load_coco_detector(
    model_name: str, architecture: str, weights_path: Path, device: str
) -> TorchvisionDetector:
    """A COCO-pretrained torchvision detector from a local state-dict file."""
    arch = get_architecture(architecture)
    model = arch.build(num_classes=91)
    _load_into(model, load_state_dict(weights_path, arch.name), weights_path, arch.name)
    return TorchvisionDetector(model_name, model, COCO_CLASSES, coco_label_map(), device)


def _load_into(model: torch.nn.Module, state: dict, path: Path, what: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:160]
        raise CowdemoError(
            f"{path} does not fit the {what} architecture ({first}): "
            "is it the right weights file for this model?"
        ) from None
