"""One training step on real tensors: flips move image and boxes together, and gradient
accumulation averages the gradients of the micro-batches it reads (one optimizer step for
``accumulate`` micro-batches)."""

from __future__ import annotations

import copy

import torch
from training_support import BASE, synthetic

from cowdemo.datasets.coco import CocoDataset
from cowdemo.models.torchvision_frcnn import get_architecture
from cowdemo.training.config import TrainConfig
from cowdemo.training.data import SampleStream, TrainSet, collate, prepare_data
from cowdemo.training.distributed import DistContext
from cowdemo.training.engine import LOSS_NAMES, Trainer, make_optimizer
from cowdemo.training.surgery import configure_sizes


def _train_set(tmp_path, hflip: bool, n: int = 6):
    dataset = CocoDataset.load(synthetic(tmp_path / "cows", n=n, seed=2))
    data = prepare_data(dataset, ("cow",), val_fraction=0.2, seed=0)
    stream = SampleStream(len(data.train), seed=0)
    return dataset, data, stream, TrainSet(dataset, data.train, stream, hflip)


def test_a_flipped_sample_flips_image_and_boxes_together(tmp_path):
    dataset, data, stream, flipping = _train_set(tmp_path, hflip=True)
    plain = TrainSet(dataset, data.train, stream, hflip=False)
    flipped_at = next(p for p in range(50) if stream.flip(p))
    kept_at = next(p for p in range(50) if not stream.flip(p))

    item = (flipped_at, stream[flipped_at])
    image, target = plain[item]
    f_image, f_target = flipping[item]
    width = image.shape[-1]
    assert torch.equal(f_image, image.flip(-1))
    assert torch.equal(f_target["labels"], target["labels"])
    boxes, f_boxes = target["boxes"], f_target["boxes"]
    assert len(boxes) >= 1
    assert torch.equal(f_boxes[:, [1, 3]], boxes[:, [1, 3]])
    assert torch.equal(f_boxes[:, 0], width - boxes[:, 2])
    assert torch.equal(f_boxes[:, 2], width - boxes[:, 0])
    for box, f_box in zip(boxes.int(), f_boxes.int()):  # the same pixels under each box
        x1, y1, x2, y2 = box.tolist()
        fx1, fy1, fx2, fy2 = f_box.tolist()
        assert torch.equal(f_image[:, fy1:fy2, fx1:fx2].flip(-1), image[:, y1:y2, x1:x2])

    item = (kept_at, stream[kept_at])
    image, target = plain[item]
    k_image, k_target = flipping[item]
    assert torch.equal(k_image, image) and torch.equal(k_target["boxes"], target["boxes"])


def test_gradient_accumulation_averages_the_micro_batches_it_reads(tmp_path):
    dataset, _, stream, train_set = _train_set(tmp_path, hflip=False)
    micro = [collate([train_set[(p, stream[p])]]) for p in range(3)]
    # lr 1, no warm-up, weight decay or clipping: the first SGD step (momentum buffer = the
    # gradient) moves every weight by exactly minus its gradient.
    config = TrainConfig(base=BASE, classes=("cow",), iterations=10, batch_size=1,
                         accumulate=2, lr=1.0, warmup=0, schedule="constant",
                         weight_decay=0.0, max_grad_norm=0.0, image_size=192, max_size=256,
                         scale_jitter=(1.0, 1.0), rois_per_image=64, proposals_per_image=100)
    torch.manual_seed(0)
    model = get_architecture("frcnn-mobilenet-v3").build(num_classes=2)
    configure_sizes(model, config.train_sizes(), config.longest_side(), config.rois_per_image,
                    config.proposals_per_image)
    model.train()
    reference = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    trainer = Trainer(config, dataset, tmp_path / "out.pt", val_dataset=None,
                      monitor_dir=tmp_path / "run", fresh=True, compare=False, record=False,
                      progress=None, ctx=DistContext(), dataset_label="cows")
    optimizer = make_optimizer(model, config, trainer.peak)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    batches = iter(micro)
    torch.manual_seed(7)  # the RPN and RoI samplers draw from torch's generator
    trainer.step(model, optimizer, scaler, batches, 0)
    assert next(batches) is micro[2], "one step read exactly two micro-batches"
    moved = {n: before[n] - p.detach() for n, p in model.named_parameters() if n in before}

    def gradients(batches_used: list, divide: int) -> dict[str, torch.Tensor]:
        net = copy.deepcopy(reference)
        torch.manual_seed(7)
        for images, targets in batches_used:
            losses = net([im.float().div(255) for im in images], targets)
            (sum(losses[k] for k in LOSS_NAMES) / divide).backward()
        return {n: p.grad for n, p in net.named_parameters() if n in before}

    averaged = gradients(micro[:2], divide=2)
    assert sum(float(g.abs().sum()) for g in averaged.values()) > 0
    for name, grad in averaged.items():
        assert torch.allclose(moved[name], grad, rtol=1e-3, atol=1e-6), name
    first_only = gradients(micro[:1], divide=1)
    assert not all(torch.allclose(moved[n], g, rtol=1e-3, atol=1e-6)
                   for n, g in first_only.items()), "the second micro-batch counts"
