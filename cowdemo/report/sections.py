"""Report sections from plain data: stored runs, evaluation results, tracking reports.

Each function returns one :class:`~cowdemo.report.document.Section` and computes nothing the
run history does not already hold: the numbers in the tables are the stored runs' metrics.
More sections (error types, the A-vs-B interval, label-error suspects) plug in as further
functions of the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cowdemo import plots
from cowdemo.draw import FN_COLOR, FP_COLOR, TP_COLOR, draw_outcomes
from cowdemo.evaluation.detection import STAT_NAMES, EvalResult
from cowdemo.report.document import Chart, Gallery, Section, Table, Text, thumbnail
from cowdemo.runs import Run

#: What each COCO stat means, in plain words (the headline table's last column).
STAT_HELP = {
    "AP": "Average precision over IoU 0.50-0.95 (the COCO headline number).",
    "AP50": "Average precision when a box counts as found at IoU 0.5.",
    "AP75": "Average precision at the stricter IoU 0.75 (tight boxes).",
    "APs": "AP on small boxes (under 32x32 pixels).",
    "APm": "AP on medium boxes (32x32 to 96x96 pixels).",
    "APl": "AP on large boxes (over 96x96 pixels).",
    "AR1": "Recall with 1 detection per image.",
    "AR10": "Recall with 10 detections per image.",
    "AR100": "Recall with 100 detections per image.",
    "ARs": "Recall on small boxes.",
    "ARm": "Recall on medium boxes.",
    "ARl": "Recall on large boxes.",
}
TRAINING_KEYS = ("iterations", "batch_size", "image_size", "optimizer", "lr", "schedule",
                 "freeze_stages", "seed")  # fmt: skip


#: Tracking metrics that are rates or averages; the others are counts, shown as whole numbers.
RATE_METRICS = {"MOTA", "MOTP", "IDF1", "IDP", "IDR", "HOTA", "DetA", "AssA", "Recall",
                "Precision", "Mean track length"}


def count_or_rate(name: str, value: Any) -> Any:
    """A stored tracking metric as shown: counts (stored as floats) as ints."""
    value = defined(value)
    if (name not in RATE_METRICS and isinstance(value, float) and not math.isnan(value)
            and value.is_integer()):
        return int(value)
    return value


def defined(value: Any) -> Any:
    """COCO's -1 (undefined) and NaN as None, so tables say n/a instead of a number."""
    if isinstance(value, float) and (math.isnan(value) or value == -1.0):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value == -1:
        return None
    return value


# --- what was compared ------------------------------------------------------------------------
def model_facts(name: str) -> dict[str, Any]:
    """A model's description from the registry: kind, architecture, base model and, for a
    fine-tune, its training settings (from the checkpoint's metadata). Unknown names (an
    external results file) give just the name."""
    from cowdemo.errors import CowdemoError
    from cowdemo.models.registry import find_model

    try:
        spec = find_model(name)
    except CowdemoError:
        return {"name": name, "kind": "results file or unknown model"}
    facts: dict[str, Any] = {
        "name": spec.name, "kind": spec.kind, "architecture": spec.architecture,
        "base_model": spec.base_model or ("COCO-pretrained" if "coco" in spec.kind else ""),
        "classes": ", ".join(spec.classes[:6]) + (" ..." if len(spec.classes) > 6 else ""),
    }  # fmt: skip
    meta = spec.metadata or {}
    if meta:
        settings = meta.get("settings") or {}
        trained = {k: settings[k] for k in TRAINING_KEYS if k in settings}
        if "iteration" in meta and "iterations" not in trained:
            trained["iterations"] = meta["iteration"]
        facts["fine-tune"] = ", ".join(f"{k} {v}" for k, v in trained.items())
        facts["trained on"] = str(meta.get("dataset", ""))
        if meta.get("metrics"):
            facts["held-out AP50"] = meta["metrics"].get("AP50")
    return facts


