"""`cowdemo train`: fine-tune a registry model on a dataset, on one device or many (DDP through
torchrun), resumable::

    cowdemo train --base frcnn-r50-fpn-coco --dataset cows --classes cow --iterations 1000 \\
        --out checkpoints/cows-r50
    cowdemo train ... --nproc-per-node 2                     # DDP on this machine (torchrun)
    cowdemo train ... --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --nproc-per-node 8

Running the same command again after an interruption (Ctrl-C, kill, crash) resumes from the
last checkpoint.
"""

from __future__ import annotations

import argparse
import sys

WORKER_FLAG = "--distributed-worker"
LAUNCH_DESTS = {"nproc_per_node", "nnodes", "node_rank", "master_addr", "master_port",
                "rdzv_endpoint", "rdzv_id", "ddp"}


def _scale_jitter(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("use LOW,HIGH, e.g. 0.8,1.0") from None
    return low, high


def config_from_args(args: argparse.Namespace):
    from cowdemo.training.config import TrainConfig

    return TrainConfig(
        base=args.base, classes=tuple(c.strip() for c in args.classes.split(",") if c.strip()),
        iterations=args.iterations, batch_size=args.batch_size, accumulate=args.accumulate,
        image_size=args.image_size, max_size=args.max_size, scale_jitter=args.scale_jitter,
        hflip=not args.no_flip, optimizer=args.optimizer, lr=args.lr,
        weight_decay=args.weight_decay, warmup=args.warmup, schedule=args.schedule,
        freeze_stages=args.freeze_stages, batchnorm=args.batchnorm,
        rois_per_image=args.rois_per_image, proposals_per_image=args.proposals_per_image,
        amp=not args.no_amp, eval_every=args.eval_every, eval_at_start=not args.no_eval_at_start,
        checkpoint_every=args.checkpoint_every, val_fraction=args.val_fraction, seed=args.seed,
        device=args.device, workers=args.workers,
    )  # fmt: skip


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """``train`` plus every setting that differs from its default, without the launch flags:
    the command line each torchrun worker runs."""
    argv = ["train"]
    for action in _ACTIONS:
        if not action.option_strings or action.dest in LAUNCH_DESTS or action.dest == "help":
            continue
        value = getattr(args, action.dest, None)
        if value is None or value == action.default or action.dest == "distributed_worker":
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):
            argv.append(flag)
        elif isinstance(value, tuple):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return [*argv, WORKER_FLAG]


