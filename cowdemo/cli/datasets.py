"""`cowdemo datasets list|show|import|export|sample|delete|add-frames|next`: the app's dataset
store from the command line (see docs/datasets.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cowdemo.errors import CowdemoError

FORMAT_CHOICES = ("auto", "coco", "yolo", "voc", "zip", "images")


def _store(args: argparse.Namespace):
    from cowdemo.datasets.store import DatasetStore

    return DatasetStore(Path(args.root) if args.root else None)


def _classes(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [c.strip() for c in text.split(",") if c.strip()]


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    summaries = store.list()
    if not summaries:
        print(f"No datasets in {store.root}. `cowdemo datasets import` or `cowdemo datasets "
              "sample` makes one.")
        return 0
    width = max(len(s.name) for s in summaries)
    print(f"{'name':<{width}}  {'images':>6}  {'done':>6}  {'boxes':>6}  modified          "
          "classes")
    for s in summaries:
        print(f"{s.name:<{width}}  {s.num_images:>6}  {s.num_annotated_images:>6}  "
              f"{s.num_boxes:>6}  {s.modified:%Y-%m-%d %H:%M}  {', '.join(s.classes)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from cowdemo.datasets.formats import is_done

    store = _store(args)
    summary = store.summary(args.name)
    dataset = store.get(args.name)
    print(f"{summary.name}: {summary.progress}, {summary.num_boxes} boxes")
    print(f"folder:   {summary.path}")
    print(f"modified: {summary.modified:%Y-%m-%d %H:%M:%S}")
    print("classes:  " + ", ".join(
        f"{name} ({dataset.num_boxes(name)})" for name in dataset.classes))
    missing = [im for im in dataset.images if not dataset.image_path(im["id"]).is_file()]
    if missing:
        print(f"images without a file: {len(missing)} (add them with the same file names)")
    if args.images:
        for image in dataset.images:
            boxes = len(dataset.annotations(image["id"]))
            mark = "done" if is_done(image) else "todo"
            print(f"  {image['id']:>6}  {mark}  {boxes:>3} boxes  {image['width']}x"
                  f"{image['height']}  {image['file_name']}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from cowdemo.datasets.formats import ImportRejected
    from cowdemo.datasets.store import check_name

    source = Path(args.source)
    name = args.name or _default_name(source)
    check_name(name)
    try:
        dataset, report = _store(args).import_path(
            name, source, args.format, classes=_classes(args.classes),
            images_dir=args.images, replace=args.replace,
            voc_one_based=not args.voc_zero_based,
        )
    except ImportRejected as exc:
        if len(exc.report.errors) > 1:  # every problem, then the summary (main prints it)
            for line in exc.report.lines():
                print(line, file=sys.stderr)
        raise
    for line in report.lines():
        print(line, file=sys.stderr)
    print(f"imported dataset '{name}' ({dataset.root}) from {report.summary()}")
    return 0


def _default_name(source: Path) -> str:
    import re

    stem = source.stem if source.is_file() else source.resolve().name
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:64]
    if not name:
        raise CowdemoError(f"Cannot make a dataset name from {source}: give --name.")
    return name


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    fmt = args.format
    if fmt == "auto":
        fmt = "zip" if out.suffix.lower() == ".zip" else "coco"
    with_images = not args.no_images
    path = _store(args).export(args.name, out, fmt, with_images, args.overwrite, args.zip_format)
    kind = f"zip of {args.zip_format}" if fmt == "zip" else fmt
    print(f"exported dataset '{args.name}' as {kind}{'' if with_images else ' (no images)'} to "
          f"{path}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    dataset = _store(args).ensure_sample()
    print(f"sample dataset '{dataset.name}': {len(dataset.images)} images, "
          f"{dataset.num_boxes()} boxes ({dataset.root})")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CowdemoError(f"Deleting dataset '{args.name}' removes its images and boxes: add "
                           "--yes to confirm.")
    _store(args).delete(args.name)
    print(f"deleted dataset '{args.name}'")
    return 0


def cmd_add_frames(args: argparse.Namespace) -> int:
    """Frames of a video into a dataset: every n-th, listed, or around the tracker's switches."""
    from cowdemo.datasets import video_frames as vf
    from cowdemo.tracking import TrackerSettings, VideoSettings, run_tracking
    from cowdemo.tracking.detection import DetectionCache
    from cowdemo.video import probe

    video = Path(args.video)
    info = probe(video)
    classes = None if args.classes.strip().lower() == "all" else _classes(args.classes)
    report = found = None
    if args.at_switches or args.boxes == "tracker":
        if not args.model:
            raise CowdemoError("--at-switches and --boxes tracker track the video with a model: "
                               "give --model (`cowdemo models` lists them).")
        from cowdemo.evaluation.tracking import read_mot

        settings = TrackerSettings(score_threshold=args.score_threshold, classes=classes)
        outcome = run_tracking(video, args.model, VideoSettings(stride=args.stride),
                               settings, gt=read_mot(args.gt) if args.gt else None,
                               cache=DetectionCache(), device=args.device)
        report, found = outcome.report, outcome.found
        print(f"{info.name}: {outcome.tracks.num_tracks} tracks, "
              f"{len(vf.break_points(report))} switch(es) or break(s) "
              f"({'against the ground truth' if args.gt else 'suspected, no ground truth'})")
    points = vf.break_points(report) if report is not None else []
    if args.at_switches:
        plan = vf.frames_at_switches(report, around=args.around)
    elif args.every:
        plan = vf.every_nth(list(range(1, info.estimated_frames + 1)) if report is None
                            else [int(n) for n in report.tracks.frame_numbers], args.every,
                            points)
    else:
        plan = vf.listed(vf.parse_frames(args.frames), info.estimated_frames, points)
    boxes = args.boxes or ("model" if args.model else "none")
    source = None
    if boxes == "tracker":
        source = vf.tracker_boxes(report, args.label_as)
    elif boxes == "model":
        if not args.model:
            raise CowdemoError("--boxes model needs --model.")
        if found is not None and set(plan.frames) <= {int(n) for n in found.frame_numbers}:
            source = vf.detection_boxes(found, args.score_threshold, classes, args.label_as)
        else:
            from cowdemo.models.registry import load_detector

            source = vf.model_boxes(load_detector(args.model, args.device),
                                    args.score_threshold, classes, args.label_as)
    result = vf.add_frames(_store(args), args.dataset, video, plan, source,
                           create_classes=_classes(args.create_classes) or ["cow"])
    for frame, image_id in zip(result.frames, result.image_ids):
        why = plan.reasons.get(frame, "")
        print(f"  frame {frame:>6} -> image {image_id:>5}  {why}")
    print(result.message())
    return 0


