"""The fine-tuning loop: torchvision Faster R-CNN or YOLOX (:mod:`cowdemo.training.yolox`), SGD
or AdamW with warm-up and a schedule, flips and scale jitter, mixed precision on a GPU, gradient
accumulation, periodic evaluation with the project's COCO engine, atomic resume checkpoints,
and DDP when torchrun started it::

    result = train(TrainConfig(base="frcnn-r50-fpn-coco", classes=("cow",), iterations=1000),
                   "cows", out="checkpoints/cows-r50")
    result.checkpoint, result.metrics["AP50"]

Files of a run whose model goes to ``checkpoints/NAME.pt``:

- ``checkpoints/NAME.training/last.pt``: the resume state (weights, optimizer, scaler, random
  states, iteration, settings, dataset hash), replaced atomically every ``checkpoint_every``
  iterations and when the run is stopped; an interrupted run loses at most that interval.
- ``checkpoints/NAME.training/status.json`` and ``metrics.jsonl`` (or the job folder's);
- ``checkpoints/NAME.pt`` at the end: a self-describing cowdemo checkpoint (architecture,
  classes, base model, dataset hash, iteration, metrics, input size), the file every model
  picker lists. The resume state is then removed.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cowdemo.datasets.coco import CocoDataset
from cowdemo.devices import describe_device
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.detection import DetectionEvaluator, EvalResult
from cowdemo.models.checkpoints import atomic_torch_save, save_checkpoint
from cowdemo.models.torchvision_frcnn import TorchvisionDetector
from cowdemo.models.weights import checkpoints_dir, load_state_dict
from cowdemo.training.config import TrainConfig
from cowdemo.training.data import (
    BatchSampler,
    PreparedData,
    SampleStream,
    TrainSet,
    collate,
    prepare_data,
)
from cowdemo.training.distributed import DistContext, init_distributed, shareable
from cowdemo.training.locks import DeviceLock, lock_held_by_parent, release_inherited_locks
from cowdemo.training.monitor import Monitor
from cowdemo.training.surgery import configure_sizes, inference_settings, prepare_base
from cowdemo.training.yolox import LOSS_NAMES as YOLOX_LOSS_NAMES

STATE_FILE = "last.pt"
STATE_VERSION = 1
LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")
Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a fine-tune produced."""

    checkpoint: Path
    name: str
    iteration: int
    iterations: int
    metrics: dict[str, float]
    history: list[dict[str, Any]]
    report: dict[str, Any]
    resumed_from: int | None = None
    stopped: bool = False
    duration_s: float = 0.0
    comparison: dict[str, Any] | None = None
    run_ids: dict[str, int] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return not self.stopped


# --- paths ------------------------------------------------------------------------------------
def output_path(out: str | Path | None, config: TrainConfig) -> Path:
    """``checkpoints/NAME`` or ``NAME`` → ``checkpoints/NAME.pt`` (the default NAME says what
    was learned from what)."""
    if out is None or str(out) == "":
        out = f"{'-'.join(config.classes)}-{config.base}-ft"
    path = Path(out).expanduser()
    if path.parent == Path("."):
        path = checkpoints_dir() / path
    if path.suffix not in (".pt", ".pth"):
        path = path.with_name(path.name + ".pt")
    if not path.stem or path.stem.startswith("."):
        raise CowdemoError(f"{out!r} is not a usable model name: use letters, digits and dashes.")
    return path


def state_dir(out_path: Path) -> Path:
    return out_path.with_suffix(".training")


# --- learning rate ---------------------------------------------------------------------------
def lr_at(iteration: int, config: TrainConfig, peak: float) -> float:
    """Linear warm-up from peak/1000, then the schedule (cosine to 0, steps, or flat)."""
    total = config.iterations
    warm = min(config.warmup, max(total - 1, 0))
    factor = 1.0
    if iteration < warm:
        factor = 0.001 + (1 - 0.001) * iteration / warm
    if config.schedule == "cosine":
        factor *= 0.5 * (1 + math.cos(math.pi * min(iteration, total) / total))
    elif config.schedule == "step":
        factor *= 0.1 ** sum(iteration >= int(total * m) for m in (0.7, 0.9))
    return peak * factor


