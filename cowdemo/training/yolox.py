"""Fine-tuning YOLOX: the base (Megvii's COCO ``.pth``, a YOLOX ONNX export or an earlier YOLOX
fine-tune) gets a classification head for the new classes, and each training step letterboxes
the batch and calls the package's own training forward, whose SimOTA label assignment and
IoU / objectness / class losses are YOLOX's (nothing re-implemented here).

What differs from the Faster R-CNN path, and why:

- images are letterboxed to one square side per batch (``image_size``, multiples of 32; scale
  jitter picks one of ``TrainConfig.train_sizes()`` per iteration, YOLOX's multi-scale training)
  in BGR 0..255, exactly as the model is run afterwards;
- the new head keeps the base's rows of classes it already knows by name (COCO's ``cow``), in
  each of the three levels' class convolutions; the other rows start from YOLOX's prior
  (bias ``-log((1 - 0.01) / 0.01)``);
- "frozen" BatchNorm keeps the base's statistics but trains scale and shift (a base rebuilt
  from an ONNX export has its statistics folded into the convolutions);
- the weights' exponential moving average (the package's ``ModelEMA``) is what is evaluated
  and saved, as YOLOX's own trainer does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cowdemo.coco import COCO_CLASSES
from cowdemo.errors import CowdemoError
from cowdemo.models.yolox_onnx import letterbox
from cowdemo.models.yolox_torch import (
    SIZES,
    YoloxTorchDetector,
    architecture_name,
    build_module,
    freeze_batchnorm_statistics,
    is_yolox_architecture,
    load_module_state,
    module_from_onnx,
    module_from_pth,
    size_of_architecture,
)

LOSS_NAMES = ("iou_loss", "conf_loss", "cls_loss", "l1_loss")
#: YOLOX's initial class and objectness probability for new head rows.
PRIOR_PROB = 0.01
#: Backbone stages, from the input (CSPDarknet).
STAGES = ("stem", "dark2", "dark3", "dark4", "dark5")
#: Settings a YOLOX fine-tune starts from when not given (CPU: a first fine-tune in minutes):
#: a 320-pixel square input (YOLOX-Nano's own is 416), 8 images a step, 300 steps, SGD with
#: YOLOX's momentum and weight decay, the first two backbone stages fixed.
DEFAULTS: dict[str, Any] = {
    "iterations": 300, "batch_size": 8, "image_size": 320, "scale_jitter": (0.8, 1.2),
    "lr": 0.01, "weight_decay": 5e-4, "warmup": 30, "eval_every": 100,
    "checkpoint_every": 100, "freeze_stages": 2, "max_grad_norm": 10.0,
}  # fmt: skip
#: The EMA decay of YOLOX's trainer.
EMA_DECAY = 0.9998


def is_yolox_base(base: str) -> bool:
    """Whether the registry model (or file) ``base`` is a YOLOX: trained by this module."""
    from cowdemo.models.registry import BUILTIN_YOLOX, find_model

    if base in BUILTIN_YOLOX or Path(base).suffix == ".onnx":
        return True
    try:
        spec = find_model(base)
    except CowdemoError:
        return False
    return spec.kind in ("onnx-yolox", "yolox-coco") or is_yolox_architecture(spec.architecture)


# --- the base ---------------------------------------------------------------------------------
def load_yolox_base(spec) -> tuple[torch.nn.Module, str, tuple[str, ...], Path]:
    """(module with its own head, YOLOX size, the head's class names, weights file)."""
    from cowdemo.models.checkpoints import read_checkpoint
    from cowdemo.models.weights import resolve_weights

    if spec.kind == "onnx-yolox":
        module, info = module_from_onnx(spec.path)
        classes = COCO_CLASSES if info.num_classes == len(COCO_CLASSES) else \
            tuple(f"class{k}" for k in range(info.num_classes))
        return module, info.size, classes, Path(spec.path)
    if spec.kind == "yolox-coco":
        size = size_of_architecture(spec.architecture)
        path = resolve_weights(spec.name, spec.url, explicit=spec.path)
        return module_from_pth(size.name, path), size.name, COCO_CLASSES, path
    data = read_checkpoint(spec.path)
    size = size_of_architecture(str(data["architecture"]))
    classes = tuple(str(c) for c in data["classes"])
    module = build_module(size.name, len(classes))
    load_module_state(module, data["model"], Path(spec.path), str(data["architecture"]))
    return module, size.name, classes, Path(spec.path)


def replace_head(module: torch.nn.Module, classes: tuple[str, ...],
                 base_classes: tuple[str, ...]) -> tuple[str, ...]:
    """New class convolutions for ``classes`` at each level; rows of classes the base knew by
    name are copied, the rest start at YOLOX's prior. Returns the copied names."""
    head = module.head
    prior = -math.log((1 - PRIOR_PROB) / PRIOR_PROB)
    seeded = [c for c in classes if c in base_classes]
    for k, old in enumerate(head.cls_preds):
        new = torch.nn.Conv2d(old.in_channels, len(classes), kernel_size=1)
        with torch.no_grad():
            new.bias.fill_(prior)
            for row, name in enumerate(classes):
                if name in base_classes:
                    new.weight[row] = old.weight[base_classes.index(name)]
                    new.bias[row] = old.bias[base_classes.index(name)]
        head.cls_preds[k] = new.to(old.weight.device)
    head.num_classes = len(classes)
    return tuple(seeded)


def freeze_stages(module: torch.nn.Module, count: int) -> int:
    """Stop gradients in the first ``count`` backbone stages; returns the parameters frozen."""
    if not 0 <= count <= len(STAGES):
        raise CowdemoError(f"YOLOX's backbone has {len(STAGES)} stages: freeze from 0 to "
                           f"{len(STAGES)}, not {count}.")
    frozen = 0
    darknet = module.backbone.backbone
    for name in STAGES[:count]:
        for parameter in getattr(darknet, name).parameters():
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    return frozen


def prepare_yolox_base(base: str, classes: tuple[str, ...], *, batchnorm: str = "frozen",
                       frozen_stages: int | None = None, random_weights: bool = False):
    """The YOLOX to fine-tune (a :class:`cowdemo.training.surgery.BaseModel`) from the registry
    model or file ``base``.

    ``random_weights`` keeps the base's size but none of its weights (training from scratch:
    the baseline that shows what the pretrained weights are worth)."""
    from cowdemo.models.registry import UNAVAILABLE, find_model
    from cowdemo.training.surgery import BaseModel

    spec = find_model(base)
    if spec.status == UNAVAILABLE:
        raise CowdemoError(spec.reason or f"Model {spec.name} is unavailable.")
    module, size, base_classes, path = load_yolox_base(spec)
    if random_weights:
        module = build_module(size, len(base_classes))
    seeded = replace_head(module, tuple(classes), base_classes)
    if random_weights:
        seeded = ()
    if batchnorm == "frozen":
        freeze_batchnorm_statistics(module)
    freeze_stages(module, DEFAULTS["freeze_stages"] if frozen_stages is None else frozen_stages)
    module.head.use_l1 = False  # YOLOX adds the L1 loss only for its last no-augmentation epochs
    return BaseModel(module, architecture_name(size), spec.name, tuple(base_classes), path,
                     seeded)


# --- batches ----------------------------------------------------------------------------------
def size_at(iteration: int, sizes: tuple[int, ...], seed: int) -> int:
    """The square input side of an iteration's batch: one of ``sizes``, seeded per iteration
    (a resumed run trains at the sizes the interrupted one would have)."""
    if len(sizes) == 1:
        return int(sizes[0])
    return int(sizes[np.random.default_rng([seed, 31337, iteration]).integers(len(sizes))])


def letterbox_batch(images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]],
                    size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOX's training input: (B, 3, S, S) BGR 0..255 letterboxed as at inference, and labels
    (B, max boxes, 5) of (class, cx, cy, w, h) in input pixels, zero rows as padding."""
    batch, rows = [], []
    for image, target in zip(images, targets):
        rgb = image.permute(1, 2, 0).numpy()
        chw, ratio = letterbox(rgb, size)
        batch.append(torch.from_numpy(chw))
        boxes = target["boxes"].float() * ratio
        cxcywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)
        rows.append(torch.cat([(target["labels"].float() - 1)[:, None], cxcywh], 1))
    labels = torch.zeros(len(rows), max(1, max(len(r) for r in rows)), 5)
    for k, r in enumerate(rows):
        labels[k, :len(r)] = r
    return torch.stack(batch), labels


def forward_losses(trained, images, targets, size: int, device: str,
                   amp: bool) -> dict[str, torch.Tensor]:
    """One training forward of YOLOX on a batch; the losses by :data:`LOSS_NAMES` (their sum
    is YOLOX's total loss: its IoU loss comes weighted by 5)."""
    x, labels = letterbox_batch(images, targets, size)
    x, labels = x.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    try:
        with torch.autocast("cuda", enabled=amp):
            out = trained(x, labels)
    except RuntimeError as exc:  # YOLOX's label assignment meets NaN scores of a diverged net
        if "between 0 and 1" not in str(exc):
            raise
        raise CowdemoError("Training diverged (the scores are not numbers): lower the learning "
                           "rate or raise the warm-up, and start with --fresh.") from None
    return {n: torch.as_tensor(out[n], dtype=torch.float32, device=device) if not
            torch.is_tensor(out[n]) else out[n].float() for n in LOSS_NAMES}


# --- evaluation and what is saved --------------------------------------------------------------
def detector_for(model: torch.nn.Module, classes: tuple[str, ...], input_size: int, device: str,
                 amp: bool) -> YoloxTorchDetector:
    return YoloxTorchDetector("training", model, classes, input_size, device,
                              mixed_precision=amp)


def check_settings(config) -> None:
    if config.image_size % 32:
        raise CowdemoError(f"YOLOX needs an image size that is a multiple of 32, not "
                           f"{config.image_size} (try {round(config.image_size / 32) * 32}).")


def describe_sizes() -> str:
    return ", ".join(architecture_name(s) for s in SIZES)
