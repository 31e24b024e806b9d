"""The `cowdemo` command line, run as a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import cow_photo_path, shared_path

from cowdemo import images
from cowdemo.box import DetectorBox
from cowdemo.datasets.synthetic import make_scene


def cowdemo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cowdemo.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture
def nano_folder(tmp_path) -> Path:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shutil.copy2(shared_path("models/yolox-nano/yolox_nano.onnx"), folder)
    return folder


@pytest.mark.slow
def test_predict_real_cow_photo_with_yolox_nano(nano_folder, tmp_path):
    photo = cow_photo_path()
    out = tmp_path / "out"
    run = cowdemo("predict", str(photo), "--model", str(nano_folder / "yolox_nano.onnx"),
                  "--classes", "cow", "--out", str(out))
    assert run.returncode == 0, run.stderr
    results = json.loads((out / "predictions.json").read_text())
    assert results and all(r["category_id"] == 21 for r in results), "COCO id of cow"
    best = max(results, key=lambda r: r["score"])
    assert best["score"] >= 0.5
    annotated = images.load(out / "annotated" / f"{photo.stem}.png")
    assert annotated.shape == (760, 1140, 3)
    # the same photo through the notebook-style façade gives the same boxes and a drawn image
    box = DetectorBox(str(nano_folder / "yolox_nano.onnx"), device="cpu", classes=["cow"])
    dets, drawn = box.predict(str(photo), visualize=True)
    assert [r["bbox"] for r in dets.to_coco_results(1)] == [r["bbox"] for r in results]
    np.testing.assert_array_equal(drawn, annotated)
    assert "cow (best" in run.stdout or "1 boxes" in run.stdout


def test_models_lists_registry_and_device(demo_env):
    run = cowdemo("models")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("device: cpu")
    assert any(line.startswith("cows-finetuned") and "ready" in line for line in lines)
    assert any("frcnn-r50-fpn-coco" in line and "unavailable" in line for line in lines)
    assert any("put fasterrcnn_resnet50_fpn_coco-258fb6c6.pth in" in line for line in lines)


@pytest.mark.slow
def test_predict_folder_with_bad_files_writes_the_good_ones_and_exits_2(demo_env, tmp_path):
    folder = tmp_path / "in"
    for seed in range(3):
        images.write_png(folder / f"scene{seed}.png", make_scene(seed=seed, width=320,
                                                                  height=240).image)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    out = tmp_path / "out"
    run = cowdemo("predict", str(folder), "--model", "cows-finetuned", "--out", str(out))
    assert run.returncode == 2
    assert "empty.jpg is empty (0 bytes)" in run.stderr
    assert "text.png is not an image" in run.stderr
    assert "error: 2 of 5 files could not be read" in run.stderr
    assert "predict (cows-finetuned)" in run.stderr, "progress bar for many files"
    meta = json.loads((out / "images.json").read_text())
    assert len(meta["images"]) == 3
    results = json.loads((out / "predictions.json").read_text())
    assert {r["image_id"] for r in results} == {m["id"] for m in meta["images"]}
    assert len(list((out / "annotated").glob("*.png"))) == 3


def test_user_errors_are_one_line_with_exit_2(demo_env, tmp_path):
    run = cowdemo("predict", str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert "no such file or folder" in run.stderr
    run = cowdemo("predict", str(tmp_path), "--model", "nope", "--out", str(tmp_path / "o"))
    assert run.returncode == 2
    images.write_png(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8))
    run = cowdemo("predict", str(tmp_path / "x.png"), "--model", "frcnn-r50-fpn-coco",
                  "--out", str(tmp_path / "o"))
    assert run.returncode == 2
    assert run.stderr.startswith("error: Weights for frcnn-r50-fpn-coco not found")
    assert "Traceback" not in run.stderr
