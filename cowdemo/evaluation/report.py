"""Tables and exports of an evaluation comparison (the Evaluate page and the CLI use them)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from cowdemo.evaluation.detection import STAT_NAMES
from cowdemo.evaluation.runner import ModelEvaluation


def shown(value: float | None, digits: int = 4) -> str:
    """A metric for people: ``digits`` decimals, or "n/a" where there is no value (None, NaN,
    or COCO's -1 for a size range or class without ground truth)."""
    if value is None or value != value or value < 0:
        return "n/a"
    return f"{value:.{digits}f}"


def stats_table(evaluations: Mapping[str, ModelEvaluation]) -> pd.DataFrame:
    """One row per model: the 12 stats (NaN where undefined), confusions, run id."""
    rows = []
    for model, e in evaluations.items():
        row = {"model": model}
        row.update({s: (v if v >= 0 else float("nan")) for s, v in e.result.stats.items()})
        row["confusions"] = ", ".join(f"{k} {v}" for k, v in sorted(e.result.confusions.items()))
        row["run"] = e.run_id
        rows.append(row)
    return pd.DataFrame(rows, columns=["model", *STAT_NAMES, "confusions", "run"])


def per_class_table(evaluations: Mapping[str, ModelEvaluation]) -> pd.DataFrame:
    rows = [
        {"model": model, "class": name, **values}
        for model, e in evaluations.items()
        for name, values in e.result.per_class_ap.items()
    ]
    return pd.DataFrame(rows)


def image_errors(evaluations: Mapping[str, ModelEvaluation]) -> pd.DataFrame:
    """One row per image: TP / FP / FN per model, and how much the models differ."""
    models = list(evaluations)
    image_ids = sorted({i for e in evaluations.values() for i in e.result.per_image})
    rows = []
    for image_id in image_ids:
        row: dict = {"image_id": image_id}
        for model in models:
            entry = evaluations[model].result.per_image.get(image_id, {"tp": [], "fp": [],
                                                                        "fn": []})
            row[f"{model} TP"] = len(entry["tp"])
            row[f"{model} FP"] = len(entry["fp"])
            row[f"{model} FN"] = len(entry["fn"])
            row[f"{model} errors"] = len(entry["fp"]) + len(entry["fn"])
        errors = [row[f"{m} errors"] for m in models]
        row["difference"] = max(errors) - min(errors) if errors else 0
        rows.append(row)
    return pd.DataFrame(rows)
