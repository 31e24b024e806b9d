"""After a fine-tune: score the new model and its base on the same held-out images with the
project's evaluation runner, and store the training run, in the run history (`cowdemo.runs`)."""

from __future__ import annotations

from typing import Any

from cowdemo.datasets.coco import CocoDataset
from cowdemo.errors import CowdemoError

SHOWN_STATS = ("AP", "AP50", "AP75", "AR100")


def compare_and_record(result, config, heldout: CocoDataset, dataset_hash: str,
                       dataset_label: str, device: str, *, compare: bool = True,
                       record: bool = True) -> None:
    """Fills ``result.comparison`` ({"base_model", "images", "base": stats, "finetuned": stats})
    and ``result.run_ids``. A failing comparison is reported in the comparison, never fails
    the finished fine-tune."""
    if not (compare or record):
        return
    from cowdemo.runs import RunStore, file_sha256

    store = RunStore()
    if compare:
        result.comparison = _compare(result, config, heldout, device, store)
        result.run_ids.update(result.comparison.pop("run_ids", {}))
    if record:
        result.run_ids["training"] = store.record(
            "training", result.name, dict(result.metrics),
            weights_sha256=file_sha256(result.checkpoint), dataset=dataset_label,
            dataset_hash=dataset_hash, settings=config.to_dict(),
            details={"history": result.history, "report": result.report,
                     "comparison": result.comparison, "base_model": config.base,
                     "resumed_from": result.resumed_from},
            device=device, duration_s=result.duration_s,
        )  # fmt: skip


def _compare(result, config, heldout: CocoDataset, device: str, store) -> dict[str, Any]:
    from cowdemo.evaluation.runner import evaluate_model

    comparison: dict[str, Any] = {"base_model": config.base, "finetuned_model": result.name,
                                  "dataset": heldout.name, "images": len(heldout.image_ids)}
    run_ids = {}
    for key, model in (("finetuned", str(result.checkpoint)), ("base", config.base)):
        try:
            evaluation = evaluate_model(model, heldout, device=device, store=store)
        except CowdemoError as exc:
            comparison[key] = {"error": str(exc)}
            continue
        comparison[key] = {k: float(evaluation.result.stats[k]) for k in SHOWN_STATS}
        run_ids[f"evaluation_{key}"] = evaluation.run_id
    comparison["run_ids"] = run_ids
    return comparison
