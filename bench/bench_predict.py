"""Prediction: cowdemo's detectors against the bare model call they wrap, same image, same run.

- Faster R-CNN R50-FPN (the notebook's architecture; random weights with a fixed head, same
  compute as the COCO weights): `DetectorBox.predict` (array in, filtered Detections out)
  against `model([tensor])` in torchvision directly.
- YOLOX-Nano ONNX (../shared): `YoloxOnnxDetector.predict` (letterbox, decode, NMS included)
  against onnxruntime's `session.run` alone on a prepared input.

    .venv/bin/python bench/bench_predict.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from machine import describe  # noqa: E402
from table import HEADER, row  # noqa: E402

from cowdemo.box import DetectorBox  # noqa: E402
from cowdemo.datasets.synthetic import make_scene  # noqa: E402
from cowdemo.devices import resolve_device  # noqa: E402
from cowdemo.models.torchvision_frcnn import get_architecture  # noqa: E402

SHARED = Path(os.environ.get("COWDEMO_SHARED", REPO.parent / "shared"))


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    image = make_scene(seed=3).image
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = get_architecture("frcnn-r50-fpn").build(91)
        torch.save(model.state_dict(), Path(tmp) / "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth")
        box = DetectorBox("frcnn-r50-fpn-coco", device=device, folder=tmp)
        model.eval().to(device)
        tensor = (torch.from_numpy(image).permute(2, 0, 1).float() / 255).to(device)

        def bare():
            with torch.inference_mode():
                model([tensor])
            sync()

        ours = timed(lambda: (box.predict(image), sync()), args.repeats)
        base = timed(bare, args.repeats)
        rows.append((f"R50-FPN, 640x480, {device}", ours, base, "torchvision model([tensor])"))
    onnx = SHARED / "models/yolox-nano/yolox_nano.onnx"
    if onnx.is_file():
        from cowdemo.models.yolox_onnx import YoloxOnnxDetector, letterbox

        nano = YoloxOnnxDetector(onnx, device=device)
        chw, _ = letterbox(image, 416)
        feed = {nano.session.get_inputs()[0].name: chw[None].astype(np.float32)}
        ours = timed(lambda: nano.predict(image), args.repeats * 4)
        base = timed(lambda: nano.session.run(None, feed), args.repeats * 4)
        used = "cuda" if "CUDAExecutionProvider" in nano.session.get_providers() else "cpu"
        rows.append((f"YOLOX-Nano ONNX, 640x480, {used} provider", ours, base,
                     "onnxruntime session.run"))
    print(f"machine: {describe()}; device {device}")
    print(HEADER)
    for name, ours, base, what in rows:
        print(row(f"predict, {name}", ours, base, what))


if __name__ == "__main__":
    main()
