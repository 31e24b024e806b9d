"""Assembling a report from stored runs (and, for a tracked video, the tracks themselves).

    report = build_report(store, evaluation_runs=[3, 4], tracking_runs=[5, 6],
                          tracks={5: report_a, 6: report_b}, video_path="cows.mp4")
    write_html(report, "report.html")

:func:`make_report` runs what is missing first (evaluations and tracking, both stored as runs
and reused when their inputs are unchanged), as ``cowdemo report`` does.
"""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cowdemo.errors import CowdemoError
from cowdemo.report import sections
from cowdemo.report.document import Report, Section
from cowdemo.runs import REPO_ROOT, Run, RunStore, canonical_json

Say = Callable[[str], None]


@functools.lru_cache(maxsize=1)
def describe_version() -> str:
    """``git describe`` of the code (tag, commits since, commit, -dirty), else the package
    version."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--tags", "--always", "--dirty"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"cowdemo {version('cowdemo')}"
    except PackageNotFoundError:
        return ""


def _labels(runs: Sequence[Run]) -> list[str]:
    """Run labels: the model name, with the run id where two runs share a model."""
    models = [r.model for r in runs]
    return [r.model if models.count(r.model) == 1 else f"{r.model} (run {r.id})" for r in runs]


def _dataset_for(runs: Sequence[Run], dataset) -> tuple[Any, str]:
    """The dataset the runs were scored on (to draw the gallery), or None with why not."""
    if dataset is None:
        from cowdemo.datasets import open_dataset

        try:
            dataset = open_dataset(runs[0].dataset)
        except CowdemoError as exc:
            return None, f"The gallery needs the dataset's images: {exc}"
    if any(r.dataset_hash and r.dataset_hash != dataset.content_hash() for r in runs):
        return None, (f"Dataset {dataset.name} has changed since these runs: the gallery is left "
                      "out (evaluate again for a gallery of the current images).")
    return dataset, ""


def check_runs(store: RunStore, evaluation_runs: Sequence[int] = (),
               tracking_runs: Sequence[int] = ()) -> tuple[list[Run], list[Run]]:
    """The runs, checked to make one report: right kinds, evaluations on one dataset."""
    if not evaluation_runs and not tracking_runs:
        raise CowdemoError("A report needs at least one evaluation or tracking run.")
    eval_runs = [store.get(i) for i in evaluation_runs]
    track_runs = [store.get(i) for i in tracking_runs]
    for run in eval_runs:
        if run.kind != "evaluation":
            raise CowdemoError(f"Run {run.id} is a {run.kind} run, not an evaluation.")
    for run in track_runs:
        if run.kind != "tracking":
            raise CowdemoError(f"Run {run.id} is a {run.kind} run, not a tracking run.")
    if len({r.dataset for r in eval_runs}) > 1:
        raise CowdemoError("The evaluation runs are on different datasets: "
                           + ", ".join(f"run {r.id} on {r.dataset}" for r in eval_runs) + ".")

    return eval_runs, track_runs


def split_runs(store: RunStore, run_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """(evaluation run ids, tracking run ids) of any runs (training runs have no report)."""
    runs = [store.get(i) for i in run_ids]
    for run in runs:
        if run.kind not in ("evaluation", "tracking"):
            raise CowdemoError(f"Run {run.id} is a {run.kind} run: reports show evaluation and "
                               "tracking runs.")
    return ([r.id for r in runs if r.kind == "evaluation"],
            [r.id for r in runs if r.kind == "tracking"])


def build_report(
    store: RunStore,
    evaluation_runs: Sequence[int] = (),
    tracking_runs: Sequence[int] = (),
    *,
    tracks: Mapping[int, Any] | None = None,
    video_path: str | Path | None = None,
    dataset=None,
    title: str | None = None,
    gallery_images: int = 6,
    extra_sections: Sequence[Section] = (),
) -> Report:
    """A report of stored evaluation and tracking runs. ``tracks`` (run id -> TrackingReport)
    adds the timeline, and with ``video_path`` thumbnails of the frames at switches; ``dataset``
    (default: opened by the runs' dataset name) gives the gallery its images."""
    from cowdemo.evaluation.runner import load_evaluation

    eval_runs, track_runs = check_runs(store, evaluation_runs, tracking_runs)
    models: list[str] = []
    for run in eval_runs + track_runs:
        name = run.model.split(" [")[0]
        if name not in models:
            models.append(name)
    data: dict[str, Any] = {"evaluation": {}, "tracking": {},
                            "runs": [r.id for r in eval_runs + track_runs]}
    body: list[Section] = []
    dataset_facts = None
    if eval_runs:
        labels = _labels(eval_runs)
        runs = dict(zip(labels, eval_runs))
        evaluations = {label: load_evaluation(store, r.id) for label, r in runs.items()}
        results = {label: e.result for label, e in evaluations.items()}
        data["evaluation"] = {label: {"run": r.id, "metrics": r.metrics}
                              for label, r in runs.items()}
        body += [sections.headline_section(runs, results), sections.curves_section(results),
                 sections.per_class_section(runs, results)]
        image_dataset, why = _dataset_for(eval_runs, dataset)
        if image_dataset is not None:
            body.append(sections.errors_section(image_dataset, evaluations))
            body.append(sections.gallery_section(image_dataset, evaluations, gallery_images))
            sentences = _interval_sentences(image_dataset, evaluations)
            if sentences:
                data["interval"] = sentences
                # the interval's sentences replace the plain AP50 one
                headline = body[0]
                kept = [b for b in headline.blocks
                        if not (isinstance(b, sections.Text) and b.kind == "sentence")]
                headline.blocks[:] = [sections.Text(t, "sentence") for t in sentences] + kept
            suspects = _suspects(image_dataset, evaluations)
            if suspects is not None:
                body.append(sections.suspects_section(image_dataset, suspects))
            dataset_facts = {"name": image_dataset.name, "images": len(image_dataset.image_ids),
                             "boxes": image_dataset.num_boxes(),
                             "classes": ", ".join(image_dataset.classes)}
        else:
            body.append(Section("gallery", "Where the models differ",
                                [sections.Text(why, "note")]))
            counts = next(iter(results.values())).counts
            dataset_facts = {"name": eval_runs[0].dataset, "images": counts.get("images", "?"),
                             "boxes": counts.get("ground_truth", "?")}
    video_facts = None
    if track_runs:
        labels = _labels(track_runs)
        runs = dict(zip(labels, track_runs))
        reports = ({label: tracks[r.id] for label, r in runs.items() if r.id in tracks}
                   if tracks else None)
        data["tracking"] = {label: {"run": r.id, "metrics": r.metrics}
                            for label, r in runs.items()}
        body.append(sections.tracking_section(runs, reports, video_path))
        video_facts = {"text": _video_text(track_runs[0], reports)}
    body += list(extra_sections)
    body.append(sections.runs_section(eval_runs + track_runs))

    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    devices = ", ".join(dict.fromkeys(r.device for r in eval_runs + track_runs if r.device))
    compared = sections.compared_section(
        [sections.model_facts(m) for m in models], dataset=dataset_facts, video=video_facts,
        device=devices, created=created, code=describe_version(),
    )  # fmt: skip
    subject = " vs ".join(models)
    where = [x for x in ((dataset_facts or {}).get("name"),
                         track_runs[0].dataset if track_runs else None) if x]
    return Report(
        title or f"cowdemo report: {subject}",
        [compared, *body],
        subtitle=f"on {' and '.join(where)} · {created}" if where else created,
        data=data,
    )


def _coco_results(dataset, evaluation) -> list[dict]:
    return [row for image_id, dets in evaluation.predictions.items()
            for row in dets.to_coco_results(image_id, dataset.category_ids)]


def _interval_sentences(dataset, evaluations: Mapping[str, Any]) -> list[str]:
    """B against A with a paired bootstrap interval over images, in plain sentences
    (cowdemo.evaluation.compare; seed 0), for exactly two models."""
    if len(evaluations) != 2:
        return []
    try:
        from cowdemo.evaluation.compare import compare_models
    except ImportError:
        return []
    (name_a, a), (name_b, b) = evaluations.items()
    comparison = compare_models(dataset.coco, _coco_results(dataset, a),
                                _coco_results(dataset, b), names=(name_a, name_b), seed=0)
    return comparison.sentences()


def _suspects(dataset, evaluations: Mapping[str, Any]) -> list | None:
    """Label-error suspects of the evaluated models (None where cowdemo.evaluation.suspects
    is not there yet)."""
    try:
        from cowdemo.evaluation.suspects import find_suspects
    except ImportError:
        return None
    results = {
        label: [row for image_id, dets in e.predictions.items()
                for row in dets.to_coco_results(image_id, dataset.category_ids)]
        for label, e in evaluations.items()
    }  # fmt: skip
    return find_suspects(dataset.coco, results)


def _video_text(run: Run, reports: Mapping[str, Any] | None) -> str:
    if reports:
        meta = next(iter(reports.values())).tracks.meta
        processed = len(next(iter(reports.values())).tracks)
        text = (f"{meta.name}: {meta.width}x{meta.height}, {meta.fps:.2f} fps, {processed} "
                f"frames processed (stride {meta.stride})")
    else:
        text = f"{run.dataset}: {int(run.metrics.get('Frames', 0))} frames processed"
    gt = "scored against ground truth" if run.settings.get("gt") else "no ground truth"
    return f"{text}; {gt}; tracker {sections.tracker_text(run.settings.get('tracker', {}))}"


# --- running what is missing ------------------------------------------------------------------
@dataclass
class ReportInputs:
    """What ``cowdemo report`` compares: a dataset, models, and optionally a video."""

    dataset: str | Path | None
    models: list[str]
    video: str | Path | None = None
    gt: str | Path | None = None
    device: str = "auto"
    tracker: dict[str, Any] = field(default_factory=dict)
    max_side: int | None = 1280
    stride: int = 1


def make_report(inputs: ReportInputs, store: RunStore | None = None, say: Say = print,
                progress_factory: Callable[[str, int], Any] | None = None) -> Report:
    """Evaluate every model on the dataset and track the video with each (stored runs,
    reused when unchanged), then build the report from those runs."""
    from cowdemo.datasets import open_dataset
    from cowdemo.evaluation.runner import evaluate_model

    store = store or RunStore()
    if not inputs.models:
        raise CowdemoError("Give at least one model (--model A --model B).")
    if inputs.dataset is None and inputs.video is None:
        raise CowdemoError("Give a dataset (--dataset), a video (--video) or both.")
    if inputs.gt is not None and inputs.video is None:
        raise CowdemoError("--gt is the ground truth of a video: give the video with --video.")
    eval_ids: list[int] = []
    dataset = None
    if inputs.dataset is not None:
        dataset = open_dataset(inputs.dataset)
        for model in inputs.models:
            update = progress_factory(f"evaluate {model}", len(dataset.image_ids)) \
                if progress_factory else None
            evaluation = evaluate_model(model, dataset, device=inputs.device, store=store,
                                        progress=update)
            if update:  # a stored result reports no progress: finish the bar
                update(len(dataset.image_ids), len(dataset.image_ids))
            state = "stored result" if evaluation.cached else f"{evaluation.duration_s:.1f} s"
            say(f"{model} on {dataset.name}: run {evaluation.run_id} ({state})")
            eval_ids.append(evaluation.run_id)
    track_ids, reports = [], {}
    if inputs.video is not None:
        track_ids, reports = track_models(inputs, store, say)
    return build_report(store, eval_ids, track_ids, tracks=reports, video_path=inputs.video,
                        dataset=dataset)


def track_models(inputs: ReportInputs, store: RunStore, say: Say = print):
    """Track ``inputs.video`` with each model (cached detections), store each run; returns
    (run ids, run id -> TrackingReport)."""
    from cowdemo.evaluation.tracking import read_mot
    from cowdemo.tracking import DetectionCache, TrackerSettings, VideoSettings, run_tracking
    from cowdemo.tracking.history import record_tracking_run

    gt = read_mot(inputs.gt) if inputs.gt else None
    video_settings = VideoSettings(inputs.stride, inputs.max_side, None)
    cache = DetectionCache()
    ids, reports = [], {}
    for model in inputs.models:
        settings = TrackerSettings(**inputs.tracker).with_changes(label=model)
        outcome = run_tracking(inputs.video, model, video_settings, settings, gt=gt,
                               cache=cache, device=inputs.device)
        config = {"tracker": settings.to_dict(), "video": video_settings.to_dict(),
                  "gt": gt is not None}
        found = outcome.found
        stored = store.find("tracking", found.model, found.key, found.key, config)
        if stored is not None and gt is None:
            run_id = stored.id  # the same detections and settings: the same numbers
        elif stored is not None and canonical_json(stored.metrics) == canonical_json(
                _metrics(outcome.report)):
            run_id = stored.id  # the same ground truth too (it is not part of the key)
        else:
            run_id = record_tracking_run(outcome.report, found, config, device=inputs.device,
                                         store=store)
        state = "cached detections" if found.cached else f"detected in {found.duration_s:.1f} s"
        state += ", stored run" if stored is not None and stored.id == run_id else ""
        say(f"{model} on {Path(inputs.video).name}: run {run_id}, "
            f"{outcome.report.summary.num_tracks} tracks ({state})")
        ids.append(run_id)
        reports[run_id] = outcome.report
    return ids, reports


def _metrics(report) -> dict[str, float]:
    return {name: float(value) for name, value in report.metrics().items()}
