"""Fine-tuning YOLOX through the project's loop, and transfer learning measured: the shared
YOLOX-Nano COCO weights (through the ONNX-to-PyTorch path) against random weights, the same short
fine-tune on synthetic cows, scored on the same held-out images."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from helpers import shared_path
from training_support import synthetic

from cowdemo.datasets.coco import CocoDataset
from cowdemo.errors import CowdemoError
from cowdemo.models.registry import find_model, load_detector
from cowdemo.training import TrainConfig, train
from cowdemo.training.yolox import DEFAULTS, letterbox_batch, replace_head, size_at

pytestmark = pytest.mark.slow

#: The short CPU fine-tune both starts get: 20 steps of 8 images at 192 pixels.
SHORT = {"iterations": 20, "batch_size": 8, "image_size": 192, "scale_jitter": (1.0, 1.0),
         "warmup": 2, "eval_every": 0, "device": "cpu", "seed": 0}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("yolox-train")
    saved = {k: os.environ.get(k) for k in ("COWDEMO_CHECKPOINTS", "COWDEMO_OFFLINE",
                                            "COWDEMO_RUNS_DB")}
    os.environ.update(COWDEMO_CHECKPOINTS=str(root / "checkpoints"), COWDEMO_OFFLINE="1",
                      COWDEMO_RUNS_DB=f"sqlite:///{root / 'runs.sqlite'}")
    (root / "checkpoints").mkdir()
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def cows(env) -> CocoDataset:
    """200 synthetic pasture scenes (256x192); 40 are held out."""
    return CocoDataset.load(synthetic(env / "cows", n=200, seed=11))


@pytest.fixture(scope="module")
def onnx_base() -> str:
    return str(shared_path("models/yolox-nano/yolox_nano.onnx"))


@pytest.fixture(scope="module")
def runs(env, cows, onnx_base):
    results = {}
    for start in ("pretrained", "scratch"):
        config = TrainConfig.for_base(onnx_base, classes=("cow",), **SHORT,
                                      from_scratch=start == "scratch")
        results[start] = train(config, cows, out=f"cows-nano-{start}", compare=False,
                               record=False)
    return results


def test_transfer_learning_pretrained_beats_scratch_and_the_coco_model_before(runs):
    pretrained, scratch = runs["pretrained"], runs["scratch"]
    before = pretrained.history[0]  # iteration 0: COCO's cow row, before any step
    assert before["iteration"] == 0 and pretrained.history[-1]["iteration"] == 20
    after, from_scratch = pretrained.metrics["AP50"], scratch.metrics["AP50"]
    print(f"\nheld-out AP50 on {pretrained.report['val_images']} synthetic cow images: "
          f"COCO YOLOX-Nano before fine-tuning {before['AP50']:.3f}, after 20 steps from the "
          f"COCO weights {after:.3f}, after the same 20 steps from random weights "
          f"{from_scratch:.3f}")
    assert after > from_scratch + 0.3
    assert after > before["AP50"] + 0.1


def test_a_yolox_fine_tune_is_a_self_describing_checkpoint_any_picker_loads(runs, cows):
    result = runs["pretrained"]
    spec = find_model(result.name)
    assert spec.kind == "checkpoint" and spec.architecture == "yolox-nano"
    assert spec.classes == ("cow",) and spec.metadata["inference"] == {"input_size": [192, 192]}
    assert spec.metadata["ema"] is True and spec.metadata["base_seeded_classes"] == ["cow"]
    detector = load_detector(result.name, device="cpu")
    image_id = cows.image_ids[0]
    dets = detector.predict(cows.read_image(image_id)).filter(0.5)
    assert len(dets) >= 1 and set(dets.class_names) == {"cow"}


def test_defaults_for_a_yolox_base_are_the_cpu_ones(onnx_base):
    config = TrainConfig.for_base(onnx_base, classes=("cow",))
    assert (config.image_size, config.batch_size, config.iterations) == (
        DEFAULTS["image_size"], DEFAULTS["batch_size"], DEFAULTS["iterations"])
    assert TrainConfig.for_base("frcnn-r50-fpn-coco").image_size == 800


def test_letterboxed_labels_are_class_and_centre_size_in_input_pixels():
    image = torch.zeros(3, 100, 200, dtype=torch.uint8)  # h 100, w 200: ratio 0.64 into 128
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 60.0, 40.0]]),
                "labels": torch.tensor([2])}]
    x, labels = letterbox_batch([image], targets, 128)
    assert x.shape == (1, 3, 128, 128) and float(x[0, 0, 100, 0]) == 114.0
    np.testing.assert_allclose(labels[0, 0].numpy(), [1, 35 * 0.64, 30 * 0.64, 50 * 0.64,
                                                       20 * 0.64], rtol=1e-6)
    sizes = (128, 160, 192)
    assert {size_at(i, sizes, 0) for i in range(40)} == set(sizes)
    assert [size_at(i, sizes, 0) for i in range(5)] == [size_at(i, sizes, 0) for i in range(5)]


def test_the_new_head_keeps_the_base_rows_of_known_classes():
    from cowdemo.coco import COCO_CLASSES
    from cowdemo.models.yolox_torch import build_module

    module = build_module("nano", 80)
    old = [conv.weight.detach().clone() for conv in module.head.cls_preds]
    seeded = replace_head(module, ("zebra-ish", "cow"), COCO_CLASSES)
    assert seeded == ("cow",) and module.head.num_classes == 2
    for conv, weights in zip(module.head.cls_preds, old):
        assert torch.equal(conv.weight[1], weights[COCO_CLASSES.index("cow")])


def test_bad_yolox_settings_fail_before_training(env, cows, onnx_base):
    config = TrainConfig.for_base(onnx_base, classes=("cow",), image_size=200, iterations=1)
    with pytest.raises(CowdemoError, match="multiple of 32"):
        train(config, cows, out="bad-size", compare=False, record=False)
    config = TrainConfig(base="frcnn-mobilenet-v3-coco", from_scratch=True, iterations=1)
    with pytest.raises(CowdemoError, match="YOLOX bases only"):
        train(config, cows, out="bad-scratch", compare=False, record=False)


def test_an_exported_fine_tune_loads_in_the_onnx_backend_and_equals_pytorch(runs, cows, env):
    import subprocess
    import sys

    from cowdemo.models.yolox_onnx import YoloxOnnxDetector, letterbox

    result = runs["pretrained"]
    run = subprocess.run([sys.executable, "-m", "cowdemo.cli", "export", result.name,
                          "--format", "onnx"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    path = result.checkpoint.with_name(f"{result.checkpoint.stem}-onnx.onnx")
    assert run.stdout.strip() == f"wrote {path}"
    onnx_detector = YoloxOnnxDetector(path)
    assert onnx_detector.classes == ("cow",) and onnx_detector.input_size == (192, 192)
    torch_detector = load_detector(result.name, device="cpu")
    chw, _ = letterbox(cows.read_image(cows.image_ids[1]), 192)
    expected = torch_detector.raw(chw[None])
    got = onnx_detector.session.run(None, {"images": chw[None]})[0]
    assert float(np.abs(got - expected).max()) <= 1e-3
    assert find_model(path.stem).kind == "onnx-yolox", "listed with the ONNX models"
    assert find_model(result.name).kind == "checkpoint", "the fine-tune keeps its own name"


def test_export_refuses_what_is_not_a_yolox_fine_tune(env, onnx_base):
    from cowdemo.models.export import export_onnx

    with pytest.raises(CowdemoError, match="not a YOLOX fine-tune"):
        export_onnx(onnx_base)