#: The train parser's actions (set by ``register``), to rebuild a worker's command line.
_ACTIONS: list[argparse.Action] = []


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cowdemo.errors import CowdemoError

    if args.out and ".." in Path(args.out).parts:
        raise CowdemoError(f"--out {args.out}: a model name or checkpoints/NAME, not a path "
                           "that climbs out of a folder with '..'.")
    config = config_from_args(args)
    if args.nproc_per_node > 1 or str(args.nnodes) != "1" or args.ddp:
        return _launch_ddp(args, config)
    from cowdemo.training.engine import train

    def progress(event: dict) -> None:
        _print_progress(event, config.iterations)

    result = train(config, args.dataset, out=args.out, val_dataset=args.val_dataset,
                   images=args.images, fresh=args.fresh, compare=not args.no_compare,
                   progress=progress, monitor_dir=args.job_dir)
    if not _is_main():
        return 0
    if _LINE["open"]:
        print(file=sys.stderr)
    if result.stopped:
        print(f"stopped at iteration {result.iteration} of {result.iterations}; checkpoint "
              f"{result.checkpoint}. Run the same command again to resume.", file=sys.stderr)
        return 130
    _print_result(result)
    if result.report.get("counts", {}).get("skipped_images"):
        raise CowdemoError(f"{result.report['counts']['skipped_images']} unreadable images were "
                           "skipped (listed above); the model was trained without them.")
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _launch_ddp(args: argparse.Namespace, config) -> int:
    from cowdemo.devices import resolve_device
    from cowdemo.errors import CowdemoError
    from cowdemo.training.distributed import launch, torchrun_command
    from cowdemo.training.locks import LOCK_HELD_ENV, DeviceLock

    if args.nproc_per_node < 1:
        raise CowdemoError("--nproc-per-node must be at least 1.")
    device = resolve_device(config.device)
    if device.startswith("cuda"):
        import torch

        if args.nproc_per_node > torch.cuda.device_count():
            raise CowdemoError(
                f"--nproc-per-node {args.nproc_per_node} asks for more GPUs than this node has "
                f"({torch.cuda.device_count()}): one process per GPU."
            )
        devices = [f"cuda:{i}" for i in range(args.nproc_per_node)]
    else:
        devices = ["cpu"]
    _check_before_launch(args, config)
    locks = [DeviceLock(d, {"out": str(args.out or "")}).acquire() for d in devices]
    try:
        command = torchrun_command(
            _worker_argv(args),
            args.nproc_per_node, str(args.nnodes), args.node_rank, args.master_addr,
            args.master_port, args.rdzv_endpoint, args.rdzv_id,
        )  # fmt: skip
        print("launching: " + " ".join(command[1:]), file=sys.stderr)
        code = launch(command, env={LOCK_HELD_ENV: "1"})
    finally:
        for lock in locks:
            lock.release()
    if code != 0:
        raise CowdemoError(f"The distributed run ended with exit code {code} (messages above); "
                           "run the same command again to resume from the last checkpoint.")
    return 0


def _check_before_launch(args: argparse.Namespace, config) -> None:
    """Fail here with one line, not in N workers: the base model and the dataset (a Deep Lake
    or synthetic dataset is materialised once, the workers then read it)."""
    from cowdemo.errors import CowdemoError
    from cowdemo.models.registry import find_model
    from cowdemo.training.sources import open_training_dataset

    spec = find_model(config.base)
    if spec.status == "unavailable":
        raise CowdemoError(spec.reason or f"Model {spec.name} is unavailable.")
    open_training_dataset(args.dataset, config.classes, images=args.images)
    if args.val_dataset:
        open_training_dataset(args.val_dataset, config.classes)


_LINE = {"open": False}  # a progress line ended with "\r" is still on the terminal


def _print_progress(event: dict, total: int) -> None:
    """Steps and imports update one line in place; everything else gets a line of its own."""

    def say(text: str, in_place: bool = False) -> None:
        if in_place:
            print(f"\r{text}", end="", file=sys.stderr, flush=True)
        else:
            print(("\n" if _LINE["open"] else "") + text, file=sys.stderr, flush=True)
        _LINE["open"] = in_place

    state = event.get("state")
    if state == "training":
        eta = event.get("eta_s", 0)
        say(f"[{event['iteration']:>6}/{total}] loss {event['loss']:.4f}  lr "
            f"{event['lr']:.2e}  {event['sec_per_iter']:.2f} s/it  ETA {eta / 60:.1f} min ",
            in_place=True)
    elif state == "importing":
        say(event["message"], in_place=event["done"] < event["total"])
    elif state == "evaluated":
        say(f"  eval @ {event['iteration']}: AP {event['AP']:.4f}  AP50 {event['AP50']:.4f}"
            f"  AP75 {event['AP75']:.4f}")
    elif state == "failed":
        if _LINE["open"]:
            say("")  # end the progress line; the error follows once
    elif event.get("message"):
        say(event["message"])


