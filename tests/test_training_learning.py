"""A real fine-tune on CPU: a Faster R-CNN learns synthetic cows well enough to find them on
held-out images (AP50 from ~0 to >= 0.5), surviving a kill -9 half-way."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from training_support import (
    BASE,
    FAST,
    cli,
    env_for,
    read_json,
    start_cli,
    synthetic,
    wait_for,
    write_random_base,
)

from cowdemo.box import DetectorBox
from cowdemo.datasets.coco import CocoDataset
from cowdemo.models.checkpoints import read_checkpoint_info
from cowdemo.training.monitor import read_metrics

pytestmark = pytest.mark.slow

ITERATIONS = 160
CHECKPOINT_EVERY = 50


def test_fine_tune_learns_cows_and_a_killed_run_resumes(tmp_path):
    checkpoints, data = tmp_path / "checkpoints", tmp_path / "data"
    write_random_base(checkpoints)
    train = synthetic(tmp_path / "train", n=120, seed=11)
    heldout = synthetic(tmp_path / "heldout", n=30, seed=12)
    env = env_for(checkpoints, data)
    args = ["train", "--base", BASE, "--dataset", str(train), "--val-dataset", str(heldout),
            "--classes", "cow", "--iterations", str(ITERATIONS), "--batch-size", "4",
            "--lr", "0.02", "--warmup", "20", "--eval-every", "0",
            "--checkpoint-every", str(CHECKPOINT_EVERY), "--no-compare", "--out", "cows-learn",
            *FAST]  # fmt: skip
    run_dir = checkpoints / "cows-learn.training"
    log = tmp_path / "first.log"

    # First attempt: killed with SIGKILL (no chance to save) after its first checkpoint.
    first = start_cli(*args, env=env, log=log)
    try:
        wait_for(lambda: read_json(run_dir / "status.json").get("checkpoint_iteration"),
                 timeout=400, what="the first checkpoint", process=first, log=log)
        status = read_json(run_dir / "status.json")
        wait_for(lambda: read_json(run_dir / "status.json").get("iteration", 0)
                 > CHECKPOINT_EVERY + 2, timeout=120, what="a few more steps", process=first,
                 log=log)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert status["checkpoint_iteration"] == CHECKPOINT_EVERY
    assert (run_dir / "last.pt").is_file()
    assert not (checkpoints / "cows-learn.pt").exists(), "no model before the run finished"

    # Second attempt: the same command resumes from iteration 50 and finishes.
    second = cli(*args, env=env, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resumed from iteration {CHECKPOINT_EVERY}" in second.stdout
    final = read_json(run_dir / "status.json")
    assert final["state"] == "completed" and final["resumed_from"] == CHECKPOINT_EVERY

    rows = read_metrics(run_dir)
    evals = [r for r in rows if r["type"] == "eval"]
    assert [e["iteration"] for e in evals] == [0, ITERATIONS]
    untrained, trained = evals[0]["AP50"], evals[-1]["AP50"]
    steps = [r["iteration"] for r in rows if r["type"] == "train"]
    assert steps == list(range(1, ITERATIONS + 1)), "steps after the checkpoint replayed once"
    print(f"held-out AP50: untrained head {untrained:.3f} -> after {ITERATIONS} "
          f"iterations {trained:.3f}")
    assert untrained < 0.1
    assert trained >= 0.5

    # The model is a self-describing checkpoint in the registry; the resume state is gone.
    info = read_checkpoint_info(checkpoints / "cows-learn.pt")
    assert info.classes == ("cow",) and info.base_model == BASE
    meta = info.metadata
    assert meta["iteration"] == ITERATIONS and meta["metrics"]["AP50"] == pytest.approx(trained)
    assert len(meta["dataset_hash"]) == 64 and meta["inference"]["min_size"] == 192
    assert not (run_dir / "last.pt").exists()
    assert not list(checkpoints.rglob("*.tmp"))

    # ... and finds cows on a held-out image through the normal loading path.
    dataset = CocoDataset.load(heldout)
    box = DetectorBox("cows-learn", device="cpu", score_threshold=0.5, folder=checkpoints)
    found = box.predict(dataset.read_image(1))
    truth = dataset.ground_truth(1)
    assert len(found) >= 1 and set(found.class_names) == {"cow"}
    ious = _best_iou(truth.xyxy, found.xyxy)
    assert np.mean(ious >= 0.5) >= 0.5, ious
    json.dumps(final)  # the status stays plain JSON


def _best_iou(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    out = []
    for t in truth:
        x1 = np.maximum(t[0], found[:, 0])
        y1 = np.maximum(t[1], found[:, 1])
        x2 = np.minimum(t[2], found[:, 2])
        y2 = np.minimum(t[3], found[:, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = (t[2] - t[0]) * (t[3] - t[1]) + (found[:, 2] - found[:, 0]) * (
            found[:, 3] - found[:, 1]) - inter
        out.append((inter / union).max() if len(found) else 0.0)
    return np.asarray(out)
