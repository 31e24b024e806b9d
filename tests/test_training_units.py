"""Training parts on real data: settings, schedule, batch order, data checks (corrupt images,
boxes out of bounds, missing classes), model surgery, atomic checkpoints, locks, sources."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch
from training_support import BASE, synthetic

import cowdemo.files
from cowdemo.datasets.coco import CocoDataset
from cowdemo.errors import CowdemoError
from cowdemo.models.checkpoints import atomic_torch_save
from cowdemo.models.torchvision_frcnn import get_architecture
from cowdemo.training import engine
from cowdemo.training.config import TrainConfig
from cowdemo.training.data import BatchSampler, SampleStream, prepare_data, split_ids
from cowdemo.training.engine import lr_at, output_path
from cowdemo.training.locks import DeviceLock, busy
from cowdemo.training.monitor import Monitor, read_metrics
from cowdemo.training.surgery import (
    backbone_stages,
    freeze_batchnorm,
    freeze_stages,
    replace_head,
)


# --- settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"iterations": 0}, "iterations must be a whole number from 1"),
        ({"classes": ()}, "Choose at least one class"),
        ({"classes": ("cow", "cow")}, "repeat a name"),
        ({"optimizer": "rmsprop"}, "Unknown optimizer 'rmsprop': use sgd or adamw."),
        ({"lr": -1.0}, "learning rate must be above 0"),
        ({"val_fraction": 1.0}, "val fraction must be between 0 and 1"),
        ({"max_size": 100}, "max size 100 must be at least the image size 800"),
        ({"scale_jitter": (1.2, 0.9)}, "scale jitter must be"),
    ],
)
def test_bad_settings_are_one_clear_line(fields, message):
    with pytest.raises(CowdemoError) as info:
        TrainConfig(**fields)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_config_round_trips_and_resume_mismatch_names_the_change():
    config = TrainConfig(classes="cow, calf", iterations=50, image_size=320)
    assert config.classes == ("cow", "calf")
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert config.resume_mismatch(config.to_dict()) == ""
    other = TrainConfig(classes=("cow",), iterations=99, image_size=320)
    assert "classes ['cow', 'calf'] → ['cow']" in other.resume_mismatch(config.to_dict())
    assert other.train_sizes() == (256, 288, 320) and other.longest_side() == 534
    with pytest.raises(CowdemoError, match="Unknown training settings: colour"):
        TrainConfig.from_dict({"colour": "red"})


def test_learning_rate_warm_up_then_cosine_or_steps():
    config = TrainConfig(iterations=1000, warmup=100)
    assert lr_at(0, config, 0.01) == pytest.approx(1e-5)
    assert lr_at(50, config, 0.01) < lr_at(99, config, 0.01) < 0.01
    assert lr_at(100, config, 0.01) == pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi * 0.1)))
    assert lr_at(1000, config, 0.01) == pytest.approx(0.0)
    steps = TrainConfig(iterations=1000, warmup=0, schedule="step")
    assert [lr_at(i, steps, 1.0) for i in (0, 699, 700, 899, 900)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01])
    assert TrainConfig(batch_size=2).peak_lr() == 0.005
    assert TrainConfig(batch_size=4).peak_lr(world_size=4) == 0.02  # capped
    assert TrainConfig(optimizer="adamw").peak_lr() == 1e-4


def test_batch_order_is_a_function_of_position_and_shards_without_overlap():
    stream = SampleStream(10, seed=3)
    first_epoch = [stream[p] for p in range(10)]
    assert sorted(first_epoch) == list(range(10)) and first_epoch != list(range(10))
    assert [stream[p] for p in range(10, 20)] != first_epoch  # a new permutation per epoch
    one = iter(BatchSampler(stream, 2, start_micro=0))
    whole = [next(one) for _ in range(6)]
    resumed = iter(BatchSampler(SampleStream(10, seed=3), 2, start_micro=3))
    assert [next(resumed) for _ in range(3)] == whole[3:], "resume reads the same batches"
    ranks = [iter(BatchSampler(stream, 2, 0, rank, 2)) for rank in (0, 1)]
    shards = [[next(r) for _ in range(3)] for r in ranks]
    interleaved = [b for pair in zip(*shards) for b in pair]
    assert interleaved == whole, "two processes read the single-process stream between them"
    assert stream.flip(5) == SampleStream(10, seed=3).flip(5)


def test_split_is_seeded_and_keeps_one_of_each():
    train, val = split_ids(range(1, 11), 0.2, seed=0)
    assert len(val) == 2 and sorted(train + val) == list(range(1, 11))
    assert split_ids(range(1, 11), 0.2, seed=0) == (train, val)
    assert split_ids([1, 2], 0.9, seed=0)[0], "at least one training image"
    with pytest.raises(CowdemoError, match="cannot be split"):
        split_ids([1], 0.2, seed=0)


# --- bad data ---------------------------------------------------------------------------------
@pytest.fixture
def messy(tmp_path) -> CocoDataset:
    """Six synthetic images: one truncated PNG, one box reaching past the border, one box
    wholly outside, a crowd box and a dog box."""
    root = synthetic(tmp_path / "messy", n=6, seed=5, width=160, height=120)
    coco = json.loads((root / "annotations.json").read_text())
    png = root / "images" / "synthetic_000002.png"
    png.write_bytes(png.read_bytes()[:200])  # image 3: truncated
    coco["categories"].append({"id": 2, "name": "dog"})
    extra = [
        {"image_id": 1, "category_id": 1, "bbox": [140, 100, 40, 40]},  # past the corner
        {"image_id": 2, "category_id": 1, "bbox": [170, 10, 20, 20]},  # outside
        {"image_id": 4, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1},
        {"image_id": 5, "category_id": 2, "bbox": [10, 10, 30, 30]},
    ]
    for k, ann in enumerate(extra):
        ann.update(id=1000 + k, area=ann["bbox"][2] * ann["bbox"][3])
        ann.setdefault("iscrowd", 0)
    coco["annotations"] += extra
    (root / "annotations.json").write_text(json.dumps(coco))
    return CocoDataset.load(root)


def test_corrupt_images_skipped_and_boxes_clipped_or_rejected_are_listed(messy):
    data = prepare_data(messy, ["cow"], val_fraction=0.2, seed=1)
    report = data.report
    assert report.counts["skipped_images"] == 1
    assert "synthetic_000002.png" in report.skipped_images[0]
    assert report.train_images + report.val_images == 5
    clipped = [t for t in data.train if t.image_id == 1]
    if clipped:  # image 1 was drawn for training: its box ends at the border
        assert (clipped[0].boxes[:, 2] <= 160).all() and (clipped[0].boxes[:, 3] <= 120).all()
        assert any("box 1000" in line and "clipped" in line for line in report.clipped_boxes)
    outside = [t for t in data.train if t.image_id == 2]
    if outside:
        assert any("box 1001" in line and "no area" in line for line in report.rejected_boxes)
    for target in data.train:
        assert set(target.labels.tolist()) <= {1}, "dog and crowd boxes are not cow targets"
        assert (target.boxes[:, 2] > target.boxes[:, 0]).all()
    assert set(data.val.classes) == {"cow", "dog"}  # only_classes() narrows it in training
    assert "1 unreadable images skipped" in report.summary()


def test_every_box_problem_is_reported_when_all_images_train(messy):
    data = prepare_data(messy, ["cow"], val_dataset=messy.subset([6]))
    lines = data.report.clipped_boxes + data.report.rejected_boxes
    assert any("box 1000" in x for x in data.report.clipped_boxes), lines
    assert any("box 1001" in x for x in data.report.rejected_boxes), lines


def test_no_box_of_the_class_is_one_clear_error(messy):
    with pytest.raises(CowdemoError) as info:
        prepare_data(messy, ["horse"])
    text = str(info.value)
    assert "has no boxes of class 'horse'" in text and "cow" in text and "--classes" in text


def test_all_images_unreadable_is_one_clear_error(tmp_path):
    root = synthetic(tmp_path / "broken", n=3, seed=1, width=64, height=48)
    for png in (root / "images").glob("*.png"):
        png.write_bytes(b"not a png")
    with pytest.raises(CowdemoError, match="No image of dataset broken could be read"):
        prepare_data(CocoDataset.load(root), ["cow"])


# --- model surgery ----------------------------------------------------------------------------
def test_new_head_keeps_the_base_rows_of_known_classes():
    torch.manual_seed(0)
    model = get_architecture("frcnn-mobilenet-v3").build(91)
    old = model.roi_heads.box_predictor
    cow_row, background = old.cls_score.weight[21].clone(), old.cls_score.weight[0].clone()
    cow_box = old.bbox_pred.weight[84:88].clone()
    seeded = replace_head(model, ("cow", "calf"), {"cow": 21, "dog": 18})
    new = model.roi_heads.box_predictor
    assert seeded == ("cow",)
    assert new.cls_score.out_features == 3 and new.bbox_pred.out_features == 12
    assert torch.equal(new.cls_score.weight[1], cow_row)
    assert torch.equal(new.cls_score.weight[0], background)
    assert torch.equal(new.bbox_pred.weight[4:8], cow_box)


def test_freezing_batchnorm_and_stages():
    torch.manual_seed(0)
    model = get_architecture("frcnn-mobilenet-v3").build(2)
    assert len(backbone_stages(model)) == 6
    replaced = freeze_batchnorm(model)
    assert replaced > 30
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    frozen = freeze_stages(model, 3)
    body = [p for p in model.backbone.body.parameters()]
    assert frozen > 0 and any(p.requires_grad for p in body)
    assert not all(p.requires_grad for p in body)
    with pytest.raises(CowdemoError, match="has 6 stages"):
        freeze_stages(model, 7)
    x = torch.rand(3, 96, 128)
    model.eval()
    with torch.no_grad():
        assert isinstance(model([x])[0]["boxes"], torch.Tensor)


# --- files, locks, logs -----------------------------------------------------------------------
def test_a_failed_write_keeps_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "run.training" / "last.pt"
    atomic_torch_save({"iteration": 100, "w": torch.ones(3)}, path)

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cowdemo.files.os, "fsync", full_disk)
    with pytest.raises(OSError) as info:
        atomic_torch_save({"iteration": 200, "w": torch.zeros(3)}, path)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["iteration"] == 100
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"], "no temp file left"
    error = engine.disk_error(path, info.value, "The checkpoint of iteration 100 is intact.")
    assert "the disk is full. The checkpoint of iteration 100 is intact." in str(error)


def test_one_job_per_device(tmp_path, monkeypatch):
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path))
    assert busy("cuda:0") is None
    with DeviceLock("cuda:0", {"job": "abc", "out": "/x/cows.pt"}):
        assert busy("cuda:0")["job"] == "abc"
        assert busy("cpu") is None
        with pytest.raises(CowdemoError) as info:
            DeviceLock("cuda:0").acquire()
        assert "already running on cuda:0 (job abc (cows)" in str(info.value)
    assert busy("cuda:0") is None


def test_metrics_of_an_interrupted_attempt_are_replaced_by_the_resume(tmp_path):
    monitor = Monitor(tmp_path)
    for i in range(1, 8):
        monitor.log(type="train", iteration=i, loss=1.0 / i)
    monitor.log(type="resume", iteration=5)
    for i in range(6, 9):
        monitor.log(type="train", iteration=i, loss=0.5)
    with open(tmp_path / "metrics.jsonl", "a") as handle:
        handle.write('{"type": "train", "iter')  # a torn last line
    rows = [r for r in read_metrics(tmp_path) if r["type"] == "train"]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert rows[-1]["loss"] == 0.5


def test_output_names(tmp_path, monkeypatch):
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(tmp_path))
    config = TrainConfig(base="frcnn-r50-fpn-coco")
    assert output_path("cows", config) == tmp_path / "cows.pt"
    assert output_path(None, config) == tmp_path / "cow-frcnn-r50-fpn-coco-ft.pt"
    assert output_path(tmp_path / "sub" / "x.pt", config) == tmp_path / "sub" / "x.pt"
    assert output_path("checkpoints/cows-r50", config).name == "cows-r50.pt"


def test_torchrun_command_line():
    from cowdemo.training.distributed import torchrun_command

    local = torchrun_command(["train", "--dataset", "d"], 2)
    assert local[1:3] == ["-m", "torch.distributed.run"] and "--standalone" in local
    assert local[-5:] == ["-m", "cowdemo.cli", "train", "--dataset", "d"]
    multi = torchrun_command(["train"], 8, "2", 1, "10.0.0.1", 29400)
    start = multi.index("--node-rank")
    assert multi[start:start + 6] == ["--node-rank", "1", "--master-addr", "10.0.0.1",
                                      "--master-port", "29400"]


def test_charts_show_first_steps_as_points_and_thin_long_runs_keeping_the_last():
    from cowdemo.training import charts
    from cowdemo.training.engine import LOSS_NAMES
    from cowdemo.training.yolox import LOSS_NAMES as YOLOX_LOSS_NAMES

    def rows(n: int, names=LOSS_NAMES) -> list[dict]:
        return [{"type": "train", "iteration": i, "loss": 2.0 / i, "lr": 0.01,
                 "losses": {k: 0.5 / i for k in names}} for i in range(1, n + 1)]

    yolox = charts.loss_figure(rows(3, YOLOX_LOSS_NAMES))  # only the parts the run has
    assert [t.name for t in yolox.data][2:] == ["box IoU (x5)", "objectness", "class", "box L1"]

    first = charts.loss_figure(rows(1))
    assert [t.name for t in first.data][:2] == ["total", "total (smoothed)"]
    assert len(first.data) == 6 and all(t.mode == "lines+markers" for t in first.data)
    assert list(first.data[0].x) == [1] and first.layout.title.text == "Loss (iteration 1)"
    assert charts.lr_figure(rows(1)).data[0].mode == "lines+markers"

    long = charts.loss_figure(rows(5001))
    x = list(long.data[0].x)
    assert long.data[0].mode == "lines" and len(x) <= charts.MAX_POINTS + 1
    assert x[0] == 1 and x[-1] == 5001 and x == sorted(x)
    assert long.data[0].y[-1] == pytest.approx(2.0 / 5001)

    evals = [{"type": "eval", "iteration": 0, "AP": -1.0, "AP50": 0.0, "AP75": -1.0},
             {"type": "eval", "iteration": 100, "AP": 0.4, "AP50": 0.7, "AP75": 0.35}]
    fig = charts.map_figure(evals)
    ap50 = next(t for t in fig.data if t.name == "AP50")
    ap = next(t for t in fig.data if t.name == "AP")
    assert list(ap50.y) == [0.0, 0.7] and list(ap.y) == [None, 0.4]  # -1: no value, not zero


def test_learning_rate_chart_shows_the_planned_schedule_behind_the_steps_done():
    from cowdemo.training import charts

    config = TrainConfig(base=BASE, classes=("cow",), iterations=1000, warmup=100,
                         schedule="cosine").to_dict()
    settings = TrainConfig.from_dict(config)
    done = [{"type": "train", "iteration": i, "loss": 1.0, "lr": lr_at(i - 1, settings, 0.02)}
            for i in range(1, 11)]
    fig = charts.lr_figure(done, config, 0.02)
    plan, steps = fig.data
    assert plan.name == "planned" and steps.name == "learning rate"
    assert plan.x[0] == 0 and plan.x[-1] == 1000 and 100 in plan.x
    peak_at = plan.x[int(np.argmax(plan.y))]
    assert peak_at == 100 and max(plan.y) == pytest.approx(0.02 * 0.5 * (1 + np.cos(np.pi / 10)))
    assert plan.y[-1] == pytest.approx(0.0, abs=1e-12)
    assert list(steps.x) == list(range(1, 11))
    assert charts.lr_figure(done, {"bogus": 1}, 0.02).data[0].name == "learning rate"


def test_progress_bar_follows_the_import_then_the_iterations():
    from cowdemo.ui.finetune import progress_text

    importing = {"state": "preparing", "message": "importing hub://x: 50 of 200 images",
                 "imported": [50, 200], "iteration": 0, "iterations": 1000}
    assert progress_text(importing) == (0.25, "importing hub://x: 50 of 200 images")
    checking = {**importing, "imported": [200, 200], "message": "checking the 200 images"}
    assert progress_text(checking) == (0.0, "iteration 0 of 1000")
    training = {**checking, "state": "training", "iteration": 250, "sec_per_iter": 1.5,
                "eta_s": 1125}
    assert progress_text(training) == (0.25, "iteration 250 of 1000 · 1.50 s/iteration · ETA "
                                             "19 min")


def test_the_suggested_model_name_holds_still_and_a_typed_name_is_kept():
    from cowdemo.ui.finetune import NAME_KEY, suggest_name

    state: dict = {}
    suggest_name(state, "herd", "yolox_nano", ["cow"], now=1_700_000_000)
    first = state[NAME_KEY]
    assert first.startswith("cow-herd-yolox_nano-")
    suggest_name(state, "herd", "yolox_nano", ["cow"], now=1_700_000_000 + 120)
    assert state[NAME_KEY] == first, "a new minute is not a new suggestion"
    suggest_name(state, "pasture", "yolox_nano", ["cow"], now=1_700_000_000 + 180)
    assert state[NAME_KEY].startswith("cow-pasture-yolox_nano-"), "an untouched name follows"
    state[NAME_KEY] = "my-herd"  # typed
    for dataset, later in (("pasture", 240), ("herd", 300)):
        suggest_name(state, dataset, "yolox_nano", ["cow"], now=1_700_000_000 + later)
        assert state[NAME_KEY] == "my-herd"
    del state[NAME_KEY]  # a job started with it: the next form gets a fresh suggestion
    suggest_name(state, "herd", "yolox_nano", ["cow"], now=1_700_000_000 + 360)
    assert state[NAME_KEY].startswith("cow-herd-yolox_nano-")
