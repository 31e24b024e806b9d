"""Seconds per YOLOX training iteration: cowdemo's loop (`Trainer.step`: reading and flipping
the images, letterboxing, YOLOX's training forward, backward, SGD, EMA, logging) against the
package's own training step on the same batches already letterboxed (what YOLOX's
``Trainer.train_one_iter`` does: forward with targets, backward, optimizer step, EMA update).
Both start from the shared YOLOX-Nano ONNX export, alternating, in one process.

    .venv/bin/python bench/bench_yolox_step.py --iterations 10 --size 320 --batch 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

ONNX = Path(__file__).resolve().parents[1].parent / "shared/models/yolox-nano/yolox_nano.onnx"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-yolox-"))
    os.environ.update(COWDEMO_CHECKPOINTS=str(root), COWDEMO_OFFLINE="1",
                      COWDEMO_DATA=str(root / "data"))
    from yolox.utils import ModelEMA

    from cowdemo.datasets.coco import CocoDataset
    from cowdemo.datasets.synthetic import make_dataset
    from cowdemo.training.config import TrainConfig
    from cowdemo.training.data import prepare_data
    from cowdemo.training.distributed import DistContext
    from cowdemo.training.engine import Trainer, make_optimizer
    from cowdemo.training.yolox import letterbox_batch, prepare_yolox_base

    torch.set_flush_denormal(True)
    dataset = CocoDataset.load(make_dataset(root / "cows", n_images=64, seed=3))
    config = TrainConfig.for_base(str(ONNX), classes=("cow",), iterations=1000,
                                  batch_size=args.batch, image_size=args.size,
                                  scale_jitter=(1.0, 1.0), warmup=0, lr=1e-3,
                                  device=args.device)
    ctx = DistContext()
    ctx.device = args.device
    trainer = Trainer(config, dataset, root / "bench.pt", val_dataset=None,
                      monitor_dir=root / "run", fresh=True, compare=False, record=False,
                      progress=None, ctx=ctx, dataset_label="cows")
    data = prepare_data(dataset, ("cow",), seed=0)
    ours = prepare_yolox_base(str(ONNX), ("cow",)).model.to(args.device).train()
    theirs = prepare_yolox_base(str(ONNX), ("cow",)).model.to(args.device).train()
    opt_ours, opt_theirs = make_optimizer(ours, config, 1e-3), make_optimizer(theirs, config, 1e-3)
    trainer.ema = ModelEMA(ours, 0.9998)
    ema_theirs = ModelEMA(theirs, 0.9998)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    batches = trainer.batches(data, 0)
    ready = [letterbox_batch(*next(trainer.batches(data, k)), args.size)
             for k in range(args.iterations + 1)]  # the same images, letterboxed beforehand

    def package_step(k: int) -> None:
        x, labels = ready[k]
        x, labels = x.to(args.device), labels.to(args.device)
        loss = theirs(x, labels)["total_loss"]
        opt_theirs.zero_grad()
        loss.backward()
        opt_theirs.step()
        ema_theirs.update(theirs)

    times: dict[str, list[float]] = {"cowdemo": [], "package": []}
    for k in range(args.iterations + 1):  # the first of each is a warm-up, not counted
        order = ("package", "cowdemo") if k % 2 else ("cowdemo", "package")  # alternate first
        for which in order:
            tick = time.perf_counter()
            if which == "cowdemo":
                trainer.step(ours, opt_ours, scaler, batches, k)
            else:
                package_step(k)
            if k:
                times[which].append(time.perf_counter() - tick)
    print({k: [round(v, 2) for v in vs] for k, vs in times.items()})
    mine, base = statistics.median(times["cowdemo"]), statistics.median(times["package"])
    load = os.getloadavg()[0]
    print(f"{describe()} | load {load:.1f} | YOLOX-Nano {args.size} px, batch {args.batch}, "
          f"{args.iterations} iterations | cowdemo {mine:.3f} s/it | package step "
          f"{base:.3f} s/it | ratio {mine / base:.2f}x")


if __name__ == "__main__":
    main()
