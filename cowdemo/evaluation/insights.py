"""The deeper answers for stored evaluations: why each model misses, whether B beats A, how far
its scores can be trusted, and which boxes of the dataset look wrong.

All take ``ModelEvaluation`` objects (``evaluate_model`` / ``load_evaluation``) and the dataset
they were scored on, and return plain data with ``to_dict()``::

    a, b = load_evaluation(store, 3), load_evaluation(store, 4)
    error_types(b, dataset).delta_ap            # {"Cls": ..., "Loc": ..., "Miss": ...}
    score_calibration(b, dataset).ece
    compare_evaluations(a, b, dataset, seed=0).sentences()   # stored with run b
    label_suspects([a, b], dataset)[:10]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cowdemo.datasets.coco import CocoDataset
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.analysis import (
    Calibration,
    TideErrors,
    calibration,
    results_from_predictions,
    tide_errors,
)
from cowdemo.evaluation.compare import Comparison, compare_models
from cowdemo.evaluation.runner import ModelEvaluation
from cowdemo.evaluation.suspects import Suspect, find_suspects
from cowdemo.runs import RunStore

DEFAULT_BOOTSTRAP = 1000


def model_results(evaluation: ModelEvaluation, dataset: CocoDataset) -> list[dict[str, Any]]:
    """The evaluation's detections as a COCO results list in the dataset's category ids (every
    box, in order; classes the dataset lacks get id -1)."""
    return results_from_predictions(evaluation.predictions, dataset.category_ids)


def _ground_truth(dataset: CocoDataset, evaluations: Sequence[ModelEvaluation]) -> dict:
    """The dataset's COCO dict restricted to the images every evaluation scored."""
    scored = set(dataset.image_ids)
    for e in evaluations:
        scored &= set(e.result.per_image) | set(e.predictions)
    coco = dataset.coco
    if scored == set(dataset.image_ids):
        return coco
    return {**coco, "images": [im for im in coco["images"] if int(im["id"]) in scored],
            "annotations": [a for a in coco["annotations"] if int(a["image_id"]) in scored]}


def error_types(evaluation: ModelEvaluation, dataset: CocoDataset) -> TideErrors:
    """TIDE error types of one evaluation (see ``cowdemo.evaluation.analysis``)."""
    return tide_errors(_ground_truth(dataset, [evaluation]), model_results(evaluation, dataset))


def score_calibration(
    evaluation: ModelEvaluation, dataset: CocoDataset, n_bins: int = 10
) -> Calibration:
    """Reliability bins and expected calibration error of one evaluation."""
    return calibration(_ground_truth(dataset, [evaluation]), model_results(evaluation, dataset),
                       n_bins=n_bins)  # fmt: skip


def compare_evaluations(
    a: ModelEvaluation,
    b: ModelEvaluation,
    dataset: CocoDataset,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
    store: RunStore | None = None,
) -> Comparison:
    """Paired bootstrap of B - A over the dataset's images. With ``store``, the comparison is
    kept in run B's details (``comparisons`` -> "vs run A|n_boot|seed|confidence") and given back
    from there next time."""
    if a.dataset != b.dataset:
        raise CowdemoError(f"Runs {a.run_id} and {b.run_id} scored different datasets "
                           f"({a.dataset}, {b.dataset}): compare models on the same images.")
    key = f"{a.run_id}|{n_boot}|{seed}|{confidence}"
    if store is not None:
        stored = ((store.details(b.run_id) or {}).get("comparisons") or {}).get(key)
        if stored:
            return Comparison.from_dict(stored)
    gt = _ground_truth(dataset, [a, b])
    comparison = compare_models(
        gt, model_results(a, dataset), model_results(b, dataset), names=(a.model, b.model),
        n_boot=n_boot, seed=seed, confidence=confidence,
    )  # fmt: skip
    if store is not None:
        store.update_details(b.run_id, {"comparisons": {key: comparison.to_dict()}})
    return comparison


def label_suspects(
    evaluations: Sequence[ModelEvaluation],
    dataset: CocoDataset,
    *,
    min_score: float = 0.7,
    iou: float = 0.5,
) -> list[Suspect]:
    """Boxes of the dataset that the models' detections disagree with (``find_suspects``)."""
    results = {e.model: model_results(e, dataset) for e in evaluations}
    return find_suspects(_ground_truth(dataset, evaluations), results, min_score=min_score,
                         iou=iou)  # fmt: skip