def cmd_next(args: argparse.Namespace) -> int:
    """The images to label next, best first, with why."""
    from tqdm import tqdm

    from cowdemo.annotation_queue import rank_images
    from cowdemo.datasets.formats import is_done
    from cowdemo.models.registry import load_detector

    models = args.model or []
    if not 1 <= len(models) <= 2 or len(set(models)) != len(models):
        raise CowdemoError("Give one or two different models: --model A [--model B].")
    dataset = _store(args).get(args.name)
    todo = [int(im["id"]) for im in dataset.images if not is_done(im)]
    if not todo:
        print(f"Every image of {args.name} is done: nothing to label next.")
        return 0
    classes = None if args.classes.strip().lower() == "all" else _classes(args.classes)
    predictions = {}
    for model in models:
        detector = load_detector(model, args.device)
        label = detector.name if detector.name not in predictions else model
        predictions[label] = {
            i: detector.predict(dataset.read_image(i))
            for i in tqdm(todo, desc=f"predicting ({model})", unit="image", file=sys.stderr)
        }
    queue = rank_images(dataset, predictions, args.score_threshold, classes)
    shown = queue[: args.top] if args.top else queue
    print(f"{args.name}: {len(queue)} image(s) not done, best to label first "
          f"(score = disagreement + 0.5 x uncertainty + closeness to a tracker break)")
    for rank, item in enumerate(shown, start=1):
        print(f"{rank:>4}. image {item.image_id:>5}  score {item.score:.3f}  {item.file_name}")
        print(f"      {item.reason}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "datasets", help="list, show, import and export annotated datasets",
        description="The app's datasets (COWDEMO_DATA/datasets): COCO JSON + images each.",
    )
    parser.add_argument("--root", help="datasets folder (default: $COWDEMO_DATA/datasets)")
    sub = parser.add_subparsers(dest="datasets_command", required=True)

    listing = sub.add_parser("list", help="every dataset: images, done, boxes, classes")
    listing.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="one dataset: progress, classes, box counts")
    show.add_argument("name")
    show.add_argument("--images", action="store_true", help="also list every image")
    show.set_defaults(func=cmd_show)

    imp = sub.add_parser(
        "import", help="import COCO JSON, YOLO, Pascal VOC or a zip (validated first)",
        description="Validate and import a dataset. Every problem is listed, one per line; a "
                    "rejected import changes nothing (exit code 2).",
    )
    imp.add_argument("source", help="a .zip, a COCO .json file, or a folder")
    imp.add_argument("--name", help="dataset name (default: from the file or folder name)")
    imp.add_argument("--format", choices=FORMAT_CHOICES, default="auto")
    imp.add_argument("--images", help="folder of the images (COCO JSON and VOC)")
    imp.add_argument("--classes", help="comma-separated class names (YOLO without classes.txt; "
                                       "otherwise the only classes allowed)")
    imp.add_argument("--replace", action="store_true", help="replace a dataset of that name")
    imp.add_argument("--voc-zero-based", action="store_true",
                     help="VOC files with 0-based xmin/ymin (the devkit's are 1-based)")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="export a dataset as COCO, YOLO, VOC or a zip")
    exp.add_argument("name")
    exp.add_argument("out", help="output folder, a .json file (COCO without images) or a .zip")
    exp.add_argument("--format", choices=("auto", "coco", "yolo", "voc", "zip"), default="auto",
                     help="auto: zip for a .zip path, else coco")
    exp.add_argument("--zip-format", choices=("coco", "yolo", "voc"), default="coco",
                     help="what the zip holds")
    exp.add_argument("--no-images", action="store_true", help="labels only, no image files")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing output")
    exp.set_defaults(func=cmd_export)

    sample = sub.add_parser("sample", help="create the ready synthetic-sample dataset")
    sample.set_defaults(func=cmd_sample)

    frames = sub.add_parser(
        "add-frames", help="add frames of a video to a dataset, to label (not done)",
        description="Add frames of a video as images not done yet, optionally with a model's or "
                    "the tracker's boxes to correct. --at-switches tracks the video with --model "
                    "and adds the frames at and around each id switch (with --gt), suspected "
                    "switch and track break, switches first.",
    )
    frames.add_argument("video")
    frames.add_argument("--dataset", required=True, help="dataset to add to (created if new)")
    which = frames.add_mutually_exclusive_group(required=True)
    which.add_argument("--every", type=int, help="every N-th frame")
    which.add_argument("--at-switches", action="store_true",
                       help="the frames around the tracker's switches and breaks")
    which.add_argument("--frames", help="frame numbers (1-based), e.g. 12,48,60-62")
    frames.add_argument("--model", help="model for the boxes and for tracking")
    frames.add_argument("--boxes", choices=("model", "tracker", "none"),
                        help="boxes to start from (default: model with --model, else none)")
    frames.add_argument("--gt", help="MOTChallenge ground truth: real id switches")
    frames.add_argument("--around", type=int, default=2,
                        help="frames either side of a switch (default 2)")
    frames.add_argument("--score-threshold", type=float, default=0.5)
    frames.add_argument("--classes", default="cow",
                        help="model classes kept, comma-separated, or 'all' (default cow)")
    frames.add_argument("--label-as", help="store every box with this class (a COCO model's "
                                           "'dog' as 'cow')")
    frames.add_argument("--create-classes", default="cow",
                        help="classes of the dataset when it is new (default cow)")
    frames.add_argument("--stride", type=int, default=1, help="track every N-th frame")
    frames.add_argument("--device", default="auto")
    frames.set_defaults(func=cmd_add_frames)

    nxt = sub.add_parser(
        "next", help="the images to label next, best first, with why",
        description="Rank the images not done yet: where model A and model B disagree, where "
                    "a model is unsure, and video frames near a tracker break come first "
                    "(docs/datasets.md explains the score).",
    )
    nxt.add_argument("name")
    nxt.add_argument("--model", action="append", help="model A, then optionally model B")
    nxt.add_argument("--score-threshold", type=float, default=0.5)
    nxt.add_argument("--classes", default="all",
                     help="model classes compared, comma-separated, or 'all' (default)")
    nxt.add_argument("--top", type=int, default=0, help="show only the first N")
    nxt.add_argument("--device", default="auto")
    nxt.set_defaults(func=cmd_next)

    delete = sub.add_parser("delete", help="delete a dataset and its images")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="confirm")
    delete.set_defaults(func=cmd_delete)
