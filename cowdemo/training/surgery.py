"""Model surgery: a registry model becomes the starting point of a fine-tune.

The base model's weights are loaded as they are (COCO weights or an earlier fine-tune), the box
predictor is replaced by one for ``classes`` + background, and everything else is kept. Where
the base already knows a class by name (COCO's ``cow``), its rows of the old predictor seed the
new one, so training starts from what the base model knew instead of from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.ops.misc import FrozenBatchNorm2d

from cowdemo.coco import CATEGORY_ID_BY_NAME
from cowdemo.errors import CowdemoError
from cowdemo.models.checkpoints import read_checkpoint
from cowdemo.models.registry import ModelSpec, find_model
from cowdemo.models.torchvision_frcnn import _load_into, get_architecture
from cowdemo.models.weights import load_state_dict, resolve_weights

#: Registry kinds a fine-tune starts from (YOLOX ones go through cowdemo.training.yolox).
TRAINABLE_KINDS = ("torchvision-coco", "checkpoint", "yolox-coco", "onnx-yolox")


@dataclass
class BaseModel:
    """The network to fine-tune and where it came from."""

    model: torch.nn.Module
    architecture: str
    base_name: str
    base_classes: tuple[str, ...]
    weights_path: Path
    seeded_classes: tuple[str, ...]  # new classes whose head rows came from the base


def _load_base(spec: ModelSpec) -> tuple[torch.nn.Module, dict[str, int], Path]:
    """The base network with its own head, and its label of each class name."""
    if spec.kind == "torchvision-coco":
        path = resolve_weights(spec.name, spec.url, explicit=spec.path)
        arch = get_architecture(spec.architecture)
        model = arch.build(num_classes=91)
        _load_into(model, load_state_dict(path, arch.name), path, arch.name)
        return model, dict(CATEGORY_ID_BY_NAME), path
    data = read_checkpoint(spec.path)
    arch = get_architecture(str(data["architecture"]))
    classes = [str(c) for c in data["classes"]]
    model = arch.build(num_classes=len(classes) + 1)
    _load_into(model, data["model"], Path(spec.path), arch.name)
    return model, {name: k + 1 for k, name in enumerate(classes)}, Path(spec.path)


def replace_head(
    model: torch.nn.Module, classes: tuple[str, ...], base_labels: dict[str, int]
) -> tuple[str, ...]:
    """A new box predictor for ``classes`` + background; rows of classes the old head knew
    (and the background row) are copied. Returns the names that were copied."""
    old = model.roi_heads.box_predictor
    new = FastRCNNPredictor(old.cls_score.in_features, len(classes) + 1)
    seeded = []
    with torch.no_grad():
        pairs = [(0, 0)] + [(k + 1, base_labels[c]) for k, c in enumerate(classes)
                            if c in base_labels and base_labels[c] < old.cls_score.out_features]
        for new_row, old_row in pairs:
            new.cls_score.weight[new_row] = old.cls_score.weight[old_row]
            new.cls_score.bias[new_row] = old.cls_score.bias[old_row]
            new.bbox_pred.weight[4 * new_row:4 * new_row + 4] = \
                old.bbox_pred.weight[4 * old_row:4 * old_row + 4]
            new.bbox_pred.bias[4 * new_row:4 * new_row + 4] = \
                old.bbox_pred.bias[4 * old_row:4 * old_row + 4]
            if new_row:
                seeded.append(classes[new_row - 1])
    model.roi_heads.box_predictor = new
    return tuple(seeded)


def freeze_batchnorm(module: torch.nn.Module) -> int:
    """Replace every BatchNorm2d by a FrozenBatchNorm2d with the same statistics and eps
    (the standard for detection fine-tuning: batches of 2 images give useless statistics).
    Returns how many were replaced."""
    count = 0
    for name, child in module.named_children():
        if isinstance(child, torch.nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                frozen.weight.copy_(child.weight.detach())
                frozen.bias.copy_(child.bias.detach())
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
            count += 1
        else:
            count += freeze_batchnorm(child)
    return count


def backbone_stages(model: torch.nn.Module) -> list[list[torch.nn.Module]]:
    """The backbone body's stages from the input, as torchvision counts them for its
    ``trainable_backbone_layers``: ResNet stem, layer1..4 (5); MobileNet's blocks split at its
    strided (``_is_cn``) blocks and before the last block (6). Freezing ``k`` stages here equals
    torchvision's ``trainable_backbone_layers = len(stages) - k``."""
    body = model.backbone.body
    names = list(body.keys()) if hasattr(body, "keys") else [n for n, _ in body.named_children()]
    if "layer1" in names:
        stem = [body[n] for n in names if not n.startswith("layer")]
        return [stem] + [[body[n]] for n in names if n.startswith("layer")]
    blocks = [body[n] for n in names]
    # torchvision's stage boundaries: the first block, each strided block, the last block.
    starts = [0] + [i for i, b in enumerate(blocks) if getattr(b, "_is_cn", False)]
    starts = sorted({*starts, len(blocks) - 1})
    bounds = [*starts[1:], len(blocks)]
    return [blocks[a:b] for a, b in zip(starts, bounds)]


