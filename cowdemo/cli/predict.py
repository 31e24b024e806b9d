"""`cowdemo predict`: detect objects in images; write the drawn images and COCO results JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cowdemo.cli.checks import fraction, known_classes, output_folder
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
    out = output_folder(args.out)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    box = DetectorBox(args.model, args.device, args.score_threshold, classes, args.weights)
    known_classes(classes, box.detector.classes, box.name)
    (out / "annotated").mkdir(parents=True, exist_ok=True)
    drawn = _drawn_names(files)
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
        images.write_png(out / "annotated" / drawn[path], draw_detections(rgb, dets))
        image_rows.append(
            {"id": image_id, "file_name": str(path), "width": rgb.shape[1], "height": rgb.shape[0],
             "annotated": f"annotated/{drawn[path]}"}
        )
        results += dets.to_coco_results(image_id)
        summary = ", ".join(f"{r['class']} {r['score']:.2f}" for r in dets.to_records()) or "-"
        print(f"{path}: {len(dets)} boxes: {summary}")
    write_json_atomic(out / "predictions.json", results)
    write_json_atomic(out / "images.json", {"model": box.name, "images": image_rows})
    print(f"wrote {out / 'predictions.json'} ({len(results)} boxes) and {out / 'annotated'}/")
    if failures:
        more = " (all of them above)" if len(failures) > 1 else ""
        raise CowdemoError(
            f"{len(failures)} of {len(files)} files could not be read{more}: {failures[0]}"
        )
    return 0


def _drawn_names(files: list[Path]) -> dict[Path, str]:
    """A distinct drawn-image name per input: ``cow.png``, then ``cow-2.png`` for the next
    ``cow`` (``a/cow.jpg``, ``b/cow.jpg`` and ``cow.png`` never overwrite each other)."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for path in files:
        name, n = f"{path.stem}.png", 1
        while name.lower() in used:
            n += 1
            name = f"{path.stem}-{n}.png"
        used.add(name.lower())
        names[path] = name
    return names


def register(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser("predict", help="detect objects in images; write drawn images + JSON")
    predict.add_argument("paths", nargs="+", help="image files or folders")
    predict.add_argument("--model", default="frcnn-r50-fpn-coco", help="name or .onnx/.pt path")
    predict.add_argument("--weights", help="explicit weights file for a built-in model")
    predict.add_argument("--score-threshold", type=fraction, default=0.5,
                         help="keep boxes scoring at least this (0 to 1)")
    predict.add_argument("--classes", help="comma-separated class names to keep, e.g. cow")
    predict.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    predict.add_argument("--out", default="predictions", help="output folder")
    predict.set_defaults(func=cmd_predict)
