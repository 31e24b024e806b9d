"""`cowdemo` command line: everything the app does, scriptable. User errors print one line
and exit 2."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from cowdemo.errors import CowdemoError

EXIT_USER_ERROR = 2

#: Modules that add subcommands: each has ``register(subparsers)`` which adds its parsers and
#: sets ``func`` (a handler taking the parsed args and returning an exit code).
SUBCOMMAND_MODULES: list[str] = [
    "cowdemo.cli_evaluate",
    "cowdemo.cli_runs",
    "cowdemo.cli_datasets",
    "cowdemo.cli_track",
    "cowdemo.cli_train",
]


def cmd_models(args: argparse.Namespace) -> int:
    from cowdemo.devices import describe_device, resolve_device
    from cowdemo.models.registry import list_models

    print(f"device: {describe_device(resolve_device(args.device))}")
    specs = list_models(Path(args.checkpoints) if args.checkpoints else None)
    width = max(len(s.name) for s in specs)
    for spec in specs:
        print(f"{spec.name:<{width}}  {spec.status:<15}  {spec.description}")
        if spec.reason:
            print(f"{'':<{width}}  {'':<15}  └ {spec.reason}")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cowdemo", description="Detect, evaluate, fine-tune and track cows."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list models, whether they are ready, and the device")
    models.add_argument("--device", default="auto")
    models.add_argument("--checkpoints", help="checkpoints folder (default: ./checkpoints)")
    models.set_defaults(func=cmd_models)

    predict = sub.add_parser("predict", help="detect objects in images; write drawn images + JSON")
    predict.add_argument("paths", nargs="+", help="image files or folders")
    predict.add_argument("--model", default="frcnn-r50-fpn-coco", help="name or .onnx/.pt path")
    predict.add_argument("--weights", help="explicit weights file for a built-in model")
    predict.add_argument("--score-threshold", type=float, default=0.5)
    predict.add_argument("--classes", help="comma-separated class names to keep, e.g. cow")
    predict.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    predict.add_argument("--out", default="predictions", help="output folder")
    predict.set_defaults(func=cmd_predict)

    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except CowdemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
