"""YOLOX in PyTorch: the shared YOLOX-Nano ONNX export rebuilt as a trainable module gives
onnxruntime's raw output on the real cow photo, and the same boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import cow_photo_path, shared_path

from cowdemo.coco import COCO_CLASSES
from cowdemo.errors import CowdemoError
from cowdemo.images import load
from cowdemo.models.yolox_onnx import YoloxOnnxDetector, letterbox
from cowdemo.models.yolox_torch import (
    StatsFrozenBatchNorm2d,
    YoloxTorchDetector,
    build_module,
    conv_call_order,
    freeze_batchnorm_statistics,
    module_from_onnx,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nano():
    path = shared_path("models/yolox-nano/yolox_nano.onnx")
    module, info = module_from_onnx(path)
    return path, module, info


@pytest.fixture(scope="module")
def cow_rgb() -> np.ndarray:
    return load(cow_photo_path().read_bytes())


def test_the_onnx_export_becomes_a_yolox_nano_module(nano):
    _, module, info = nano
    assert (info.size, info.num_classes, info.input_size) == ("nano", 80, (416, 416))
    assert info.convolutions == len(conv_call_order(module, (64, 64)))
    assert all(p.requires_grad for p in module.parameters()), "the rebuilt module trains"


def test_pytorch_reproduces_onnxruntime_raw_output_on_the_real_cow_photo(nano, cow_rgb):
    import onnxruntime as ort

    path, module, _ = nano
    chw, _ = letterbox(cow_rgb, 416)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: chw[None]})[0]
    module.eval()
    with torch.no_grad():
        got = module(torch.from_numpy(chw[None])).numpy()
    assert got.shape == expected.shape == (1, 3549, 85)
    difference = float(np.abs(got - expected).max())
    print(f"max |PyTorch - onnxruntime| on the cow photo: {difference:.2e}")
    assert difference <= 1e-3
    assert float(expected[0, :, 4].max()) > 0.5, "the photo has a confident object"


def test_pytorch_and_onnx_backends_find_the_same_cow(nano, cow_rgb):
    path, module, info = nano
    torch_dets = YoloxTorchDetector("nano-torch", module, COCO_CLASSES, info.input_size) \
        .predict(cow_rgb).filter(0.5)
    onnx_dets = YoloxOnnxDetector(path).predict(cow_rgb).filter(0.5)
    assert list(torch_dets.class_names) == list(onnx_dets.class_names)
    assert "cow" in list(torch_dets.class_names)
    np.testing.assert_allclose(torch_dets.xyxy, onnx_dets.xyxy, atol=0.05)
    np.testing.assert_allclose(torch_dets.scores, onnx_dets.scores, atol=1e-3)


def test_frozen_statistics_keep_training_mode_output_equal_to_eval(nano, cow_rgb):
    """A rebuilt base trains with its folded statistics: in train mode the network's features
    are those of eval mode (plain BatchNorm would use the batch's statistics instead)."""
    import copy

    _, module, _ = nano
    frozen = copy.deepcopy(module)
    assert freeze_batchnorm_statistics(frozen) > 50
    assert all(type(m) is not torch.nn.BatchNorm2d for m in frozen.modules())
    assert any(isinstance(m, StatsFrozenBatchNorm2d) for m in frozen.modules())
    chw, _ = letterbox(cow_rgb, 416)
    x = torch.from_numpy(chw[None])
    with torch.no_grad():
        module.eval()
        expected = module.backbone(x)
        frozen.train()
        got = frozen.backbone(x)
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, atol=1e-4)


def test_a_file_that_is_not_a_yolox_export_gives_one_clear_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(CowdemoError, match="not a readable ONNX model"):
        module_from_onnx(bad)


def test_other_onnx_graphs_match_no_yolox_size(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(1, 2))
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False,
                      input_names=["images"])
    with pytest.raises(CowdemoError, match="match no YOLOX size"):
        module_from_onnx(path)


def test_a_built_module_has_the_asked_classes():
    module = build_module("nano", num_classes=3)
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 8 * 8 + 4 * 4 + 2 * 2, 5 + 3)