def compared_section(
    models: Sequence[Mapping[str, Any]],
    *,
    dataset: Mapping[str, Any] | None = None,
    video: Mapping[str, Any] | None = None,
    device: str = "",
    created: str = "",
    code: str = "",
) -> Section:
    """Models (with base and fine-tune settings), dataset and video, device, date, code."""
    columns = ["model", "kind", "architecture", "base model", "fine-tune", "trained on",
               "classes"]  # fmt: skip
    keys = ["name", "kind", "architecture", "base_model", "fine-tune", "trained on", "classes"]
    rows = [[m.get(k) or "" for k in keys] for m in models]
    blocks: list = [Table(columns, rows, name="models")]
    facts = []
    if dataset:
        facts.append(["dataset", f"{dataset['name']}: {dataset['images']} images, "
                                 f"{dataset['boxes']} boxes ({dataset.get('classes', '')})"])
    if video:
        facts.append(["video", video["text"]])
    facts += [["device", device or "?"], ["made", created], ["code version", code or "?"]]
    blocks.append(Table(["", ""], facts, name="facts"))
    return Section("compared", "What was compared", blocks)


# --- evaluation -------------------------------------------------------------------------------
def headline_section(runs: Mapping[str, Run], results: Mapping[str, EvalResult]) -> Section:
    """The 12 COCO stats side by side (the stored runs' metrics), the change of the last model
    against the first, and the bar chart."""
    names = list(runs)
    columns = ["metric", *names]
    if len(names) >= 2:
        columns.append("change")
    columns.append("meaning")
    rows = []
    for stat in STAT_NAMES:
        values = [defined(runs[n].metrics.get(stat)) for n in names]
        row = [stat, *values]
        if len(names) >= 2:
            a, b = values[0], values[-1]
            row.append(None if a is None or b is None else b - a)
        rows.append([*row, STAT_HELP[stat]])
    blocks: list = []
    if len(names) >= 2:
        a, b = (runs[names[0]].metrics.get("AP50"), runs[names[-1]].metrics.get("AP50"))
        if a is not None and b is not None and a >= 0 and b >= 0:
            verb = "finds more" if b > a else "finds fewer" if b < a else "finds as many"
            blocks.append(Text(f"AP50: {names[-1]} {b:.3f} against {names[0]} {a:.3f} "
                               f"({b - a:+.3f}): {names[-1]} {verb} cows correctly at IoU 0.5 "
                               "on this dataset.", "sentence"))  # fmt: skip
    change = f" Change: {names[-1]} minus {names[0]}." if len(names) >= 2 else ""
    blocks.append(Table(columns, rows, name="headline",
                        caption="From the stored evaluation runs (n/a: no box of that size)."
                        + change))
    blocks.append(Chart(plots.stats_bars(results)))
    for name, result in results.items():
        if result.confusions:
            text = ", ".join(f"{k} {v}" for k, v in sorted(result.confusions.items()))
            blocks.append(Text(f"{name} confusions (another class on a true box): {text}.",
                               "note"))
    return Section("headline", "Headline metrics", blocks)


def curves_section(results: Mapping[str, EvalResult]) -> Section:
    return Section("curves", "Precision-recall", [
        Chart(plots.pr_curves(results), "Precision against recall, mean over classes: solid at "
              "IoU 0.5, dashed at IoU 0.75. Higher and further right is better."),
        Chart(plots.ap50_vs_threshold(results), "What keeping only boxes above a score "
              "threshold would give: AP50 (solid) and F1 (dotted)."),
    ])  # fmt: skip


