"""Shared by the training tests: a base model to fine-tune (a real MobileNet-v3 Faster R-CNN,
random weights: COCO weights cannot be downloaded here), small synthetic datasets, settings
that make CPU training fast, and the CLI as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from cowdemo.datasets.synthetic import make_dataset
from cowdemo.models.torchvision_frcnn import get_architecture

REPO = Path(__file__).resolve().parents[1]
BASE = "frcnn-mobilenet-v3-coco"
BASE_FILE = "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"

#: Small images and fewer sampled regions so a few hundred CPU steps take minutes; BatchNorm
#: learns (the base was never trained, so it has no statistics worth freezing) and the first
#: three MobileNet stages stay fixed (their backward pass is most of the CPU time).
FAST = ["--image-size", "192", "--max-size", "256", "--batchnorm", "train",
        "--freeze-stages", "3", "--rois-per-image", "128", "--proposals-per-image", "300"]
FAST_SETTINGS = {"image_size": 192, "max_size": 256, "batchnorm": "train", "freeze_stages": 3,
                 "rois_per_image": 128, "proposals_per_image": 300}


def write_random_base(folder: Path) -> Path:
    """The registry's MobileNet COCO weights file, with random (seeded) weights."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = get_architecture("frcnn-mobilenet-v3").build(91)
    path = folder / BASE_FILE
    torch.save(model.state_dict(), path)
    return path


def synthetic(folder: Path, n: int, seed: int, width: int = 256, height: int = 192) -> Path:
    make_dataset(folder, n_images=n, seed=seed, width=width, height=height)
    return folder


def env_for(checkpoints: Path, data: Path) -> dict[str, str]:
    return {"COWDEMO_CHECKPOINTS": str(checkpoints), "COWDEMO_DATA": str(data),
            "COWDEMO_OFFLINE": "1", "TORCH_HOME": str(data / "torch"),
            "COWDEMO_RUNS_DB": f"sqlite:///{data / 'runs.sqlite'}"}


def cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cowdemo.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=timeout, cwd=REPO)


def start_cli(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "cowdemo.cli", *args], stdout=handle,
                            stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=REPO)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None,
             log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise AssertionError(f"process ended (code {process.returncode}) before {what}:\n"
                                 f"{tail}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
