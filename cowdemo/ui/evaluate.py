"""Cached helpers for the Evaluate page."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from cowdemo.datasets.coco import CocoDataset
from cowdemo.evaluation.runner import ModelEvaluation, evaluate_model, load_evaluation
from cowdemo.runs import RunStore


def dataset_store():
    from cowdemo.datasets.store import DatasetStore

    store = DatasetStore()
    store.ensure_sample()
    return store


def run_evaluation(
    model: str, dataset: CocoDataset, device: str, progress: Callable[[int, int], None]
) -> tuple[int, bool]:
    """Evaluate (or find the stored evaluation of) ``model`` on ``dataset``; returns the run id
    and whether it was a stored result. The detector comes from the shared model cache."""
    from cowdemo.ui.common import detector

    evaluation = evaluate_model(model, dataset, device=device, store=RunStore(),
                                progress=progress, loaded=detector(model, device),
                                batch_size=4 if device.startswith("cuda") else 1)
    return evaluation.run_id, evaluation.cached


@st.cache_data(show_spinner=False, max_entries=32)
def load_run(run_id: int) -> ModelEvaluation:
    return load_evaluation(RunStore(), run_id)


def _evaluation_and_dataset(run_id: int, dataset_name: str):
    from cowdemo.datasets import open_dataset

    return load_run(run_id), open_dataset(dataset_name, dataset_store())


@st.cache_data(show_spinner=False, max_entries=32)
def insights(run_id: int, dataset_name: str) -> tuple[dict, dict]:
    """TIDE error types and calibration of one stored evaluation, as plain dicts."""
    from cowdemo.evaluation.insights import error_types, score_calibration

    evaluation, dataset = _evaluation_and_dataset(run_id, dataset_name)
    return (error_types(evaluation, dataset).to_dict(),
            score_calibration(evaluation, dataset).to_dict())  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=32)
def comparison(run_a: int, run_b: int, dataset_name: str, seed: int, n_boot: int) -> dict:
    """B against A (paired bootstrap), stored with run B."""
    from cowdemo.evaluation.insights import compare_evaluations

    a, dataset = _evaluation_and_dataset(run_a, dataset_name)
    return compare_evaluations(a, load_run(run_b), dataset, n_boot=n_boot, seed=seed,
                               store=RunStore()).to_dict()  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=32)
def suspects(run_ids: tuple[int, ...], dataset_name: str, min_score: float) -> list[dict]:
    """Label-error suspects of the dataset given these evaluations, as plain dicts."""
    from cowdemo.evaluation.insights import label_suspects

    _, dataset = _evaluation_and_dataset(run_ids[0], dataset_name)
    return [s.to_dict() for s in label_suspects([load_run(r) for r in run_ids], dataset,
                                                min_score=min_score)]  # fmt: skip


def open_in_annotate(dataset_name: str, image_id: int) -> None:
    """Button callback: the Annotate page opens on this image of this dataset."""
    st.session_state["_annotate_dataset"] = dataset_name
    st.session_state.setdefault("_annotate_pos", {})[dataset_name] = int(image_id)
    st.session_state["_evaluate_open_annotate"] = True


def thumbnail(image, box, color=(255, 0, 255), size: int = 220):
    """The region around a COCO box (x, y, w, h) with the box drawn, about ``size`` px wide."""
    import cv2
    import numpy as np

    x, y, w, h = (float(v) for v in box)
    height, width = image.shape[:2]
    pad = max(w, h) * 0.6 + 10
    half = max(w, h) / 2 + pad  # a square around the box's centre, inside the image
    cx, cy = x + w / 2, y + h / 2
    x1, y1 = int(max(0, cx - half)), int(max(0, cy - half))
    x2, y2 = int(min(width, cx + half)), int(min(height, cy + half))
    crop = np.ascontiguousarray(image[y1:y2, x1:x2])
    scale = size / max(1, crop.shape[1])
    height = min(size, max(1, round(crop.shape[0] * scale)))  # never taller than wide
    crop = cv2.resize(crop, (size, height),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    sy = height / max(1, y2 - y1)
    # the box drawn after scaling, so its line is as thin for a tiny box as for a big one
    cv2.rectangle(crop, (round((x - x1) * scale), round((y - y1) * sy)),
                  (round((x + w - x1) * scale), round((y + h - y1) * sy)), color, 2, cv2.LINE_AA)
    return crop