def _print_result(result) -> None:
    report = result.report
    print(f"data: {report.get('summary', '')}")
    for kind in ("skipped_images", "clipped_boxes", "rejected_boxes"):
        for line in report.get(kind, []):
            print(f"  {kind.replace('_', ' ')}: {line}")
        extra = report.get("counts", {}).get(kind, 0) - len(report.get(kind, []))
        if extra > 0:
            print(f"  ... and {extra} more {kind.replace('_', ' ')}")
    if result.resumed_from is not None:
        print(f"resumed from iteration {result.resumed_from}")
    metrics = "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    print(f"model {result.name}: {result.checkpoint} ({result.iteration} iterations, "
          f"{result.duration_s / 60:.1f} min)")
    print(f"held-out: {metrics}")
    comparison = result.comparison or {}
    for key in ("base", "finetuned"):
        stats = comparison.get(key)
        if stats:
            name = comparison.get("base_model") if key == "base" else result.name
            text = stats.get("error") or "  ".join(f"{k} {v:.4f}" for k, v in stats.items())
            print(f"  {name}: {text}")
    if result.run_ids:
        print("runs: " + ", ".join(f"{k} {v}" for k, v in result.run_ids.items()))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="fine-tune a model on a dataset (resumable; DDP with --nproc-per-node)",
        description="Fine-tune a registry model on a dataset, on one device or many (DDP "
        "through torchrun). Run the same command again after an interruption to resume.",
    )
    p.add_argument("--base", default="frcnn-r50-fpn-coco",
                   help="registry model to start from (COCO model or earlier fine-tune)")
    p.add_argument("--dataset", required=True,
                   help="store name, dataset folder, COCO instances JSON, Deep Lake path or "
                   "hub:// URL, or synthetic[:N[:WxH]]")
    p.add_argument("--images", help="image folder of a COCO instances JSON (e.g. train2017/)")
    p.add_argument("--val-dataset", help="held-out dataset (default: a share of --dataset)")
    p.add_argument("--classes", default="cow", help="comma-separated classes to learn")
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--out", help="checkpoints/NAME (default: <classes>-<base>-ft)")
    p.add_argument("--batch-size", type=int, default=2, help="images per step and process")
    p.add_argument("--accumulate", type=int, default=1, help="micro-batches per step")
    p.add_argument("--image-size", type=int, default=800, help="shorter side in pixels")
    p.add_argument("--max-size", type=int, help="longer side cap (default 1333/800 x size)")
    p.add_argument("--scale-jitter", type=_scale_jitter, default=(0.8, 1.0),
                   help="LOW,HIGH factors on the image size (1,1: off)")
    p.add_argument("--no-flip", action="store_true", help="no horizontal flips")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--lr", type=float, help="peak learning rate (default from the batch)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100, help="warm-up iterations")
    p.add_argument("--schedule", choices=("cosine", "step", "constant"), default="cosine")
    p.add_argument("--freeze-stages", type=int,
                   help="backbone stages to keep fixed (default: torchvision's)")
    p.add_argument("--batchnorm", choices=("frozen", "train"), default="frozen")
    p.add_argument("--rois-per-image", type=int, default=512)
    p.add_argument("--proposals-per-image", type=int, default=2000)
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on GPU")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--no-eval-at-start", action="store_true")
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--workers", type=int, help="data-loading processes")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    p.add_argument("--no-compare", action="store_true",
                   help="do not evaluate the base model on the held-out images at the end")
    ddp = p.add_argument_group("distributed (torchrun)")
    ddp.add_argument("--nproc-per-node", type=int, default=1, help="processes on this node")
    ddp.add_argument("--ddp", action="store_true",
                     help="launch through torchrun even with one process (checks the DDP path)")
    ddp.add_argument("--nnodes", default="1", help="number of nodes (or MIN:MAX)")
    ddp.add_argument("--node-rank", type=int, default=0)
    ddp.add_argument("--master-addr", help="address of node 0")
    ddp.add_argument("--master-port", type=int, help="port on node 0 (default 29500)")
    ddp.add_argument("--rdzv-endpoint", help="host:port of a c10d rendezvous (elastic)")
    ddp.add_argument("--rdzv-id", help="rendezvous id shared by all nodes")
    p.add_argument(WORKER_FLAG, action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--job-dir", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_train)
    _ACTIONS[:] = p._actions
