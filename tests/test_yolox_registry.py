"""The registry's YOLOX COCO models: Megvii's official .pth found like every weight, the exact
offline error when it is missing, and a real forward pass once it is there."""

from __future__ import annotations

import pytest
from helpers import cow_photo_path
from yolox_support import write_official_nano

from cowdemo.errors import CowdemoError
from cowdemo.images import load
from cowdemo.models.registry import (
    BUILTIN_YOLOX,
    UNAVAILABLE,
    find_model,
    list_models,
    load_detector,
)


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(folder))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return folder


def test_three_yolox_sizes_are_listed_with_the_official_weights(offline_env):
    for name, size in BUILTIN_YOLOX.items():
        spec = find_model(name)
        assert spec.kind == "yolox-coco" and spec.architecture == f"yolox-{size}"
        assert spec.url == ("https://github.com/Megvii-BaseDetection/YOLOX/releases/download/"
                            f"0.1.1rc0/yolox_{size}.pth")
        assert len(spec.classes) == 80 and spec.classes[19] == "cow"
    assert set(BUILTIN_YOLOX) == {"yolox-nano-coco", "yolox-tiny-coco", "yolox-s-coco"}


def test_offline_without_the_file_the_error_names_it_and_where_to_put_it(offline_env, tmp_path):
    spec = find_model("yolox-s-coco")
    assert spec.status == UNAVAILABLE
    expected = (
        f"Weights for yolox-s-coco not found: put yolox_s.pth in {offline_env} "
        f"(or {tmp_path / 'torch' / 'hub' / 'checkpoints'}); get it from "
        "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_s.pth"
    )
    assert spec.reason == expected
    with pytest.raises(CowdemoError) as error:
        load_detector("yolox-s-coco", device="cpu")
    assert str(error.value) == expected


@pytest.mark.slow
def test_official_weights_in_checkpoints_make_it_ready_and_it_finds_the_cow(offline_env):
    write_official_nano(offline_env)
    spec = find_model("yolox-nano-coco")
    assert spec.status == "ready" and spec.path == offline_env / "yolox_nano.pth"
    names = [s.name for s in list_models()]
    assert "yolox_nano" not in names, "the .pth is a built-in's weights, not a checkpoint"
    detector = load_detector("yolox-nano-coco", device="cpu")
    dets = detector.predict(load(cow_photo_path().read_bytes())).filter(0.5)
    assert "cow" in list(dets.class_names)


def test_a_corrupt_official_file_gives_one_clear_line(offline_env):
    (offline_env / "yolox_tiny.pth").write_bytes(b"\x00garbage")
    with pytest.raises(CowdemoError, match="is not loadable YOLOX weights"):
        load_detector("yolox-tiny-coco", device="cpu")
