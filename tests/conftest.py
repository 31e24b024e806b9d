"""Shared fixtures: ../shared reference data, the real cow photo, and small real models for app
and CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import shared_path


@pytest.fixture
def yolox_nano_path() -> Path:
    return shared_path("models/yolox-nano/yolox_nano.onnx")


@pytest.fixture(scope="session")
def demo_checkpoints(tmp_path_factory) -> Path:
    """A checkpoints folder with two real, small torchvision models whose box classifiers are set
    by hand (backbones random): a "COCO" MobileNet that calls everything *dog* (label 18) and a
    fine-tuned cows-only checkpoint that calls everything *cow*. Real loading code, real forward
    passes, deterministic classes: the notebook's moment without downloading weights."""
    import torch

    from cowdemo.models.checkpoints import save_checkpoint
    from cowdemo.models.torchvision_frcnn import get_architecture

    folder = tmp_path_factory.mktemp("checkpoints")

    def biased(num_classes: int, label: int) -> torch.nn.Module:
        torch.manual_seed(0)
        model = get_architecture("frcnn-mobilenet-v3").build(num_classes)
        head = model.roi_heads.box_predictor.cls_score
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(-10.0)
            head.bias[label] = 10.0
        return model

    coco_file = folder / "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"
    torch.save(biased(91, 18).state_dict(), coco_file)
    save_checkpoint(folder / "cows-finetuned.pt", biased(2, 1), "frcnn-mobilenet-v3", ["cow"],
                    "frcnn-mobilenet-v3-coco", {"iteration": 100})
    return folder


@pytest.fixture
def demo_env(demo_checkpoints, monkeypatch, tmp_path) -> Path:
    """Environment of an app or CLI run against ``demo_checkpoints``, offline."""
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(demo_checkpoints))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return demo_checkpoints


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_dir(tmp_path_factory):
    """No test writes into the checkout's data/ folder: a session-wide data dir by default
    (tests that need their own set COWDEMO_DATA themselves)."""
    import os

    previous = os.environ.get("COWDEMO_DATA")
    os.environ["COWDEMO_DATA"] = str(tmp_path_factory.mktemp("data"))
    yield
    if previous is None:
        os.environ.pop("COWDEMO_DATA", None)
    else:
        os.environ["COWDEMO_DATA"] = previous


#: The longest test files (a fine-tune, Chromium sessions), started first: pytest-xdist hands
#: out whole files in collection order (`--dist loadfile`), so long ones left to the end would
#: keep one worker busy while the other idles.
LONGEST_FIRST = (
    "test_yolox_training.py", "test_training_learning.py", "test_training_disk.py",
    "test_gpu_check.py", "test_report.py", "test_training_ddp.py", "test_training_jobs.py",
    "browser/",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return next((i for i, key in enumerate(LONGEST_FIRST) if key in path),
                    len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the order within a file and among the rest is kept
