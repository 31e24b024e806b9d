"""torchvision backends through their real loading code: state dicts saved here, loaded with
weights_only, and real forward passes on real tensors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from cowdemo.box import DetectorBox
from cowdemo.errors import CowdemoError
from cowdemo.models import find_model, list_models, load_detector
from cowdemo.models.checkpoints import read_checkpoint_info, save_checkpoint
from cowdemo.models.registry import MISSING, READY, UNAVAILABLE
from cowdemo.models.torchvision_frcnn import get_architecture

R50_FILE = "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"
MOBILE_FILE = "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty checkpoints folder and torch cache, no downloads."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(folder))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    return folder


def biased_model(arch: str, num_classes: int, favoured_label: int) -> torch.nn.Module:
    """Random weights whose box classifier says ``favoured_label`` for every proposal, so a
    forward pass yields confident boxes of a known class."""
    torch.manual_seed(0)
    model = get_architecture(arch).build(num_classes)
    predictor = model.roi_heads.box_predictor
    with torch.no_grad():
        predictor.cls_score.weight.zero_()
        predictor.cls_score.bias.fill_(-10.0)
        predictor.cls_score.bias[favoured_label] = 10.0
    return model


@pytest.fixture
def scene() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    image[60:180, 80:240] = (250, 250, 250)
    return image


def test_offline_error_for_missing_coco_weights_word_for_word(isolated, tmp_path):
    with pytest.raises(CowdemoError) as info:
        load_detector("frcnn-r50-fpn-coco", device="cpu")
    assert str(info.value) == (
        f"Weights for frcnn-r50-fpn-coco not found: put {R50_FILE} in {isolated} "
        f"(or {tmp_path / 'torch' / 'hub' / 'checkpoints'}); "
        f"get it from https://download.pytorch.org/models/{R50_FILE}"
    )
    spec = find_model("frcnn-r50-fpn-coco")
    assert spec.status == UNAVAILABLE and spec.reason == str(info.value)


def test_missing_weights_online_are_listed_as_downloadable(isolated, monkeypatch):
    monkeypatch.delenv("COWDEMO_OFFLINE")
    spec = find_model("frcnn-mobilenet-v3-coco")
    assert spec.status == MISSING and spec.available
    assert "downloaded on first use when online" in spec.reason


@pytest.mark.slow
def test_r50_coco_state_dict_loads_and_maps_category_21_to_cow(isolated, scene):
    torch.save(
        biased_model("frcnn-r50-fpn", 91, favoured_label=21).state_dict(), isolated / R50_FILE
    )
    assert find_model("frcnn-r50-fpn-coco").status == READY
    detector = load_detector("frcnn-r50-fpn-coco", device="cpu")
    dets = detector.predict(scene)
    assert len(dets) > 0
    assert set(dets.class_names) == {"cow"} and set(dets.class_ids) == {19}
    assert (dets.scores > 0.99).all()
    assert (dets.xyxy[:, [0, 2]] <= 320).all() and (dets.xyxy[:, [1, 3]] <= 240).all()
    assert set(dets.notebook_view()["pred_classes"]) == {19}


def test_mobilenet_coco_dog_and_torch_cache_lookup(isolated, tmp_path, scene):
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(
        biased_model("frcnn-mobilenet-v3", 91, favoured_label=18).state_dict(), cache / MOBILE_FILE
    )
    spec = find_model("frcnn-mobilenet-v3-coco")
    assert spec.status == READY and spec.path == cache / MOBILE_FILE
    box = DetectorBox("frcnn-mobilenet-v3-coco", device="cpu", score_threshold=0.5)
    dets, drawn = box.predict(scene, visualize=True)
    assert len(dets) > 0 and set(dets.class_names) == {"dog"}
    assert set(dets.notebook_view()["pred_classes"]) == {16}, "the notebook's 16 = dog"
    assert drawn.shape == scene.shape and not np.array_equal(drawn, scene)
    again = box.predict_many([scene, scene], batch_size=2)
    np.testing.assert_allclose(again[0].xyxy, dets.xyxy, atol=1e-3)
    assert box.predict(scene).filter(classes=["cow"]) == box.predict(scene)[[]]


def test_fine_tuned_checkpoint_is_self_describing(isolated, scene):
    model = biased_model("frcnn-mobilenet-v3", 2, favoured_label=1)
    path = save_checkpoint(
        isolated / "cows-v1.pt",
        model,
        "frcnn-mobilenet-v3",
        ["cow"],
        "frcnn-mobilenet-v3-coco",
        {"iteration": 10, "metrics": {"AP50": 0.5}},
    )
    assert not list(isolated.glob(".*tmp"))
    info = read_checkpoint_info(path)
    assert info.classes == ("cow",) and info.base_model == "frcnn-mobilenet-v3-coco"
    spec = find_model("cows-v1")
    assert (
        spec.kind == "checkpoint" and spec.classes == ("cow",) and "AP50 0.500" in spec.description
    )
    dets = load_detector("cows-v1", device="cpu").predict(scene)
    assert len(dets) > 0 and set(dets.class_names) == {"cow"} and set(dets.class_ids) == {0}
    by_path = load_detector(str(path), device="cpu")
    assert by_path.classes == ("cow",)


def test_corrupt_and_foreign_weights_give_clear_errors(isolated, tmp_path):
    (isolated / MOBILE_FILE).write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CowdemoError, match="not a loadable frcnn-mobilenet-v3 checkpoint"):
        load_detector("frcnn-mobilenet-v3-coco", device="cpu")
    torch.save({"conv.weight": torch.zeros(3)}, isolated / MOBILE_FILE)
    with pytest.raises(CowdemoError, match="does not fit the frcnn-mobilenet-v3 architecture"):
        load_detector("frcnn-mobilenet-v3-coco", device="cpu")


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_refused_by_weights_only(isolated, capsys):
    evil = isolated / "evil.pt"
    torch.save({"cowdemo_checkpoint": 1, "x": Payload()}, evil)
    specs = {s.name: s for s in list_models()}
    assert specs["evil"].status == UNAVAILABLE
    with pytest.raises(CowdemoError, match="only plain tensors load"):
        load_detector(str(evil), device="cpu")
    assert "pickled code ran" not in capsys.readouterr().out
    not_ours = isolated / "plain.pt"
    torch.save({"a": torch.zeros(1)}, not_ours)
    with pytest.raises(CowdemoError, match="is not a cowdemo checkpoint"):
        load_detector(str(not_ours), device="cpu")


def test_registry_lists_every_source_and_resolves_paths(isolated):
    (isolated / "my_yolox.onnx").write_bytes(b"not loaded by listing")
    torch.save({"a": torch.zeros(1)}, isolated / MOBILE_FILE)  # plain COCO weights: not a fine-tune
    specs = {s.name: s for s in list_models()}
    assert {
        "frcnn-r50-fpn-coco",
        "frcnn-r50-fpn-v2-coco",
        "frcnn-mobilenet-v3-coco",
        "my_yolox",
        "d2-frcnn-r50-fpn-3x-coco",
    } <= set(specs)
    assert specs["my_yolox"].kind == "onnx-yolox"
    assert specs["frcnn-mobilenet-v3-coco"].status == READY
    assert specs["frcnn-r50-fpn-v2-coco"].status == UNAVAILABLE
    assert find_model(str(isolated / "my_yolox.onnx")).kind == "onnx-yolox"
    with pytest.raises(CowdemoError, match="Unknown model 'nope'"):
        find_model("nope")
    with pytest.raises(CowdemoError, match="does not exist"):
        find_model(str(Path(isolated) / "missing.onnx"))


def test_detectron2_backend_reports_why_unavailable():
    spec = find_model("d2-frcnn-r50-fpn-3x-coco")
    try:
        import detectron2  # noqa: F401
    except ImportError:
        assert spec.status == UNAVAILABLE and "build it from source" in spec.reason
        with pytest.raises(CowdemoError, match="detectron2 is not installed"):
            load_detector("d2-frcnn-r50-fpn-3x-coco", device="cpu")
    else:
        assert spec.status == READY


def test_unknown_device_is_a_clear_error():
    from cowdemo.devices import resolve_device

    assert resolve_device("cpu") == "cpu"
    with pytest.raises(CowdemoError, match="Unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(CowdemoError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_architectures_name_torchvision_builders_and_its_coco_weights():
    """The registry does not import torchvision to list models; what it names must still be
    torchvision's own builders and COCO_V1 weight URLs."""
    import subprocess
    import sys

    from torchvision.models import detection

    from cowdemo.models.torchvision_frcnn import ARCHITECTURES

    enums = {
        "frcnn-r50-fpn": detection.FasterRCNN_ResNet50_FPN_Weights,
        "frcnn-r50-fpn-v2": detection.FasterRCNN_ResNet50_FPN_V2_Weights,
        "frcnn-mobilenet-v3": detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights,
    }
    assert set(ARCHITECTURES) == set(enums)
    for name, arch in ARCHITECTURES.items():
        assert arch.coco_url == enums[name].COCO_V1.url, name
        assert arch.builder is getattr(detection, arch.builder_name)
        assert arch.coco_box_ap == pytest.approx(
            enums[name].COCO_V1.meta["_metrics"]["COCO-val2017"]["box_map"], abs=0.05)
    listed = subprocess.run(
        [sys.executable, "-c", "import sys, cowdemo.models.registry as r; r.list_models(); "
         "print('torchvision' in sys.modules)"], capture_output=True, text=True, check=True)
    assert listed.stdout.strip() == "False", "listing models imports torchvision"


def test_model_a_stays_pretrained_when_a_fine_tune_sorts_first():
    from cowdemo.models.registry import ModelSpec
    from cowdemo.ui.common import default_models

    onnx = ModelSpec("yolox_nano", "onnx-yolox", "YOLOX ONNX export", ("cow",), READY)
    tuned = ModelSpec("browser-nano", "checkpoint", "fine-tuned yolox-nano", ("cow",), READY)
    broken = ModelSpec("aaa", "checkpoint", "unreadable checkpoint", (), UNAVAILABLE)
    assert default_models([broken, onnx]) == ("yolox_nano", None)
    assert default_models([broken, tuned, onnx]) == ("yolox_nano", "browser-nano")
    assert default_models([tuned]) == ("browser-nano", None), "only a fine-tune: it is A"
    coco = ModelSpec("frcnn-r50-fpn-coco", "torchvision-coco", "COCO", ("dog",), MISSING)
    assert default_models([coco, tuned]) == ("browser-nano", None), "a missing download is not A"
