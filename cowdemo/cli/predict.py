"""`cowdemo predict`: detect objects in images; write the drawn images and COCO results JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cowdemo.errors import CowdemoError


def cmd_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cowdemo import images
    from cowdemo.box import DetectorBox
    from cowdemo.draw import draw_detections
    from cowdemo.files import write_json_atomic

    files = images.find_images(args.paths)
    if not files:
        raise CowdemoError("No images found in the given paths (jpg, png, webp, bmp, tif).")
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    box = DetectorBox(args.model, args.device, args.score_threshold, classes, args.weights)
    out = Path(args.out)
    (out / "annotated").mkdir(parents=True, exist_ok=True)
    results, image_rows, failures = [], [], []
    for image_id, path in enumerate(
        tqdm(files, desc=f"predict ({box.name})", unit="img", disable=len(files) < 2), start=1
    ):
        try:
            rgb = images.load(path)
        except CowdemoError as exc:
            failures.append(str(exc))
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        dets = box.predict(rgb)
        images.write_png(out / "annotated" / f"{path.stem}.png", draw_detections(rgb, dets))
        image_rows.append(
            {"id": image_id, "file_name": str(path), "width": rgb.shape[1], "height": rgb.shape[0]}
        )
        results += dets.to_coco_results(image_id)
        summary = ", ".join(f"{r['class']} {r['score']:.2f}" for r in dets.to_records()) or "-"
        print(f"{path}: {len(dets)} boxes: {summary}")
    write_json_atomic(out / "predictions.json", results)
    write_json_atomic(out / "images.json", {"model": box.name, "images": image_rows})
    print(f"wrote {out / 'predictions.json'} ({len(results)} boxes) and {out / 'annotated'}/")
    if failures:
        raise CowdemoError(f"{len(failures)} of {len(files)} files could not be read (see above).")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser("predict", help="detect objects in images; write drawn images + JSON")
    predict.add_argument("paths", nargs="+", help="image files or folders")
    predict.add_argument("--model", default="frcnn-r50-fpn-coco", help="name or .onnx/.pt path")
    predict.add_argument("--weights", help="explicit weights file for a built-in model")
    predict.add_argument("--score-threshold", type=float, default=0.5)
    predict.add_argument("--classes", help="comma-separated class names to keep, e.g. cow")
    predict.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    predict.add_argument("--out", default="predictions", help="output folder")
    predict.set_defaults(func=cmd_predict)