def per_class_section(runs: Mapping[str, Run], results: Mapping[str, EvalResult]) -> Section:
    classes: list[str] = []
    for result in results.values():
        classes += [c for c, v in result.per_class_ap.items()
                    if v.get("num_gt", 1) > 0 and c not in classes]
    names = list(results)
    rows = []
    for c in classes:
        row: list = [c, int(next(iter(results.values())).per_class_ap.get(c, {}).get("num_gt", 0))]
        for n in names:
            stored = runs[n].metrics.get(f"AP50/{c}") if n in runs else None
            value = stored if stored is not None else results[n].per_class_ap.get(c, {}).get(
                "AP50")
            row += [defined(results[n].per_class_ap.get(c, {}).get("AP")), defined(value)]
        rows.append(row)
    columns = ["class", "true boxes"] + [f"{n} {m}" for n in names for m in ("AP", "AP50")]
    return Section("classes", "Per class", [
        Table(columns, rows, name="per_class"), Chart(plots.per_class_ap(results)),
    ])  # fmt: skip


def gallery_section(dataset, evaluations: Mapping[str, Any], count: int = 6) -> Section:
    """The ``count`` images where the models' errors differ most, one thumbnail per model with
    true positives green, false positives red and missed cows orange."""
    from cowdemo.evaluation.report import image_errors

    errors = image_errors(evaluations)
    names = list(evaluations)
    blocks: list = []
    if errors.empty:
        return Section("gallery", "Where the models differ", [Text("No images.", "note")])
    errors["total"] = errors[[f"{n} errors" for n in names]].sum(axis=1)
    errors = errors.sort_values(["difference", "total", "image_id"],
                                ascending=[False, False, True], kind="stable")
    thumbs = []
    for image_id in errors["image_id"].head(count):
        image_id = int(image_id)
        info = dataset.image_info(image_id)
        image = dataset.read_image(image_id)
        gt = dataset.ground_truth(image_id)
        for name, e in evaluations.items():
            outcome = e.result.per_image.get(image_id, {"tp": [], "fp": [], "fn": []})
            dets = e.predictions.get(image_id)
            drawn = image if dets is None else draw_outcomes(image, gt.xyxy, dets, outcome)
            thumbs.append(thumbnail(drawn, f"{info['file_name']} · {name}: "
                                    f"{len(outcome['tp'])} TP, {len(outcome['fp'])} FP, "
                                    f"{len(outcome['fn'])} missed"))
    blocks.append(Gallery(
        thumbs, per_row=len(names),
        legend=[("true positive", TP_COLOR), ("false positive", FP_COLOR), ("missed", FN_COLOR)],
        caption=f"The {len(thumbs) // max(1, len(names))} of {len(errors)} images where the "
        "numbers of errors (false positives + misses, IoU 0.5) differ most between the models.",
    ))  # fmt: skip
    return Section("gallery", "Where the models differ", blocks)


# --- tracking ---------------------------------------------------------------------------------
def tracking_section(
    runs: Mapping[str, Run],
    reports: Mapping[str, Any] | None = None,
    video_path: str | Path | None = None,
    *,
    frames_per_run: int = 3,
) -> Section:
    """Tracks and id switches per run, the MOT metrics (the stored runs' metrics), and, when
    the tracks themselves are given (``reports``: label -> TrackingReport), the timeline and
    thumbnails of the frames at the first switches."""
    from cowdemo.tracking.stats import METRIC_HELP

    labels = list(runs)
    with_gt = any(bool(r.settings.get("gt")) for r in runs.values())
    kind = "ID switches" if with_gt else "Suspected switches"
    blocks: list = []
    summary = [[label, tracker_text(runs[label].settings.get("tracker") or {}),
                *(count_or_rate(n, runs[label].metrics.get(n))
                  for n in ("Tracks", kind, "True cows"))] for label in labels]
    blocks.append(Table(["run", "tracker", "tracks", kind.lower(), "true cows"], summary,
                        name="tracking_summary",
                        caption="With ground truth: id switches against it; without: suspected "
                        "switches (a track ending where another starts soon after)."))
    names: list[str] = []
    for label in labels:
        names += [n for n in runs[label].metrics if n not in names]
    order = list(METRIC_HELP)  # the stored metrics come back sorted: the Track page's order
    names.sort(key=lambda n: order.index(n) if n in order else len(order))
    rows = [[n, *(count_or_rate(n, runs[label].metrics.get(n)) for label in labels),
             METRIC_HELP.get(n, "")] for n in names]
    if reports:
        from cowdemo.tracking.timeline import timeline_figure

        blocks.append(Chart(timeline_figure(list(reports.values())),
                            "Every track id over the frames; a red ✕ marks an id switch."))
        for label, report in reports.items():
            if not report.summary.num_tracks:
                blocks.append(Text(f"{label} made no track: no box of a tracked class stayed "
                                   "above the score threshold long enough to start one.", "note"))
        if video_path is not None:
            thumbs = switch_thumbnails(reports, video_path, frames_per_run)
            if thumbs:
                blocks.append(Gallery(thumbs, per_row=min(3, len(thumbs)),
                                      caption="Frames at the first id switches of each run."))
    blocks.append(Table(["metric", *labels, "meaning"], rows, name="tracking_metrics"))
    events = []
    for label in labels:
        for e in (reports[label].events() if reports and label in reports else []):
            events.append([label, e.frame, e.text])
    if events:
        blocks.append(Table(["run", "frame", "what happened"], events[:40], name="switches",
                            caption="" if len(events) <= 40 else f"The first 40 of {len(events)}."))
    return Section("tracking", "Tracking", blocks)