def default_frozen_stages(model: torch.nn.Module) -> int:
    """torchvision's fine-tuning default keeps 3 stages trainable (of 5 ResNet, 6 MobileNet)."""
    return max(0, len(backbone_stages(model)) - 3)


def freeze_stages(model: torch.nn.Module, count: int) -> int:
    """Stop gradients in the first ``count`` backbone stages; returns the parameters frozen."""
    stages = backbone_stages(model)
    if not 0 <= count <= len(stages):
        raise CowdemoError(
            f"This backbone has {len(stages)} stages: freeze from 0 to {len(stages)}, not {count}."
        )
    frozen = 0
    for stage in stages[:count]:
        for module in stage:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
                frozen += parameter.numel()
    return frozen


def configure_sizes(model: torch.nn.Module, sizes: tuple[int, ...], max_size: int,
                    rois_per_image: int, proposals_per_image: int) -> None:
    """Resize range (torchvision picks one of ``sizes`` per training batch and the last in
    evaluation), sampled RoIs and RPN proposals in training."""
    model.transform.min_size = tuple(int(s) for s in sizes)
    model.transform.max_size = int(max_size)
    model.roi_heads.fg_bg_sampler.batch_size_per_image = int(rois_per_image)
    model.rpn._pre_nms_top_n["training"] = int(proposals_per_image)
    model.rpn._post_nms_top_n["training"] = int(proposals_per_image)


def inference_settings(sizes: tuple[int, ...], max_size: int) -> dict[str, Any]:
    """Stored in the checkpoint so the registry loads the model at the size it learned."""
    return {"min_size": int(sizes[-1]), "max_size": int(max_size)}


def prepare_base(base: str, classes: tuple[str, ...], *, batchnorm: str = "frozen",
                 frozen_stages: int | None = None) -> BaseModel:
    """Load ``base`` from the registry and give it a head for ``classes``."""
    spec = find_model(base)
    if spec.kind not in TRAINABLE_KINDS[:2]:
        raise CowdemoError(
            f"{spec.name} is a {spec.kind} model, which cowdemo cannot fine-tune: start from a "
            "torchvision Faster R-CNN (frcnn-*-coco) or an earlier fine-tune."
        )
    if spec.status == "unavailable":
        raise CowdemoError(spec.reason or f"Model {spec.name} is unavailable.")
    model, base_labels, path = _load_base(spec)
    seeded = replace_head(model, tuple(classes), base_labels)
    if batchnorm == "frozen":
        freeze_batchnorm(model)
    stages = default_frozen_stages(model) if frozen_stages is None else frozen_stages
    freeze_stages(model, stages)
    return BaseModel(model, spec.architecture, spec.name, tuple(spec.classes), path, seeded)
