"""Seconds per training iteration: cowdemo's fine-tuning loop against a plain torchvision
reference loop on the same model, images and settings, measured in the same run.

The reference is the loop of torchvision's detection tutorial: images preloaded as tensors,
``loss = sum(model(images, targets).values())``, ``backward``, SGD ``step``; no data loading,
augmentation, logging or checkpoints. cowdemo's loop also reads and flips images, picks a scale
per batch, keeps warm-up and schedule, checks the loss and writes the metrics log and status
every step. Both loops do the same numerics: gradients clipped at 10 (torchvision's detection
references' ``--clip-grad-norm``) and, on CPU, denormal floats flushed to zero. Without them
the random-init R50-FPN diverges to NaN within a few steps (NaN boxes are then dropped, so the
work shrinks and the timing means nothing) and denormals make steps up to 3x slower. Same network
(base weights random: COCO weights cannot be downloaded here; the compute is the same), same
new head, frozen BatchNorm and backbone stages, image size, RoIs and proposals. The median
step after warm-up is reported for both (and the fastest step: on a shared machine the
minimum is the least disturbed measure of the work itself), over ``--rounds`` alternating
repeats, so load from other programs hits both sides alike.

    .venv/bin/python bench/bench_train.py [--iterations 12] [--rounds 2]
        [--workloads mobilenet,r50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import torch  # noqa: E402
from machine import describe  # noqa: E402
from table import HEADER, row  # noqa: E402

from cowdemo.datasets.coco import CocoDataset  # noqa: E402
from cowdemo.datasets.synthetic import make_dataset  # noqa: E402
from cowdemo.devices import resolve_device  # noqa: E402
from cowdemo.training import TrainConfig, train  # noqa: E402
from cowdemo.training.data import prepare_data  # noqa: E402
from cowdemo.training.surgery import configure_sizes, prepare_base  # noqa: E402

WORKLOADS = {
    "mobilenet": ("frcnn-mobilenet-v3", "frcnn-mobilenet-v3-coco", 320, 2,
                  "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"),
    "r50": ("frcnn-r50-fpn", "frcnn-r50-fpn-coco", 512, 2,
            "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"),
}
WARMUP = 2


def base_weights(folder: Path, arch: str, filename: str) -> None:
    from cowdemo.models.torchvision_frcnn import get_architecture

    torch.manual_seed(0)
    torch.save(get_architecture(arch).build(91).state_dict(), folder / filename)


def reference(config: TrainConfig, dataset: CocoDataset, device: str, iterations: int) -> list:
    """torchvision's tutorial loop on the same network and images."""
    base = prepare_base(config.base, config.classes, batchnorm=config.batchnorm,
                        frozen_stages=config.freeze_stages)
    model = base.model
    configure_sizes(model, (config.image_size,), config.longest_side(), config.rois_per_image,
                    config.proposals_per_image)
    model.to(device).train()
    data = prepare_data(dataset, config.classes, seed=0)
    samples = []
    for target in data.train:
        rgb = dataset.read_image(target.image_id)
        samples.append((torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).to(device),
                        {"boxes": torch.from_numpy(target.boxes).to(device),
                         "labels": torch.from_numpy(target.labels).to(device)}))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.peak_lr(), momentum=0.9, weight_decay=1e-4)
    flush = device == "cpu" and torch.set_flush_denormal(True)
    times = []
    try:
        for i in range(iterations):
            batch = [samples[(i * config.batch_size + k) % len(samples)]
                     for k in range(config.batch_size)]
            tick = time.perf_counter()
            losses = model([b[0] for b in batch], [b[1] for b in batch])
            loss = sum(losses.values())
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - tick)
            if not torch.isfinite(loss):
                raise SystemExit(f"the reference loop diverged at step {i + 1}: timings void")
    finally:
        if flush:
            torch.set_flush_denormal(False)
    return times[WARMUP:]


def cowdemo_loop(config: TrainConfig, dataset: CocoDataset, folder: Path) -> list:
    result = train(config, dataset, out=folder / "bench-run.pt", monitor_dir=folder / "run",
                   compare=False, record=False, fresh=True)
    rows = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    assert result.iteration == config.iterations
    return [r["sec_per_iter"] for r in rows if r["type"] == "train"][WARMUP:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--workloads", default="mobilenet,r50")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=2, help="alternating repeats")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.update(COWDEMO_CHECKPOINTS=str(tmp / "checkpoints"), COWDEMO_OFFLINE="1",
                          COWDEMO_DATA=str(tmp / "data"))
        (tmp / "checkpoints").mkdir()
        make_dataset(tmp / "cows", n_images=24, seed=1)  # 640x480 pasture scenes
        dataset = CocoDataset.load(tmp / "cows")
        for name in args.workloads.split(","):
            arch, base, size, batch, filename = WORKLOADS[name]
            base_weights(tmp / "checkpoints", arch, filename)
            config = TrainConfig(base=base, iterations=args.iterations + WARMUP, batch_size=batch,
                                 image_size=size, scale_jitter=(1.0, 1.0), eval_every=0,
                                 eval_at_start=False, checkpoint_every=10_000, device=device,
                                 warmup=1)
            ref, ours = [], []
            for round_ in range(args.rounds):  # alternate, so load from elsewhere hits both
                ref += reference(config, dataset, device, args.iterations + WARMUP)
                ours += cowdemo_loop(config, dataset, tmp / f"{name}-{round_}")
            rows.append((arch, size, batch, ours, ref))
    print(f"machine: {describe()}; device {device}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(HEADER)
    med = statistics.median
    for arch, size, batch, ours, ref in rows:
        what = f"train step, {arch}, {size} px, batch {batch}, {device}, {len(ours)} steps each"
        print(row(f"{what}: median", med(ours), med(ref), "torchvision reference loop",
                  "s/iteration"))
        print(row(f"{what}: fastest step", min(ours), min(ref), "torchvision reference loop",
                  "s/iteration"))


if __name__ == "__main__":
    main()
