"""Size of a `cowdemo report` over 40 images and one 300-frame video (docs/report.md quotes
it). Two models: YOLOX-nano (COCO-pretrained, ../shared/models) and a small fine-tuned
checkpoint made as the tests make theirs (random backbone, cow head; run at 160 pixels to
keep the measurement short on a shared CPU; thumbnails are drawn on the full images). A size,
not a speed: no baseline needed.

    .venv/bin/python bench/report_size.py [--images 40] [--frames 300] [--out /tmp/report]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def demo_finetune(folder: Path) -> None:
    import torch

    from cowdemo.models.checkpoints import save_checkpoint
    from cowdemo.models.torchvision_frcnn import get_architecture

    torch.manual_seed(0)
    model = get_architecture("frcnn-mobilenet-v3").build(2)
    head = model.roi_heads.box_predictor.cls_score
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-10.0)
        head.bias[1] = 10.0
    save_checkpoint(folder / "cows-finetuned.pt", model, "frcnn-mobilenet-v3", ["cow"],
                    "frcnn-mobilenet-v3-coco",
                    {"iteration": 100, "inference": {"min_size": 160, "max_size": 214}})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cowdemo-report-size"))
    args = parser.parse_args()
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy2(REPO.parent / "shared/models/yolox-nano/yolox_nano.onnx",
                 out / "checkpoints" / "yolox-nano.onnx")
    demo_finetune(out / "checkpoints")
    os.environ.update({"COWDEMO_CHECKPOINTS": str(out / "checkpoints"), "COWDEMO_OFFLINE": "1",
                       "COWDEMO_DATA": str(out / "data")})
    from cowdemo.datasets.synthetic import make_dataset, make_video_frames, mot_rows
    from cowdemo.models.registry import list_models
    from cowdemo.report import ReportInputs, html_to_pdf, make_report, write_html
    from cowdemo.runs import RunStore
    from cowdemo.video import write_video

    make_dataset(out / "cows", n_images=args.images, width=640, height=480, seed=5)
    clip = make_video_frames(seed=0, n_frames=args.frames, width=640, height=480)
    write_video(out / "cows.mp4", clip.frames, clip.fps)
    (out / "gt.txt").write_text("".join(f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,-1,-1,-1\n"
                                        for f, i, x, y, w, h in mot_rows(clip)))
    names = [s.name for s in list_models() if s.kind in ("onnx-yolox", "checkpoint")]
    print("models:", names, flush=True)
    start = time.perf_counter()
    report = make_report(ReportInputs(out / "cows", names, out / "cows.mp4", out / "gt.txt",
                                      "cpu"), RunStore(f"sqlite:///{out / 'runs.sqlite'}"))
    html = write_html(report, out / "report.html")
    pdf = html_to_pdf(html, out / "report.pdf")
    images = html.read_text().count("data:image/jpeg")
    print(f"{args.images} images, {args.frames} frames, 640x480: report.html "
          f"{html.stat().st_size / 1e6:.2f} MB ({images} thumbnails), report.pdf "
          f"{pdf.stat().st_size / 1e6:.2f} MB, made in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
