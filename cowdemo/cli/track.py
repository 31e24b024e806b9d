"""`cowdemo track`: track cows through a video with Norfair, count and list id switches, and
write the tracked video (H.264), MOTChallenge and CSV tracks and the stats.

    cowdemo track cows.mp4 --model frcnn-r50-fpn-coco --gt gt.txt --out out/
    cowdemo track cows.mp4 --model frcnn-r50-fpn-coco --model cows-finetuned --out out/
    cowdemo track cows.mp4 --model cows-finetuned --compare distance=iou,distance_threshold=0.7
    cowdemo track cows.mp4 --model cows-finetuned --compare tracker=bytetrack
    cowdemo track cows.mp4 --model cows-finetuned --gt gt.txt --tune --trials 40

Files in ``--out``, one set per run (``<run>`` is the model, plus ``-b`` for ``--compare``):
``<run>.mp4`` (boxes, ids, trails), ``<run>.txt`` (MOTChallenge), ``<run>.csv``,
``stats.csv`` (one column per run), ``switches.csv`` and ``summary.json``; with ``--tune``
also ``tune.json`` (every trial, the best settings, both settings on the held-out frames).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from cowdemo.cli.checks import fraction, known_classes, output_folder
from cowdemo.errors import CowdemoError

#: Tracker settings ``--compare`` may change, with their types.
_COMPARABLE = {
    "distance": str, "distance_threshold": float, "hit_counter_max": int,
    "initialization_delay": int, "reid": bool, "reid_distance_threshold": float,
    "reid_hit_counter_max": int, "score_threshold": float, "class_aware": bool,
    "backfill": bool, "tracker": str, "bytetrack_activation": float,
    "bytetrack_lost_buffer": int, "bytetrack_match": float, "bytetrack_min_frames": int,
}  # fmt: skip


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def parse_overrides(text: str) -> dict[str, Any]:
    """``"distance=iou,distance_threshold=0.7"`` → ``{"distance": "iou", ...}``."""
    changes: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in _COMPARABLE:
            raise CowdemoError(
                f"--compare takes KEY=VALUE pairs separated by commas; KEY is one of "
                f"{', '.join(_COMPARABLE)}; got {item!r}."
            )
        kind = _COMPARABLE[key]
        try:
            changes[key] = _bool(value) if kind is bool else kind(value.strip())
        except ValueError:
            raise CowdemoError(f"--compare {key}: {value!r} is not a {kind.__name__}.") from None
    if not changes:
        raise CowdemoError("--compare needs at least one KEY=VALUE, e.g. distance_threshold=40.")
    if "tracker" in changes:
        changes["family"] = changes.pop("tracker")
    return changes


def _settings(args: argparse.Namespace):
    from cowdemo.tracking import TrackerSettings, VideoSettings

    classes = None
    if args.classes and args.classes.strip().lower() != "all":
        classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
    video = VideoSettings(args.stride, args.max_side or None, args.max_frames)
    tracker = TrackerSettings(
        distance=args.distance,
        distance_threshold=(
            args.distance_threshold if args.distance_threshold is not None
            else _default_threshold(args.distance)
        ),
        hit_counter_max=args.hit_counter_max,
        initialization_delay=args.initialization_delay,
        reid=args.reid,
        reid_distance_threshold=args.reid_threshold,
        reid_hit_counter_max=args.reid_memory,
        score_threshold=args.score_threshold,
        classes=classes,
        class_aware=args.class_aware,
        backfill=not args.no_backfill,
        family="norfair" if args.tracker == "both" else args.tracker,
        bytetrack_activation=args.bytetrack_activation,
        bytetrack_lost_buffer=args.bytetrack_lost_buffer,
        bytetrack_match=args.bytetrack_match,
        bytetrack_min_frames=args.bytetrack_min_frames,
    )  # fmt: skip
    return video, tracker


def _default_threshold(distance: str) -> float:
    from cowdemo.tracking import DISTANCES

    spec = DISTANCES.get(distance)
    return spec.default_threshold if spec else 20.0


def _runs(args: argparse.Namespace, tracker) -> list[tuple[str, str, Any]]:
    """(label, model, tracker settings) per run."""
    models = args.model or []
    if not models:
        raise CowdemoError("Give a model with --model (`cowdemo models` lists them).")
    from cowdemo.tracking.history import model_label

    runs = [(model_label(m), m, tracker.with_changes(label=model_label(m))) for m in models]
    if args.compare:
        changes = parse_overrides(args.compare)
        if "distance" in changes and "distance_threshold" not in changes:
            changes["distance_threshold"] = _default_threshold(changes["distance"])
        first, name = models[0], runs[0][0]
        described = ", ".join(f"{k}={v}" for k, v in changes.items())
        runs.append((f"{name}-b", first, tracker.with_changes(label=f"{name} ({described})",
                                                              **changes)))
    labels = [label for label, _, _ in runs]
    if len(set(labels)) != len(labels):
        raise CowdemoError("The same model is given twice: give different models.")
    return runs


def _progress_bar(label: str):
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(progress) -> None:
        bar = bars.get(progress.stage)
        if bar is None:
            bar = bars[progress.stage] = tqdm(
                total=progress.total or None, desc=f"{progress.stage.lower()} ({label})",
                unit="frame", leave=True, file=sys.stderr,
            )  # fmt: skip
        if progress.total and bar.total != progress.total:
            bar.total = progress.total
        bar.update(progress.done - bar.n)
        if progress.total and progress.done >= progress.total:
            bar.close()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


def cmd_track(args: argparse.Namespace) -> int:
    from cowdemo.evaluation.tracking import read_mot
    from cowdemo.files import atomic_write_bytes, write_json_atomic
    from cowdemo.tracking import DetectionCache, render_video, run_tracking, track
    from cowdemo.tracking.history import record_tracking_run
    from cowdemo.tracking.stats import METRIC_HELP, nothing_tracked_reason, tracking_report
    from cowdemo.video import probe

    video_path = Path(args.video)
    out = output_folder(args.out)
    info = probe(video_path)
    video_settings, tracker = _settings(args)
    runs = _runs(args, tracker)
    if tracker.classes:
        from cowdemo.models.registry import find_model

        for model in dict.fromkeys(model for _, model, _ in runs):
            spec = find_model(model)
            if spec.classes:  # an unreadable checkpoint has none: its loading says why
                known_classes(tracker.classes, spec.classes, spec.name)
    gt = read_mot(args.gt) if args.gt else None
    if not 0 < args.iou_threshold <= 1:
        raise CowdemoError(f"--iou-threshold must be in (0, 1], got {args.iou_threshold}.")
    cache = None if args.no_cache else DetectionCache()
    print(f"{info.name}: {info.summary()}")

    detected: dict[str, Any] = {}  # detections per model, shared by --compare runs
    tuned = None
    if args.tune:
        tuned, found = _tune(args, video_path, video_settings, tracker, gt, cache, out)
        detected[runs[0][1]] = found
        tracker = tuned.best
        runs = _runs(args, tracker)
    reports = []
    for label, model, settings in runs:
        update, close = _progress_bar(label)
        try:
            slug = _slug(label)
            render_to = None if args.no_video else out / slug
            reused = False
            if model not in detected:  # detect, track and render in one pass
                outcome = run_tracking(
                    video_path, model, video_settings, settings, gt=gt,
                    iou_threshold=args.iou_threshold, cache=cache, device=args.device,
                    render_to=render_to, codec=args.codec, progress=update,
                    batch_size=args.batch_size, workers=args.workers,
                )  # fmt: skip
                detected[model] = outcome.found
                found, tracks, report, video = (outcome.found, outcome.tracks, outcome.report,
                                                outcome.video)  # fmt: skip
            else:  # --compare: the same detections, tracked another way
                found = detected[model]
                reused = True
                tracks = track(found, settings)
                report = tracking_report(tracks, gt, args.iou_threshold)
                video = None
                if render_to is not None:
                    video = render_video(video_path, tracks, render_to, codec=args.codec,
                                         progress=update)  # fmt: skip
            tracks.write_mot(out / f"{slug}.txt")
            tracks.write_csv(out / f"{slug}.csv")
        finally:
            close()
        state = (
            "same detections" if reused else "cached detections" if found.cached
            else f"detected in {found.duration_s:.1f} s"
        )  # fmt: skip
        print(f"{label}: {tracks.num_tracks} tracks in {len(tracks)} frames ({state}); "
              f"{settings.describe()}")  # fmt: skip
        for note in found.meta.notes + report.notes:
            print(f"  note: {note}")
        reason = nothing_tracked_reason(found, settings)
        if reason:
            print(f"  warning: {reason}")
        reports.append((label, report, video))
        record_tracking_run(
            report, found,
            {"tracker": settings.to_dict(), "video": video_settings.to_dict(),
             "gt": gt is not None},
            label=runs[0][0] if model == runs[0][1] else label,
            device=args.device,
        )  # fmt: skip

    table = _stats_table(reports)
    width = max(len(name) for name in table)
    labels = [label for label, _, _ in reports]
    col = max(12, *(len(label) for label in labels)) + 2
    print(f"{'':<{width}}" + "".join(f"{label:>{col}}" for label in labels))
    for name, values in table.items():
        cells = "".join(f"{_fmt(v):>{col}}" for v in values)
        print(f"{name:<{width}}{cells}")
    for label, report, _ in reports:
        events = report.events()
        kind = "id switches" if report.has_ground_truth else "suspected switches"
        print(f"{label}: {len(events)} {kind}")
        for event in events[: args.list]:
            print(f"  {event.text}")
        if len(events) > args.list:
            print(f"  ... {len(events) - args.list} more in switches.csv")

    stats_csv = io.StringIO()
    writer = csv.writer(stats_csv, lineterminator="\n")
    writer.writerow(["metric", *labels, "meaning"])
    for name, values in table.items():
        writer.writerow([name, *values, METRIC_HELP.get(name, "")])
    atomic_write_bytes(out / "stats.csv", stats_csv.getvalue().encode())
    switches = io.StringIO()
    writer = csv.writer(switches, lineterminator="\n")
    writer.writerow(["run", "frame", "kind", "old_track", "new_track", "description"])
    for label, report, _ in reports:
        for e in report.events():
            writer.writerow([label, e.frame, e.kind, e.old_id, e.new_id, e.text])
    atomic_write_bytes(out / "switches.csv", switches.getvalue().encode())
    write_json_atomic(out / "summary.json", {
        "video": {"path": str(video_path), **{f.name: getattr(info, f.name) for f in fields(info)}},
        "video_settings": video_settings.to_dict(),
        "ground_truth": str(args.gt) if args.gt else None,
        "iou_threshold": args.iou_threshold,
        "runs": [
            {"label": label, "model": report.tracks.model,
             "tracker_settings": report.tracks.settings.to_dict(),
             "metrics": report.metrics(), "video": str(video) if video else None,
             "notes": report.tracks.meta.notes + report.notes}
            for label, report, video in reports
        ],
    })  # fmt: skip
    written = "videos, " if not args.no_video else ""
    print(f"wrote {written}MOT and CSV tracks, stats.csv, switches.csv, summary.json to {out}/")
    return 0


def _tune(args, video_path: Path, video_settings, tracker, gt, cache, out: Path):
    """Detect (or load the cached pass), search the tracker settings, print the top trials
    and the held-out comparison, write tune.json; returns (result, detections)."""
    from tqdm import tqdm

    from cowdemo.files import write_json_atomic
    from cowdemo.tracking import detect_video
    from cowdemo.tracking.tune import tune_tracker

    model = (args.model or [None])[0]
    if model is None:
        raise CowdemoError("Give a model with --model (`cowdemo models` lists them).")
    update, close = _progress_bar(model)
    try:
        found = detect_video(video_path, model, video_settings, cache=cache, device=args.device,
                             progress=update, batch_size=args.batch_size,
                             workers=args.workers)  # fmt: skip
    finally:
        close()
    objective = args.objective or ("hota" if gt is not None else "proxy")
    families = ("norfair", "bytetrack") if args.tracker == "both" else (tracker.family,)
    bar = tqdm(total=args.trials, desc="tuning", unit="trial", file=sys.stderr)

    def progress(p) -> None:
        bar.set_postfix_str(f"best {p.best_value:.4f}")
        bar.update(p.done - bar.n)

    try:
        result = tune_tracker(found, tracker, gt=gt, objective=objective, trials=args.trials,
                              split=args.tune_split, families=families, seed=args.seed,
                              progress=progress)  # fmt: skip
    finally:
        bar.close()
    if result.is_proxy:
        print("objective: PROXY score (no ground truth): " + _objective_help("proxy"))
    else:
        print(f"objective: {objective} ({_objective_help(objective)})")
    print(f"top trials (tuned on the first {result.tune_frames} processed frames):")
    for row in result.top(5):
        print(f"  trial {row['trial']:>3}: {row[result.objective_name]:.4f}  {row['settings']}")
    print(f"held out ({result.held_out_frames} processed frames no trial saw):")
    print(f"  {'':<20}{'settings in use':>18}{'best found':>14}")
    for row in result.held_out_table():
        print(f"  {row['metric']:<20}{_fmt(row['settings in use']):>18}"
              f"{_fmt(row['best found']):>14}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"best settings: {result.best.describe()}")
    write_json_atomic(out / "tune.json", {
        "objective": objective, "proxy": result.is_proxy, "split": args.tune_split,
        "tune_frames": result.tune_frames, "held_out_frames": result.held_out_frames,
        "best": result.best.to_dict(), "settings_in_use": tracker.to_dict(),
        "held_out": result.held_out,
        "trials": [{"trial": t.number, "value": t.value, "settings": t.settings.to_dict(),
                    "metrics": t.metrics} for t in result.trials],
    })  # fmt: skip
    return result, found


def _objective_help(name: str) -> str:
    from cowdemo.tracking.tune import OBJECTIVES

    return OBJECTIVES[name]


def _stats_table(reports) -> dict[str, list]:
    names: list[str] = []
    for _, report, _ in reports:
        names += [n for n in report.metrics() if n not in names]
    return {n: [report.metrics().get(n, "") for _, report, _ in reports] for n in names}


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.4f}"
    return str(value)


def register(sub: argparse._SubParsersAction) -> None:
    from cowdemo.tracking.settings import DISTANCES, HELP, TrackerSettings

    defaults = TrackerSettings()
    parser = sub.add_parser(
        "track", help="track cows through a video, count id switches, write video and tracks",
        description=__doc__.split("\n\n")[0],
    )  # fmt: skip
    parser.add_argument("video", help="video file (MP4, MOV, AVI, MKV, WebM)")
    parser.add_argument("--model", action="append",
                        help="model name or .onnx/.pt path; repeat to compare models")
    parser.add_argument("--gt", help="MOTChallenge ground truth (gt.txt) for MOT metrics")
    parser.add_argument("--out", default="tracks", help="output folder (default: tracks/)")
    video = parser.add_argument_group("video")
    video.add_argument("--stride", type=int, default=1, help=HELP["stride"])
    video.add_argument("--max-side", type=int, default=1280,
                       help=HELP["max_side"] + " 0 keeps the original size. Default 1280.")
    video.add_argument("--max-frames", type=int, help=HELP["max_frames"])
    tracker = parser.add_argument_group("tracker (Norfair)")
    tracker.add_argument("--distance", default=defaults.distance, choices=list(DISTANCES),
                         help=HELP["distance"] + " Default: euclidean (box centres, pixels).")
    tracker.add_argument("--distance-threshold", type=float,
                         help=HELP["distance_threshold"] + " Default: the distance's own "
                         "(20 pixels for euclidean, 0.7 for iou).")
    tracker.add_argument("--hit-counter-max", type=int, default=defaults.hit_counter_max,
                         help=HELP["hit_counter_max"])
    tracker.add_argument("--initialization-delay", type=int, help=HELP["initialization_delay"])
    tracker.add_argument("--reid", action="store_true", help=HELP["reid"])
    tracker.add_argument("--reid-threshold", type=float,
                         default=defaults.reid_distance_threshold,
                         help=HELP["reid_distance_threshold"])
    tracker.add_argument("--reid-memory", type=int, default=defaults.reid_hit_counter_max,
                         help=HELP["reid_hit_counter_max"])
    tracker.add_argument("--score-threshold", type=fraction, default=defaults.score_threshold,
                         help=HELP["score_threshold"])
    tracker.add_argument("--classes", default="cow",
                         help="comma-separated classes to track, or 'all' (default: cow)")
    tracker.add_argument("--class-aware", action="store_true", help=HELP["class_aware"])
    tracker.add_argument("--no-backfill", action="store_true",
                         help="turn backfill off. Backfill: " + HELP["backfill"])
    tracker.add_argument("--tracker", default="norfair", choices=["norfair", "bytetrack", "both"],
                         help=HELP["family"] + " 'both': --tune searches both families.")
    tracker.add_argument("--bytetrack-activation", type=float,
                         default=defaults.bytetrack_activation, help=HELP["bytetrack_activation"])
    tracker.add_argument("--bytetrack-lost-buffer", type=int,
                         default=defaults.bytetrack_lost_buffer,
                         help=HELP["bytetrack_lost_buffer"])
    tracker.add_argument("--bytetrack-match", type=float, default=defaults.bytetrack_match,
                         help=HELP["bytetrack_match"])
    tracker.add_argument("--bytetrack-min-frames", type=int,
                         default=defaults.bytetrack_min_frames, help=HELP["bytetrack_min_frames"])
    tune = parser.add_argument_group("auto-tune (searches the tracker settings on the cached "
                                     "detections, then tracks with the best)")
    tune.add_argument("--tune", action="store_true",
                      help="find the best tracker settings (Optuna TPE; the settings given are "
                      "trial 1) on the first part of the video, report them on the rest")
    tune.add_argument("--trials", type=int, default=40, help="settings tried (default 40)")
    tune.add_argument("--objective", choices=["hota", "idf1", "switches", "proxy"],
                      help="with --gt: hota (default), idf1 or switches (fewest id switches); "
                      "without: proxy (a documented estimate, not a metric)")
    tune.add_argument("--tune-split", type=float, default=0.6,
                      help="share of the processed frames tuned on; the rest is held out "
                      "(default 0.6)")
    tune.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    tracker.add_argument("--compare", metavar="KEY=VALUE,...",
                         help="also track with these settings changed (first model), e.g. "
                         "distance=iou,distance_threshold=0.7")
    run = parser.add_argument_group("run")
    run.add_argument("--iou-threshold", type=float, default=0.5,
                     help="IoU for a tracked box to match a ground-truth box (default 0.5)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    run.add_argument("--batch-size", type=int, help="frames per forward pass (8 GPU, 2 CPU)")
    run.add_argument("--workers", type=int, help="forward passes at once (default 1 GPU, 2 CPU)")
    run.add_argument("--codec", choices=["h264", "vp9"], help="output video codec (default h264)")
    run.add_argument("--no-video", action="store_true", help="skip rendering the tracked video")
    run.add_argument("--no-cache", action="store_true", help="detect again even if cached")
    run.add_argument("--list", type=int, default=20, help="switches listed per run (default 20)")
    parser.set_defaults(func=cmd_track)
