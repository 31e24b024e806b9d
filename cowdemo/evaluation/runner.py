"""Evaluating models on datasets, storing every evaluation in the run history.

    evaluation = evaluate_model("frcnn-r50-fpn-coco", dataset)   # predicts, scores, stores
    evaluation.result.stats["AP"]; evaluation.run_id; evaluation.cached

Re-running with unchanged inputs (same model weights, dataset content and settings) returns the
stored result at once instead of predicting again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cowdemo.datasets.coco import CocoDataset
from cowdemo.detections import Detections
from cowdemo.devices import resolve_device
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.detection import DetectionEvaluator, EvalResult, evaluate_coco
from cowdemo.files import read_json
from cowdemo.models.base import Detector
from cowdemo.models.registry import find_model, load_detector
from cowdemo.runs import RunStore, file_sha256

ENGINE = "cowdemo-coco-bbox-1"
Progress = Callable[[int, int], None]


@dataclass
class ModelEvaluation:
    """One model scored on one dataset: the result, its detections per image, and its run."""

    model: str
    dataset: str
    result: EvalResult
    predictions: dict[int, Detections]
    run_id: int
    cached: bool
    duration_s: float


def _predictions_to_json(predictions: dict[int, Detections]) -> dict[str, Any]:
    return {
        str(image_id): {
            "xyxy": d.xyxy.round(3).tolist(),
            "scores": d.scores.round(6).tolist(),
            "class_names": d.class_names.tolist(),
        }
        for image_id, d in predictions.items()
    }


def _predictions_from_json(data: dict[str, Any]) -> dict[int, Detections]:
    return {
        int(image_id): Detections(
            np.asarray(d["xyxy"]).reshape(-1, 4), d["scores"], [-1] * len(d["scores"]),
            d["class_names"],
        )
        for image_id, d in data.items()
    }


def _check_has_boxes(dataset: CocoDataset) -> None:
    """A dataset without a single ground-truth box is valid, but its AP is undefined (no box
    to find): say so instead of scoring."""
    if dataset.num_boxes() == 0:
        raise CowdemoError(
            f"Dataset {dataset.name} has no ground-truth box in its {len(dataset.image_ids)} "
            "images: AP is undefined without boxes to find (draw or import some first)."
        )


def load_evaluation(store: RunStore, run_id: int) -> ModelEvaluation:
    """A stored evaluation, with its per-image detections."""
    run = store.get(run_id)
    details = store.details(run_id) or {}
    if "result" not in details:
        raise CowdemoError(f"Run {run_id} is not an evaluation with stored details.")
    return ModelEvaluation(
        model=run.model,
        dataset=run.dataset,
        result=EvalResult.from_dict(details["result"]),
        predictions=_predictions_from_json(details.get("predictions", {})),
        run_id=run.id,
        cached=True,
        duration_s=run.duration_s,
    )


def evaluate_model(
    model: str | Detector,
    dataset: CocoDataset,
    *,
    device: str = "auto",
    store: RunStore | None = None,
    use_cache: bool = True,
    batch_size: int = 1,
    progress: Progress | None = None,
    loaded: Detector | None = None,
) -> ModelEvaluation:
    """Predict with ``model`` on every image of ``dataset``, score with the COCO engine, and
    store the run (metrics, per-image results and detections). Classes are matched by name:
    a COCO model is scored on its ``cow`` boxes on a cows-only dataset, and its other classes
    on cows (dog, horse, ...) show up in ``result.confusions``. ``loaded`` is an already
    loaded detector for the registry model ``model`` (to share a cached one)."""
    store = store or RunStore()
    _check_has_boxes(dataset)
    missing = [p for p in map(dataset.image_path, dataset.image_ids) if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CowdemoError(
            f"{missing[0]} is missing{more}: {len(missing)} of {len(dataset.image_ids)} images "
            f"of dataset {dataset.name} have no file; put them back (or remove those images)."
        )
    if isinstance(model, Detector):
        detector, name, weights = model, model.name, ""
    else:
        spec = find_model(model)
        detector, name, weights = loaded, spec.name, file_sha256(spec.path)
    dataset_hash = dataset.content_hash()
    settings = {"engine": ENGINE, "iou_type": "bbox", "max_dets": 100}
    if use_cache and weights:
        hit = store.find("evaluation", name, weights, dataset_hash, settings)
        if hit is not None:
            return load_evaluation(store, hit.id)
    if detector is None:
        # the path or name as given: a model file is that file, never a registry entry that
        # happens to share its stem
        detector = load_detector(str(model), device=device)

    start = time.perf_counter()
    evaluator = DetectionEvaluator(dataset.categories)
    predictions: dict[int, Detections] = {}
    image_ids = dataset.image_ids
    skipped: list[str] = []
    for first in range(0, len(image_ids), batch_size):
        batch_ids = image_ids[first:first + batch_size]
        batch, kept = [], []
        for image_id in batch_ids:
            try:
                batch.append(dataset.read_image(image_id))
                kept.append(image_id)
            except CowdemoError as exc:
                skipped.append(str(exc))
        for image_id, dets in zip(kept, detector.predict_batch(batch) if batch else []):
            gt = dataset.ground_truth(image_id)
            evaluator.update(image_id, gt.xyxy, gt.class_names, dets, gt_area=gt.area,
                             gt_iscrowd=gt.iscrowd)
            predictions[image_id] = dets
        if progress:
            progress(min(first + batch_size, len(image_ids)), len(image_ids))
    if not predictions:
        raise CowdemoError(f"No image of dataset {dataset.name} could be read: {skipped[:1]}")
    result = evaluator.compute()
    duration = time.perf_counter() - start
    metrics = {**result.stats, **{f"AP50/{k}": v["AP50"] for k, v in result.per_class_ap.items()}}
    run_id = store.record(
        "evaluation",
        name,
        metrics,
        weights_sha256=weights,
        dataset=dataset.name,
        dataset_hash=dataset_hash,
        settings=settings,
        details={"result": result.to_dict(), "predictions": _predictions_to_json(predictions),
                 "skipped": skipped, "min_score": float(detector.min_score)},
        device=getattr(detector, "device", resolve_device("auto")),
        duration_s=duration,
    )
    return ModelEvaluation(name, dataset.name, result, predictions, run_id, False, duration)


def evaluate_results_file(
    results_path: str | Path,
    dataset: CocoDataset,
    *,
    name: str | None = None,
    store: RunStore | None = None,
) -> ModelEvaluation:
    """Score a COCO results file from any external model (category ids of the dataset)."""
    store = store or RunStore()
    path = Path(results_path)
    _check_has_boxes(dataset)
    results = read_json(path, "results file")
    start = time.perf_counter()
    names = {int(c["id"]): str(c["name"]) for c in dataset.categories}
    try:
        result = evaluate_coco(dataset.coco, results)
        unknown = {r.get("category_id") for r in results} - set(names)
        if unknown:
            raise CowdemoError(
                f"results name category_id {sorted(unknown, key=str)[0]}, which is not a "
                f"category of dataset {dataset.name} ({', '.join(map(str, sorted(names)))})."
            )
        predictions = {
            image_id: Detections.from_coco_results(results, image_id, names, dataset.classes)
            for image_id in dataset.image_ids
        }
    except CowdemoError as exc:
        raise CowdemoError(f"{path}: {exc}") from None
    duration = time.perf_counter() - start
    name = name or path.stem
    run_id = store.record(
        "evaluation", name, dict(result.stats), weights_sha256=file_sha256(path),
        dataset=dataset.name, dataset_hash=dataset.content_hash(),
        settings={"engine": ENGINE, "iou_type": "bbox", "max_dets": 100, "source": "results"},
        details={"result": result.to_dict(), "predictions": _predictions_to_json(predictions)},
        duration_s=duration,
    )  # fmt: skip
    return ModelEvaluation(name, dataset.name, result, predictions, run_id, False, duration)
