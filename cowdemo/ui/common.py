"""Streamlit helpers every page shares: cached model loading and prediction, settings from the
shared sidebar, and one way to show user errors. Pages only lay out widgets.

Importing this module is cheap on purpose: torch, torchvision and the model registry (seconds
on a fresh server) are imported when a function first needs them, so a page can draw its title
and text before it calls :func:`sidebar`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from cowdemo.errors import CowdemoError

if TYPE_CHECKING:
    import numpy as np

    from cowdemo.detections import Detections
    from cowdemo.models.base import Detector
    from cowdemo.models.registry import ModelSpec

NO_MODEL = "(none)"
#: The app's pages in loop order: (file, title, icon). app.py registers them with st.navigation.
PAGES: tuple[tuple[str, str, str], ...] = (
    ("views/home.py", "Home", "🏠"),
    ("views/predict.py", "Predict", "🔍"),
    ("views/annotate.py", "Annotate", "✏️"),
    ("views/evaluate.py", "Evaluate", "📊"),
    ("views/finetune.py", "Fine-tune", "🎯"),
    ("views/track.py", "Track", "🎥"),
    ("views/runs.py", "Runs", "📈"),
)


@dataclass(frozen=True)
class Settings:
    """What the shared sidebar chose; every page reads it with :func:`settings`."""

    model_a: str | None
    model_b: str | None
    score_threshold: float
    classes: tuple[str, ...] | None  # None = all classes
    device: str

    @property
    def models(self) -> list[str]:
        """Model A then model B, each once (B equal to A adds nothing)."""
        return list(dict.fromkeys(m for m in (self.model_a, self.model_b) if m))


@st.cache_data(ttl=15, show_spinner=False)
def _registry(folder: str) -> list[ModelSpec]:
    from cowdemo.models.registry import list_models

    return list_models(Path(folder))


def checkpoints_dir() -> Path:
    from cowdemo.models.weights import checkpoints_dir as folder

    return folder()


def registry() -> list[ModelSpec]:
    """The model registry, re-read at most every 15 s (new fine-tunes appear by themselves)."""
    return _registry(str(checkpoints_dir()))


def model_identity(name: str) -> str:
    """Name + weights file + its modification time: a re-trained checkpoint is a new model."""
    folder = checkpoints_dir()
    spec = next((s for s in registry() if s.name == name), None)
    path = spec.path if spec and spec.path else None
    stamp = path.stat().st_mtime_ns if path and path.exists() else 0
    return f"{name}|{folder}|{path}|{stamp}"


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def _detector(name: str, device: str, identity: str) -> Detector:
    from cowdemo.models.registry import load_detector

    return load_detector(name, device=device, folder=checkpoints_dir())


def detector(name: str, device: str) -> Detector:
    """One loaded model per (model identity, device) per server process."""
    return _detector(name, device, model_identity(name))


def loaded_models(models: list[str], device: str) -> list[str]:
    """The models of ``models`` that load on ``device``; each one that does not gets its one
    error line (and no further output: no boxes, tables or downloads of a model that is not
    there)."""
    ok = []
    for model in models:
        try:
            detector(model, device)
        except CowdemoError as exc:
            show_error(exc, model)
            continue
        ok.append(model)
    return ok


@st.cache_data(show_spinner=False, max_entries=512)
def _predict(image_hash: str, identity: str, device: str, _image: np.ndarray) -> Detections:
    return _detector(identity.split("|", 1)[0], device, identity).predict(_image)


def predict(image_hash: str, model: str, device: str, image: np.ndarray) -> Detections:
    """Raw detections (the model's own score floor, all classes) cached by image content hash and
    model identity, so moving the threshold or class filter never re-runs the model."""
    return _predict(image_hash, model_identity(model), device, image)


def default_models(specs: list[ModelSpec]) -> tuple[str | None, str | None]:
    """Model A: the notebook's COCO model if ready, else the first ready pretrained one (not a
    fine-tune: a new fine-tune must not push the pretrained model out of A), else the first
    ready one. Model B: the newest fine-tuned checkpoint, so pretrained vs fine-tuned is what a
    user sees first."""
    from cowdemo.models.registry import DEFAULT_MODEL

    ready = [s for s in specs if s.status == "ready"]
    usable = [s for s in specs if s.available]
    names = [s.name for s in ready]
    pretrained = [s.name for s in ready if s.kind != "checkpoint"]
    a = DEFAULT_MODEL if DEFAULT_MODEL in names else next(iter(pretrained + names), None)
    if a is None and usable:
        a = usable[0].name
    tuned = [s for s in ready if s.kind == "checkpoint" and s.name != a]
    b = tuned[-1].name if tuned else None
    return a, b


def settings() -> Settings:
    """The current sidebar settings (defaults where the sidebar has not run yet)."""
    state = st.session_state
    specs = registry()
    a, b = default_models(specs)
    model_b = state.get("model_b", b or NO_MODEL)
    classes = None if state.get("all_classes", False) else tuple(state.get("classes", ["cow"]))
    return Settings(
        model_a=state.get("model_a", a),
        model_b=None if model_b == NO_MODEL else model_b,
        score_threshold=float(state.get("score_threshold", 0.5)),
        classes=classes,
        device=state.get("device", "auto"),
    )


def resolved_device(choice: str) -> str:
    from cowdemo.devices import resolve_device

    try:
        return resolve_device(choice)
    except CowdemoError:
        return "cpu"


def _remember(key: str) -> None:
    st.session_state[f"_keep_{key}"] = st.session_state[key]


def _persist(key: str, default, allowed=None) -> dict:
    """Keep a sidebar widget's value across pages: Streamlit forgets the state of widgets that
    a page switch unmounts, so the value also lives under a plain key and is restored here."""
    value = st.session_state.get(f"_keep_{key}", default)
    if allowed is not None and value not in allowed:
        value = default
    st.session_state[key] = value
    return {"key": key, "on_change": _remember, "args": (key,)}


def sidebar() -> Settings:
    """The shared sidebar: model A/B, score threshold, class filter, device. Every page calls it
    first; the values persist across pages."""
    specs = registry()
    available = [s.name for s in specs if s.available]
    a, b = default_models(specs)
    labels = {s.name: s.name + ("" if s.status == "ready" else f" ({s.status})") for s in specs}
    with st.sidebar:
        st.subheader("Models")
        if not available:
            st.warning("No model is ready. The home page says how to get one.")
        else:
            st.selectbox("Model A", available, format_func=labels.get,
                         help="The model every page shows first (left).",
                         **_persist("model_a", a, available))
            options_b = [NO_MODEL, *available]
            st.selectbox("Model B", options_b, format_func=lambda n: labels.get(n, n),
                         help="Shown side by side with model A: pretrained vs fine-tuned.",
                         **_persist("model_b", b or NO_MODEL, options_b))
        st.subheader("Filters")
        st.slider("Score threshold", 0.0, 1.0, step=0.05,
                  help="Boxes scoring below this are hidden everywhere.",
                  **_persist("score_threshold", 0.5))
        all_classes = st.toggle("All classes", help="Off: only the classes below (default cow).",
                                **_persist("all_classes", False))
        names = sorted({c for s in specs for c in s.classes} | {"cow"})
        kept = [c for c in st.session_state.get("_keep_classes", ["cow"]) if c in names]
        st.session_state["_keep_classes"] = kept
        st.multiselect("Classes", names, disabled=all_classes, **_persist("classes", kept))
        st.subheader("Device")
        import torch

        choices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        st.selectbox("Run on", choices, help="auto uses the GPU when there is one.",
                     **_persist("device", "auto", choices))
        from cowdemo.devices import describe_device

        st.caption(f"In use: {describe_device(resolved_device(st.session_state['device']))}")
    return settings()


def show_error(exc: CowdemoError, where: str | None = None) -> None:
    st.error(f"{where}: {exc}" if where else str(exc), icon="⚠️")