def make_optimizer(model: torch.nn.Module, config: TrainConfig, peak: float):
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=peak)
    return torch.optim.SGD(groups, lr=peak, momentum=0.9)


# --- atomic files ----------------------------------------------------------------------------
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def disk_error(path: Path, exc: OSError, keeps: str) -> CowdemoError:
    what = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (
        "the file size limit was reached" if exc.errno == errno.EFBIG else exc.strerror)
    return CowdemoError(
        f"Could not write {path}: {what}. {keeps} Free space in {path.parent} and run the same "
        "command again to resume."
    )


# --- stop requests -----------------------------------------------------------------------------
class StopRequest:
    """Ctrl-C / SIGTERM ask the loop to save and stop at the end of the current step; a
    second signal stops at once (the last checkpoint is still there)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --- evaluation ---------------------------------------------------------------------------------
def only_classes(dataset: CocoDataset, classes: tuple[str, ...]) -> CocoDataset:
    """The dataset with only the categories (and boxes) of ``classes``: what a model that
    knows only those classes is scored on."""
    keep = {int(c["id"]) for c in dataset.categories if str(c["name"]) in classes}
    coco = dict(dataset.coco)
    coco["categories"] = [c for c in dataset.categories if int(c["id"]) in keep]
    coco["annotations"] = [a for a in dataset.coco["annotations"]
                           if int(a["category_id"]) in keep]
    return CocoDataset(dataset.root, coco, dataset.name)


def evaluate_network(
    model: torch.nn.Module, dataset: CocoDataset, classes: tuple[str, ...], device: str,
    batch_size: int = 2, amp: bool = True, detector=None,
) -> EvalResult:
    """COCO box mAP of the network being trained, on ``dataset`` (unreadable images skipped);
    ``detector`` runs ``model`` (default: as a fine-tuned torchvision Faster R-CNN)."""
    was_training = model.training
    if detector is None:
        detector = TorchvisionDetector("training", model, classes, {k + 1: k for k in
                                       range(len(classes))}, device, mixed_precision=amp)
    evaluator = DetectionEvaluator(list(classes))
    ids = dataset.image_ids
    try:
        for first in range(0, len(ids), batch_size):
            batch, kept = [], []
            for image_id in ids[first:first + batch_size]:
                try:
                    batch.append(dataset.read_image(image_id))
                    kept.append(image_id)
                except CowdemoError:
                    continue
            for image_id, dets in zip(kept, detector.predict_batch(batch) if batch else []):
                gt = dataset.ground_truth(image_id)
                mine = np.isin(gt.class_names, classes)
                evaluator.update(image_id, gt.xyxy[mine], gt.class_names[mine], dets,
                                 gt_area=gt.area[mine], gt_iscrowd=gt.iscrowd[mine])
    finally:
        model.train(was_training)
    return evaluator.compute()


# --- the run --------------------------------------------------------------------------------------
class Trainer:
    """One fine-tune in this process (one of several under DDP). Use :func:`train`."""

    def __init__(self, config: TrainConfig, dataset: CocoDataset, out_path: Path, *,
                 val_dataset: CocoDataset | None, monitor_dir: Path | None, fresh: bool,
                 compare: bool, record: bool, progress: Progress | None, ctx: DistContext,
                 dataset_label: str):
        self.config, self.dataset, self.out_path = config, dataset, out_path
        self.val_dataset, self.fresh = val_dataset, fresh
        self.compare, self.record = compare, record
        self.progress, self.ctx = progress, ctx
        self.dataset_label = dataset_label
        self.state_path = state_dir(out_path) / STATE_FILE
        self.monitor = Monitor(monitor_dir or state_dir(out_path), enabled=ctx.is_main)
        self.history: list[dict[str, Any]] = []
        self.started = time.time()
        self.amp = config.amp and ctx.device.startswith("cuda")
        self.peak = config.peak_lr(ctx.world_size)
        self._elapsed_before = 0.0
        from cowdemo.training.yolox import is_yolox_base

        self.is_yolox = is_yolox_base(config.base)
        self.loss_names = YOLOX_LOSS_NAMES if self.is_yolox else LOSS_NAMES
        self.ema = None  # YOLOX: the package's ModelEMA of the weights
        self.sizes = config.train_sizes()

    # status helpers
    def say(self, state: str, message: str, **fields: Any) -> None:
        self.monitor.update(state=state, message=message, **fields)
        if self.progress and self.ctx.is_main:
            self.progress({"state": state, "message": message, **fields})

    # 1. data --------------------------------------------------------------------------------
    def prepare(self) -> tuple[PreparedData, str]:
        def run() -> tuple[PreparedData, str]:
            def checking(done: int, total: int) -> None:
                if done == total or done % 25 == 0:
                    self.monitor.update(force=False, message=f"checking images {done}/{total}")

            self.say("preparing", f"checking the {len(self.dataset.image_ids)} images of "
                     f"{self.dataset.name}")
            data = prepare_data(self.dataset, self.config.classes,
                                val_fraction=self.config.val_fraction, seed=self.config.seed,
                                val_dataset=self.val_dataset, progress=checking)
            data.val = only_classes(data.val, self.config.classes)
            return data, self.dataset.content_hash()

        if not self.ctx.is_main:
            return self.ctx.broadcast(None)
        try:
            value = run()
        except Exception as exc:
            self.ctx.broadcast(shareable(exc))
            raise
        return self.ctx.broadcast(value)

    # 2. resume state ------------------------------------------------------------------------
    def load_state(self, dataset_hash: str) -> dict[str, Any] | None:
        folder = state_dir(self.out_path)
        if self.fresh:
            if self.ctx.is_main:
                self.state_path.unlink(missing_ok=True)
            self.ctx.barrier()
            return None
        if not self.state_path.exists():
            self.check_output_free()
            return None
        state = load_state_dict(self.state_path, "cowdemo training state")
        if state.get("cowdemo_training_state") != STATE_VERSION:
            raise CowdemoError(f"{self.state_path} is not a cowdemo training state: remove "
                               f"{folder} or use --fresh.")
        mismatch = self.config.resume_mismatch(state.get("config", {}))
        if mismatch:
            raise CowdemoError(
                f"{self.out_path.stem} was started with other settings ({mismatch}): use the "
                "same settings to resume, --fresh to start over, or another --out name."
            )
        if state.get("dataset_hash") != dataset_hash:
            raise CowdemoError(
                f"The dataset changed since {self.out_path.stem} was started (its content hash "
                "differs): resume with the same data, or use --fresh to start over."
            )
        return state

    def check_output_free(self) -> None:
        if not self.fresh and not self.state_path.exists() and self.out_path.exists():
            raise CowdemoError(
                f"{self.out_path} already exists (a finished fine-tune): choose another --out "
                "name, or --fresh to train it again from the base model."
            )

    def save_state(self, iteration: int, model, optimizer, scaler, dataset_hash: str,
                   base) -> None:
        if not self.ctx.is_main:
            return
        self.monitor.update(state="saving", message=f"saving checkpoint at {iteration}")
        payload = {
            "cowdemo_training_state": STATE_VERSION,
            "iteration": iteration,
            "config": self.config.to_dict(),
            "dataset_hash": dataset_hash,
            "dataset": self.dataset_label,
            "architecture": base.architecture,
            "base_model": base.base_name,
            "model": {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()},
            **({"ema": {k: v.detach().cpu() for k, v in self.ema.ema.state_dict().items()},
                "ema_updates": int(self.ema.updates)} if self.ema is not None else {}),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "elapsed_s": self.elapsed(),
        }
        try:
            atomic_torch_save(payload, self.state_path)
        except OSError as exc:
            if exc.errno in _DISK_ERRORS:
                previous = self.monitor.status.get("checkpoint_iteration")
                keeps = (f"The checkpoint of iteration {previous} is intact." if previous
                         else "No earlier checkpoint was written.")
                raise disk_error(self.state_path, exc, keeps) from None
            raise
        self.monitor.update(checkpoint_iteration=iteration, checkpoint=str(self.state_path))
        self.monitor.log(type="checkpoint", iteration=iteration, time=time.time())

    def elapsed(self) -> float:
        return self._elapsed_before + (time.time() - self.started)

    # 3. the loop ------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        config, ctx = self.config, self.ctx
        self.monitor.update(ended_at=None, error=None, metrics=None, comparison=None,
                            iterations=config.iterations, iteration=0)
        self.check_output_free()
        self.say("preparing", f"loading the base model {config.base}")
        torch.manual_seed(config.seed)  # the new head's initial weights
        base = self.prepare_base()  # a missing base fails first
        data, dataset_hash = self.prepare()
        report = data.report.to_dict()
        self.monitor.update(report=report, dataset=self.dataset_label,
                            dataset_hash=dataset_hash, device=describe_device(ctx.device),
                            world_size=ctx.world_size, iterations=config.iterations,
                            output=str(self.out_path), model_name=self.out_path.stem,
                            config=config.to_dict(), pid=os.getpid(), peak_lr=self.peak)
        state = self.load_state(dataset_hash)
        torch.manual_seed(config.seed + ctx.rank)
        model = base.model
        sizes = self.sizes
        if not self.is_yolox:
            configure_sizes(model, sizes, config.longest_side(), config.rois_per_image,
                            config.proposals_per_image)
        start = 0
        if state is not None:
            model.load_state_dict(state["model"])
            start = int(state["iteration"])
            self.history = list(state.get("history", []))
            self._elapsed_before = float(state.get("elapsed_s", 0.0))
            torch.set_rng_state(state["torch_rng"])
        model.to(ctx.device).train()
        if self.is_yolox and config.ema:
            from yolox.utils import ModelEMA

            from cowdemo.training.yolox import EMA_DECAY

            self.ema = ModelEMA(model, EMA_DECAY)
            if state is not None and "ema" in state:
                self.ema.ema.load_state_dict(state["ema"])
                self.ema.updates = int(state.get("ema_updates", 0))
        trained = model
        if ctx.distributed:
            trained = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[ctx.local_rank] if ctx.device.startswith("cuda") else None)
        optimizer = make_optimizer(model, config, self.peak)
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            self.monitor.log(type="resume", iteration=start, time=time.time())
        resumed_from = start if state is not None else None
        self.monitor.update(resumed_from=resumed_from, started_at=self.monitor.status.get(
            "started_at", time.time()), base_seeded_classes=list(base.seeded_classes))

        stopped = False
        with StopRequest() as stop:
            if start == 0 and config.eval_at_start and not self.history:
                self.evaluate(model, data, 0)
            batches = self.batches(data, start)
            iteration = start
            while iteration < config.iterations:
                if ctx.any(stop.requested):
                    stopped = True
                    break
                self.step(trained, optimizer, scaler, batches, iteration)
                iteration += 1
                if iteration % config.checkpoint_every == 0 and iteration < config.iterations:
                    self.save_state(iteration, model, optimizer, scaler, dataset_hash, base)
                    ctx.barrier()
                if (config.eval_every and iteration % config.eval_every == 0
                        and iteration < config.iterations):
                    self.evaluate(model, data, iteration)
            if stopped:
                self.save_state(iteration, model, optimizer, scaler, dataset_hash, base)
                ctx.barrier()
                self.say("stopped", f"stopped at iteration {iteration} of {config.iterations}; "
                         "the checkpoint is saved: resume to continue", iteration=iteration,
                         ended_at=time.time())
                return self._result(iteration, report, resumed_from, stopped=True)
            if not self.history or self.history[-1]["iteration"] != iteration:
                self.evaluate(model, data, iteration)
        return self.finish(model, base, data, dataset_hash, iteration, report, resumed_from)

    def prepare_base(self):
        config = self.config
        if not self.is_yolox:
            if config.from_scratch:
                raise CowdemoError("Training from random weights is offered for YOLOX bases "
                                   "only: choose a yolox-* base or drop --from-scratch.")
            return prepare_base(config.base, config.classes, batchnorm=config.batchnorm,
                                frozen_stages=config.freeze_stages)
        from cowdemo.training.yolox import check_settings, prepare_yolox_base

        check_settings(config)
        return prepare_yolox_base(config.base, config.classes, batchnorm=config.batchnorm,
                                  frozen_stages=config.freeze_stages,
                                  random_weights=config.from_scratch)

    def forward(self, trained, images, targets, iteration: int) -> dict[str, torch.Tensor]:
        """The losses of one micro-batch (the family's own training forward)."""
        device = self.ctx.device
        if self.is_yolox:
            from cowdemo.training.yolox import forward_losses, size_at

            size = size_at(iteration, self.sizes, self.config.seed)
            return forward_losses(trained, images, targets, size, device, self.amp)
        images = [im.to(device, non_blocking=True).float().div_(255) for im in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        with torch.autocast("cuda", enabled=self.amp):
            return trained(images, targets)

    def eval_model(self, model):
        """What is evaluated and saved: the EMA of the weights where there is one."""
        return self.ema.ema if self.ema is not None else _unwrap(model)

    def batches(self, data: PreparedData, start: int) -> Iterator:
        config, ctx = self.config, self.ctx
        stream = SampleStream(len(data.train), config.seed)
        sampler = BatchSampler(stream, config.batch_size, start * config.accumulate, ctx.rank,
                               ctx.world_size)
        workers = config.workers
        if workers is None:
            workers = 2 if ctx.device.startswith("cuda") else 0
        loader = torch.utils.data.DataLoader(
            TrainSet(data.dataset, data.train, stream, config.hflip), batch_sampler=sampler,
            collate_fn=collate, num_workers=workers, pin_memory=ctx.device.startswith("cuda"),
            persistent_workers=workers > 0,
        )  # fmt: skip
        return iter(loader)

    def step(self, trained, optimizer, scaler, batches: Iterator, iteration: int) -> None:
        config, ctx = self.config, self.ctx
        tick = time.perf_counter()
        lr = lr_at(iteration, config, self.peak)
        for group in optimizer.param_groups:
            group["lr"] = lr
        names = self.loss_names
        totals = torch.zeros(len(names))
        for micro in range(config.accumulate):
            images, targets = next(batches)
            last = micro == config.accumulate - 1
            sync = contextlib.nullcontext() if (last or not ctx.distributed) else trained.no_sync()
            with sync:
                losses = self.forward(trained, images, targets, iteration)
                loss = sum(losses[name] for name in names) / config.accumulate
                scaler.scale(loss).backward()
            totals += torch.stack([losses[n].detach().float().cpu() for n in names])
        totals = ctx.mean(totals / config.accumulate)
        total = float(totals.sum())
        if ctx.any(not math.isfinite(total)):
            raise CowdemoError(
                f"Training diverged at iteration {iteration + 1} (the loss is not a number): "
                f"lower the learning rate (it was {lr:.2g}) and resume, or start with --fresh."
            )
        if config.max_grad_norm:
            scaler.unscale_(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(_unwrap(trained))
        if ctx.is_main:
            seconds = time.perf_counter() - tick
            per_iter = self.monitor.step_time(seconds)
            done = iteration + 1
            remaining = config.iterations - done
            parts = {n: round(float(v), 5) for n, v in zip(names, totals)}
            self.monitor.log(type="train", iteration=done, loss=round(total, 5), losses=parts,
                             lr=lr, sec_per_iter=round(seconds, 4), time=time.time())
            self.say_progress(done, total, lr, per_iter, remaining)

    def say_progress(self, done: int, loss: float, lr: float, per_iter: float,
                     remaining: int) -> None:
        evals_left = (remaining // self.config.eval_every) if self.config.eval_every else 0
        eval_cost = self.monitor.status.get("eval_seconds", 0.0) * (evals_left + 1)
        fields = {"iteration": done, "loss": loss, "lr": lr, "sec_per_iter": per_iter,
                  "eta_s": remaining * per_iter + eval_cost}
        self.monitor.update(force=False, state="training",
                            message=f"iteration {done} of {self.config.iterations}", **fields)
        if self.progress:
            self.progress({"state": "training", **fields})

    def evaluate(self, model, data: PreparedData, iteration: int) -> dict[str, Any] | None:
        """Rank 0 scores the held-out split; the others wait for its result."""
        row = None
        if self.ctx.is_main:
            try:
                row = self._evaluate_here(model, data, iteration)
            except Exception as exc:
                self.ctx.broadcast(shareable(exc))  # the others stop with the same error
                raise
        row = self.ctx.broadcast(row)  # every process keeps the same history
        if not self.ctx.is_main:
            self.history.append(row)
        return row

    def _evaluate_here(self, model, data: PreparedData, iteration: int) -> dict[str, Any]:
        tick = time.perf_counter()
        self.say("evaluating", f"evaluating on {len(data.val.image_ids)} held-out images "
                 f"at iteration {iteration}", iteration=iteration)
        detector = None
        model = self.eval_model(model)
        if self.is_yolox:
            from cowdemo.training.yolox import detector_for

            detector = detector_for(model, self.config.classes, self.config.image_size,
                                    self.ctx.device, self.amp)
        result = evaluate_network(model, data.val, self.config.classes, self.ctx.device,
                                  self.config.batch_size, self.amp, detector=detector)
        row = {"type": "eval", "iteration": iteration, **_finite(result.stats),
               "per_class_AP50": {k: v["AP50"] for k, v in result.per_class_ap.items()},
               "time": time.time()}
        self.history.append(row)
        self.monitor.log(**row)
        self.monitor.update(last_eval=row, eval_seconds=time.perf_counter() - tick)
        if self.progress:
            self.progress({"state": "evaluated", **row})
        return row

    # 4. the end -----------------------------------------------------------------------------
    def finish(self, model, base, data: PreparedData, dataset_hash: str, iteration: int,
               report: dict[str, Any], resumed_from: int | None) -> TrainResult:
        last = self.history[-1]
        metrics = {k: last[k] for k in ("AP", "AP50", "AP75")}  # what model pickers show
        stats = {k: v for k, v in last.items() if isinstance(v, float) and k != "time"}
        if self.ctx.is_main:
            self.say("saving", f"writing {self.out_path.name}", iteration=iteration)
            metadata = {
                "iteration": iteration,
                "iterations": self.config.iterations,
                "metrics": metrics,
                "heldout_stats": stats,
                "dataset": self.dataset_label,
                "dataset_hash": dataset_hash,
                "heldout_images": len(data.val.image_ids),
                "settings": self.config.to_dict(),
                "inference": self.inference_settings(),
                "ema": self.ema is not None,
                "from_scratch": self.config.from_scratch,
                "history": [{k: r[k] for k in ("iteration", "AP", "AP50")} for r in
                            self.history],
                "data_report": {k: report[k] for k in ("summary", "counts", "boxes")},
                "base_seeded_classes": list(base.seeded_classes),
                "world_size": self.ctx.world_size,
                "trained_seconds": round(self.elapsed(), 1),
                "created_at": time.time(),
            }
            try:
                save_checkpoint(self.out_path, self.eval_model(model), base.architecture,
                                self.config.classes, base.base_name, metadata)
            except OSError as exc:
                if exc.errno in _DISK_ERRORS:
                    raise disk_error(self.out_path, exc, "The resume checkpoint is intact.") \
                        from None
                raise
            self.state_path.unlink(missing_ok=True)
        self.ctx.barrier()
        result = self._result(iteration, report, resumed_from, stopped=False, metrics=metrics)
        if self.ctx.is_main:
            from cowdemo.training.records import compare_and_record

            self.say("evaluating", "comparing with the base model and storing the runs"
                     if self.compare else "storing the run", iteration=iteration)
            compare_and_record(result, self.config, data.val, dataset_hash,
                               self.dataset_label, self.ctx.device, compare=self.compare,
                               record=self.record)
            self.say("completed", f"{self.out_path.stem} is ready: AP50 "
                     f"{metrics.get('AP50', float('nan')):.3f} on {len(data.val.image_ids)} "
                     "held-out images", iteration=iteration, metrics=metrics,
                     comparison=result.comparison, run_ids=result.run_ids,
                     ended_at=time.time(), eta_s=0)
        return result

    def inference_settings(self) -> dict[str, Any]:
        if self.is_yolox:
            from cowdemo.models.yolox_torch import inference_settings as yolox_settings

            return yolox_settings(self.config.image_size)
        return inference_settings(self.config.train_sizes(), self.config.longest_side())

    def _result(self, iteration: int, report: dict[str, Any], resumed_from: int | None,
                stopped: bool, metrics: dict[str, float] | None = None) -> TrainResult:
        return TrainResult(
            checkpoint=self.out_path if not stopped else self.state_path,
            name=self.out_path.stem, iteration=iteration, iterations=self.config.iterations,
            metrics=metrics or {}, history=list(self.history), report=report,
            resumed_from=resumed_from, stopped=stopped, duration_s=self.elapsed(),
        )  # fmt: skip


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def _finite(stats: dict[str, float]) -> dict[str, float]:
    return {k: (float(v) if math.isfinite(v) else -1.0) for k, v in stats.items()}


def train(
    config: TrainConfig,
    dataset: CocoDataset | str,
    *,
    out: str | Path | None = None,
    val_dataset: CocoDataset | str | None = None,
    monitor_dir: str | Path | None = None,
    fresh: bool = False,
    compare: bool = True,
    record: bool = True,
    progress: Progress | None = None,
    images: str | None = None,
) -> TrainResult:
    """Fine-tune ``config.base`` on ``dataset`` (a CocoDataset, a store name, a folder, a COCO
    instances JSON with ``images``, or a Deep Lake path / ``hub://`` URL) and write
    ``out`` (``checkpoints/NAME.pt``). A run with a resume state for ``out`` continues from it
    (``fresh=True`` starts over). Under torchrun this is one process of a DDP run."""
    from cowdemo.training.sources import open_training_dataset

    ctx = init_distributed(config.device)
    # Tiny gradients of a fresh head become denormal floats, which x86 CPUs handle up to 100x
    # slower; flushing them to zero changes nothing a detector learns.
    flush = ctx.device == "cpu" and torch.set_flush_denormal(True)
    try:
        label = dataset if isinstance(dataset, str) else dataset.name
        out_path = output_path(out, config)
        opening = Monitor(Path(monitor_dir) if monitor_dir else state_dir(out_path),
                          enabled=ctx.is_main)

        def importing(done: int, total: int) -> None:
            message = f"importing {label}: {done} of {total} images"
            opening.update(force=done == total, state="preparing", message=message,
                           imported=[done, total])
            if progress and ctx.is_main:
                progress({"state": "importing", "message": message, "done": done,
                          "total": total})

        if not isinstance(dataset, CocoDataset):
            opening.update(state="preparing", message=f"opening the dataset {label}")
            dataset = open_training_dataset(dataset, config.classes, images=images,
                                            is_main=ctx.is_main, barrier=ctx.barrier,
                                            progress=importing)
        if val_dataset is not None and not isinstance(val_dataset, CocoDataset):
            opening.update(state="preparing", message=f"opening the dataset {val_dataset}")
            val_dataset = open_training_dataset(val_dataset, config.classes,
                                                is_main=ctx.is_main, barrier=ctx.barrier)
        trainer = Trainer(config, dataset, out_path, val_dataset=val_dataset,
                          monitor_dir=Path(monitor_dir) if monitor_dir else None, fresh=fresh,
                          compare=compare, record=record, progress=progress, ctx=ctx,
                          dataset_label=str(label))
        lock = contextlib.nullcontext()
        if ctx.is_main and not ctx.distributed and not lock_held_by_parent():
            lock = DeviceLock(ctx.device, {"out": str(out_path)})
        with lock:
            try:
                return trainer.run()
            except CowdemoError as exc:
                release_inherited_locks()  # the device is free before "failed" is shown
                trainer.say("failed", str(exc), error=str(exc), ended_at=time.time())
                raise
            except BaseException as exc:
                release_inherited_locks()
                message = ("interrupted" if isinstance(exc, KeyboardInterrupt)
                           else f"{type(exc).__name__}: {exc}")
                trainer.say("failed", message, error=message, ended_at=time.time())
                raise
    finally:
        if flush:
            torch.set_flush_denormal(False)
        ctx.close()


def remove_run(out_path: Path) -> None:
    """Delete a run's resume state and logs (not the finished model)."""
    shutil.rmtree(state_dir(out_path), ignore_errors=True)