def tracker_text(stored: Mapping[str, Any]) -> str:
    """A stored run's tracker settings in one line (Norfair or ByteTrack, as the Track page
    describes them)."""
    from cowdemo.errors import CowdemoError
    from cowdemo.tracking import TrackerSettings

    known = {f for f in TrackerSettings.__dataclass_fields__ if f != "label"}
    values = {k: v for k, v in stored.items() if k in known}
    if isinstance(values.get("classes"), list):
        values["classes"] = tuple(values["classes"])
    try:
        settings = TrackerSettings(**values)
    except (CowdemoError, TypeError):
        return ", ".join(f"{k} {v}" for k, v in stored.items())
    described = settings.describe()
    if described.startswith("ByteTrack"):
        return described
    return f"Norfair: {described}"


def switch_thumbnails(reports: Mapping[str, Any], video_path: str | Path,
                      per_run: int = 3) -> list:
    """The frame of each run's first ``per_run`` switches with its tracked boxes drawn."""
    from cowdemo.tracking.render import draw_tracked, scaled
    from cowdemo.video import frame_at

    thumbs = []
    for label, report in reports.items():
        tracks = report.tracks
        numbers = np.asarray(tracks.frame_numbers)
        if not len(numbers):
            continue
        meta = tracks.meta
        scaled_down = (meta.processed_width, meta.processed_height) != (meta.width, meta.height)
        side = max(meta.processed_width, meta.processed_height) if scaled_down else None
        for event in report.events()[:per_run]:
            index = int(np.abs(numbers - event.frame).argmin())
            image = frame_at(video_path, float(tracks.times[index]), side)
            sx, sy = image.shape[1] / meta.width, image.shape[0] / meta.height
            drawn = draw_tracked(image, scaled(tracks.detections[index], sx, sy))
            thumbs.append(thumbnail(drawn, f"{label} · {event.text}", side=360))
    return thumbs


# --- provenance ---------------------------------------------------------------------------------
def runs_section(runs: Sequence[Run]) -> Section:
    """The run ids the report came from, each with the command that shows it."""
    rows = [[r.id, r.kind, r.model, r.dataset, r.when, r.code_version or "?", r.device,
             f"cowdemo runs show {r.id}"] for r in runs]
    return Section("runs", "Runs this report came from", [
        Text("Every number above is read from these stored runs. `cowdemo runs show ID` prints "
             "one (models, weights hash, dataset hash, settings, metrics); `cowdemo runs diff A "
             "B` compares two."),
        Table(["run", "kind", "model", "dataset", "when", "code", "device", "show it"], rows,
              name="runs"),
    ])  # fmt: skip


