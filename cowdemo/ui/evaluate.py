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
