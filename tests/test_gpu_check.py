"""scripts/gpu-check.sh's CPU fallback (--dry-run): every step runs or says why it cannot, and
the summary file holds the figures. The real run needs CUDA (README, "GPU check")."""

from __future__ import annotations

import json
import subprocess

import pytest
from training_support import REPO

pytestmark = pytest.mark.slow


def test_dry_run_passes_every_step_it_can_and_writes_one_summary(tmp_path):
    out = tmp_path / "summary.json"
    run = subprocess.run(["bash", "scripts/gpu-check.sh", "--dry-run", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["device"] == "cpu" and summary["dry_run"] is True
    steps = {s["step"]: s for s in summary["steps"]}
    assert len(steps) == 9 and summary["failed"] == 0
    for step in steps.values():
        assert step["status"] in ("pass", "skip"), step
        if step["status"] == "skip":
            assert step["reason"], step
    assert steps["environment"]["figures"]["cuda_available"] in (True, False)
    predicted = steps["predict: torchvision Faster R-CNN, batched"]["figures"]
    assert predicted["frcnn-mobilenet-v3-coco"]["images"] == 4
    assert steps["train: Faster R-CNN, AMP"]["figures"]["iterations"] == 3
    ddp = steps["DDP: one process through torchrun"]
    assert ddp["status"] == "pass", ddp
    assert ddp["figures"]["world_size"] == 1 and ddp["figures"]["backend"] == "gloo"
    assert ddp["figures"]["torchrun"] is True
    assert steps["train: Faster R-CNN, AMP"]["figures"]["torchrun"] is False
    track = steps["track: synthetic clip with ground truth"]
    if track["status"] == "pass":
        assert track["figures"]["frames"] == 20
    if (REPO.parent / "shared/models/yolox-nano/yolox_nano.onnx").is_file():
        for name in ("predict: YOLOX ONNX, batched", "predict: YOLOX PyTorch, batched",
                     "train: YOLOX, AMP"):
            assert steps[name]["status"] == "pass", steps[name]
        assert steps["train: YOLOX, AMP"]["figures"]["iterations"] == 3
    bench = steps["benchmarks: --device variants"]
    assert bench["status"] == "pass" and bench["figures"]["rows"], bench
    assert f"{summary['passed']} passed, 0 failed" in run.stdout