# --- label-error suspects (cowdemo.evaluation.suspects, issue 14's interface) -------------------
def suspects_section(dataset, suspects: Sequence[Any], count: int = 8) -> Section:
    """The most suspicious boxes (``Suspect``: kind, image_id, file_name, box as COCO xywh,
    category, score, models, rank), each a thumbnail of its image with the box drawn:
    "missing" (a confident detection no ground truth matches: a box someone forgot to draw)
    and "stray" (a ground-truth box no model finds: maybe a wrong box)."""
    import cv2

    shown = list(suspects)[:count]
    if not shown:
        return Section("suspects", "Label-error suspects",
                       [Text("No suspect: every confident detection matches a ground-truth box "
                             "and every ground-truth box is found by some model.", "note")])
    thumbs = []
    for s in shown:
        image = np.ascontiguousarray(dataset.read_image(int(s.image_id)).copy())
        x, y, w, h = (float(v) for v in s.box)
        color = FP_COLOR if s.kind == "missing" else FN_COLOR
        width = max(2, round(min(image.shape[:2]) / 200))
        cv2.rectangle(image, (round(x), round(y)), (round(x + w), round(y + h)), color, width,
                      cv2.LINE_AA)
        what = (f"{s.category} {s.score:.2f} by {', '.join(s.models)}, no box drawn"
                if s.kind == "missing" else f"{s.category} box no model finds")
        thumbs.append(thumbnail(image, f"{s.file_name}: {what}", side=360))
    rows = [[s.kind, s.file_name, s.category, s.score, ", ".join(s.models), s.rank]
            for s in shown]
    return Section("suspects", "Label-error suspects", [
        Text("Boxes that may be labelling mistakes, most suspicious first: red, a confident "
             "detection with no ground-truth box under it (a cow nobody drew?); orange, a "
             "ground-truth box no model finds at any score (a wrong box?)."),
        Gallery(thumbs, per_row=4),
        Table(["kind", "image", "class", "score", "models", "rank"], rows, name="suspects",
              digits=3),
    ])  # fmt: skip


def errors_section(dataset, evaluations: Mapping[str, Any]) -> Section:
    """Why boxes are wrong (TIDE error types: the AP50 each costs, and how many) and whether
    scores can be trusted (reliability diagram, expected calibration error), per model: the
    same numbers as the Evaluate page (cowdemo.evaluation.insights)."""
    from cowdemo.evaluation.analysis import ERROR_LABELS, ERROR_TYPES
    from cowdemo.evaluation.insights import error_types, score_calibration

    tides = {name: error_types(e, dataset) for name, e in evaluations.items()}
    calibrations = {name: score_calibration(e, dataset) for name, e in evaluations.items()}
    rows = [[ERROR_LABELS[t], *[v for tide in tides.values()
                               for v in (tide.delta_ap[t], int(tide.counts[t]))]]
            for t in ERROR_TYPES]  # fmt: skip
    columns = ["error type", *[f"{name}: {what}" for name in tides
                               for what in ("AP50 gained if fixed", "count")]]  # fmt: skip
    calibration_rows = [[name, c.ece, c.mce, int(c.num_detections)]
                        for name, c in calibrations.items()]
    return Section("errors", "Why boxes are wrong, and can the scores be trusted", [
        Chart(plots.error_types(tides), "Each bar: how much AP50 would rise if every error of "
              "that type were fixed (TIDE, foreground IoU 0.5, background 0.1); the number on "
              "top is how many boxes make that error."),
        Table(columns, rows, digits=4, name="error_types"),
        Chart(plots.reliability(calibrations), "Points on the dashed diagonal mean a score of "
              "0.8 is right 80% of the time; below it, the model is over-confident."),
        Table(["model", "expected calibration error", "largest bin error", "boxes"],
              calibration_rows, digits=3, name="calibration"),
    ])  # fmt: skip
