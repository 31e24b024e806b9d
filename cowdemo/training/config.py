"""`TrainConfig`: every setting of a fine-tune, with defaults that suit fine-tuning a COCO
Faster R-CNN on a small dataset, and one validation that turns bad values into one clear line.

The config is plain data (JSON in and out): the CLI, the Fine-tune page and background jobs
build one, and it travels inside every resume checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cowdemo.errors import CowdemoError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")
BATCHNORM_MODES = ("frozen", "train")

#: Settings that change what a resumed run would learn: a resume with other values is refused.
RESUME_KEYS = ("base", "classes", "optimizer", "batch_size", "accumulate", "image_size",
               "max_size", "batchnorm", "freeze_stages", "seed", "from_scratch")  # fmt: skip


@dataclass
class TrainConfig:
    """What to fine-tune, on what, and how.

    Attributes:
        base: registry model to start from (a COCO model or an earlier fine-tune).
        classes: class names to learn (the new head predicts these + background).
        iterations: optimizer steps.
        batch_size: images per step and process (a DDP run multiplies it by the processes).
        accumulate: micro-batches summed into one step (a large batch on a small GPU).
        image_size: shorter image side in training (torchvision's ``min_size``).
        max_size: longer-side cap (default: ``image_size * 1333 / 800``, torchvision's ratio).
        scale_jitter: (low, high) factors on ``image_size``; each batch picks one (multi-scale
            training, done by torchvision's resize). (1, 1) switches it off.
        hflip: random horizontal flips.
        optimizer: "sgd" (momentum 0.9) or "adamw".
        lr: peak learning rate (default: SGD 0.0025 per image of the effective batch, capped
            at 0.02; AdamW 1e-4).
        weight_decay: L2 / decoupled weight decay.
        warmup: linear warm-up iterations (from lr / 1000 up to lr).
        schedule: "cosine" (to 0), "step" (x0.1 at 70% and 90%) or "constant" after warm-up.
        freeze_stages: backbone stages kept fixed, counted from the input (None: torchvision's
            fine-tuning default, the first two of a ResNet or MobileNet).
        batchnorm: "frozen" (use the base model's statistics; right for fine-tuning with small
            batches) or "train" (batch statistics; for bases that were never trained).
        rois_per_image: sampled region proposals per image for the box head (torchvision: 512).
        proposals_per_image: RPN proposals kept per image in training (torchvision: 2000).
        amp: mixed precision on a GPU (ignored on CPU).
        max_grad_norm: gradient clipping (0 switches it off).
        eval_every: iterations between evaluations on the held-out split (0: only at the end).
        eval_at_start: also evaluate before the first step (the base model's value).
        checkpoint_every: iterations between resume checkpoints.
        val_fraction: share of images held out when no separate validation set is given.
        seed: data order, flips and the held-out split.
        device: "auto", "cpu" or "cuda[:N]".
        workers: data-loading processes (None: 2 on a GPU, 0 on CPU).
        ema: YOLOX only: evaluate and save the exponential moving average of the weights
            (YOLOX's own trainer does).
        from_scratch: start from random weights of the base's architecture instead of its
            trained ones (the baseline that measures what the pretrained weights are worth).

    For a YOLOX base, :meth:`for_base` fills other defaults (``cowdemo.training.yolox.DEFAULTS``:
    320-pixel square inputs, 8 images a step, 300 steps): ``image_size`` is then the side of
    the square input, a multiple of 32.
    """

    base: str = "frcnn-r50-fpn-coco"
    classes: tuple[str, ...] = ("cow",)
    iterations: int = 1000
    batch_size: int = 2
    accumulate: int = 1
    image_size: int = 800
    max_size: int | None = None
    scale_jitter: tuple[float, float] = (0.8, 1.0)
    hflip: bool = True
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float = 1e-4
    warmup: int = 100
    schedule: str = "cosine"
    freeze_stages: int | None = None
    batchnorm: str = "frozen"
    rois_per_image: int = 512
    proposals_per_image: int = 2000
    amp: bool = True
    max_grad_norm: float = 10.0
    eval_every: int = 200
    eval_at_start: bool = True
    checkpoint_every: int = 100
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    ema: bool = True
    from_scratch: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_base(cls, base: str, **settings: Any) -> TrainConfig:
        """A config for ``base`` from the given settings (None: not given): a YOLOX base gets
        YOLOX's fine-tuning defaults, any other base this class's."""
        given = {k: v for k, v in settings.items() if v is not None}
        from cowdemo.training.yolox import DEFAULTS, is_yolox_base

        if is_yolox_base(base):
            given = {**DEFAULTS, **given}
        return cls(base=base, **given)

    def __post_init__(self) -> None:
        if isinstance(self.classes, str):
            self.classes = tuple(c.strip() for c in self.classes.split(",") if c.strip())
        self.classes = tuple(str(c) for c in self.classes)
        self.scale_jitter = tuple(float(v) for v in self.scale_jitter)  # type: ignore[assignment]
        self.validate()

    # --- derived values ---------------------------------------------------------------------
    def effective_batch(self, world_size: int = 1) -> int:
        return self.batch_size * self.accumulate * world_size

    def peak_lr(self, world_size: int = 1) -> float:
        if self.lr is not None:
            return float(self.lr)
        if self.optimizer == "adamw":
            return 1e-4
        return min(0.02, 0.0025 * self.effective_batch(world_size))

    def longest_side(self) -> int:
        return int(self.max_size or math.ceil(self.image_size * 1333 / 800))

    def train_sizes(self) -> tuple[int, ...]:
        """Shorter sides a training batch may be resized to; the last is ``image_size``, which
        torchvision uses in evaluation mode."""
        low, high = self.scale_jitter
        sizes = {int(round(self.image_size * f / 32) * 32) for f in (low, (low + high) / 2, high)}
        sizes = sorted(s for s in sizes if s >= 32 and s != self.image_size)
        return (*sizes, self.image_size)

    # --- validation and (de)serialisation ---------------------------------------------------
    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise CowdemoError(message)

        need(bool(self.base), "Choose a base model to fine-tune (--base).")
        need(bool(self.classes), "Choose at least one class to learn (--classes cow).")
        need(len(set(self.classes)) == len(self.classes),
             f"Classes {', '.join(self.classes)} repeat a name: give each class once.")
        for name, value, low, high in (
            ("iterations", self.iterations, 1, 10_000_000),
            ("batch size", self.batch_size, 1, 1024),
            ("accumulate", self.accumulate, 1, 1024),
            ("image size", self.image_size, 64, 4096),
            ("warm-up", self.warmup, 0, 10_000_000),
            ("rois per image", self.rois_per_image, 8, 4096),
            ("proposals per image", self.proposals_per_image, 16, 10_000),
            ("eval every", self.eval_every, 0, 10_000_000),
            ("checkpoint every", self.checkpoint_every, 1, 10_000_000),
        ):
            need(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
                 f"{name} must be a whole number from {low} to {high}, got {value!r}.")
        need(self.max_size is None or self.max_size >= self.image_size,
             f"max size {self.max_size} must be at least the image size {self.image_size}.")
        low, high = self.scale_jitter
        need(0.25 <= low <= high <= 4, f"scale jitter must be 0.25 <= low <= high <= 4, got "
             f"{low}, {high}.")
        need(self.optimizer in OPTIMIZERS,
             f"Unknown optimizer {self.optimizer!r}: use {' or '.join(OPTIMIZERS)}.")
        need(self.schedule in SCHEDULES,
             f"Unknown schedule {self.schedule!r}: use {', '.join(SCHEDULES)}.")
        need(self.batchnorm in BATCHNORM_MODES,
             f"Unknown batchnorm mode {self.batchnorm!r}: use frozen or train.")
        need(self.lr is None or (0 < float(self.lr) <= 10),
             f"learning rate must be above 0 (and at most 10), got {self.lr}.")
        need(0 <= self.weight_decay < 1,
             f"weight decay must be in [0, 1), got {self.weight_decay}.")
        need(0 < self.val_fraction < 1, f"val fraction must be between 0 and 1, got "
             f"{self.val_fraction}.")
        need(self.freeze_stages is None or 0 <= self.freeze_stages <= 6,
             f"freeze stages must be from 0 to 6, got {self.freeze_stages}.")
        need(self.workers is None or 0 <= self.workers <= 64,
             f"workers must be from 0 to 64, got {self.workers}.")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = list(self.classes)
        data["scale_jitter"] = list(self.scale_jitter)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CowdemoError(f"Unknown training settings: {', '.join(unknown)}.")
        return cls(**data)

    def resume_mismatch(self, saved: dict[str, Any]) -> str:
        """'' when a run saved with ``saved`` settings can be continued with these, else what
        differs (for the error message)."""
        mine = self.to_dict()
        diffs = [f"{k} {saved.get(k)!r} → {mine[k]!r}" for k in RESUME_KEYS
                 if k in saved and _norm(saved[k]) != _norm(mine[k])]
        return "; ".join(diffs)


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value
