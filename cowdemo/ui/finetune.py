"""Helpers for the Fine-tune page: what can be fine-tuned, on what, and how a job is shown."""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

from cowdemo.errors import CowdemoError
from cowdemo.models.registry import ModelSpec
from cowdemo.training.surgery import TRAINABLE_KINDS

SYNTHETIC_CHOICE = "synthetic cows (generated, 200 images)"
PATH_CHOICE = "a folder, COCO instances JSON, Deep Lake path or hub:// URL…"
STATE_ICONS = {"starting": "⏳", "preparing": "🔎", "training": "🏃", "evaluating": "📏",
               "saving": "💾", "completed": "✅", "stopped": "⏸️", "failed": "❌"}


def trainable(specs: list[ModelSpec]) -> list[str]:
    """Registry models a fine-tune can start from: torchvision Faster R-CNNs, YOLOX (COCO
    ``.pth`` or any YOLOX ONNX export in checkpoints/) and earlier fine-tunes, whose weights
    are here or can be downloaded (none that would fail for want of a file)."""
    return [s.name for s in specs if s.kind in TRAINABLE_KINDS and s.available]


def base_tag(spec: ModelSpec) -> str:
    """How a base is shown in the picker: its name, its family and whether it is ready."""
    family = "YOLOX" if is_yolox_spec(spec) else "Faster R-CNN"
    state = "ready" if spec.status == "ready" else "weights download on first use"
    return f"{spec.name} · {family} · {state}"


def is_yolox_spec(spec: ModelSpec) -> bool:
    return spec.kind in ("yolox-coco", "onnx-yolox") or spec.architecture.startswith("yolox-")


def no_base_message(folder) -> str:
    return (f"No model that can be fine-tuned is ready. Put a YOLOX ONNX export (for example "
            f"yolox_nano.onnx from the YOLOX releases) or Megvii's yolox_nano.pth, or "
            f"torchvision's fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth, in {folder}, "
            "then reload this page.")


#: What the form starts with for each family: (iterations, image size, batch size) on a CPU
#: and on a GPU. YOLOX on a CPU: 300 steps of 8 images at 320 px, a first fine-tune in minutes.
FORM_DEFAULTS = {"YOLOX": {"cpu": (300, 320, 8), "gpu": (1000, 416, 16)},
                 "Faster R-CNN": {"cpu": (300, 512, 2), "gpu": (1000, 800, 4)}}


def store_datasets() -> list[Any]:
    """The app's datasets (the sample one made on first use); [] without a store."""
    try:
        from cowdemo.datasets.store import DatasetStore
    except ImportError:
        return []
    store = DatasetStore()
    with contextlib.suppress(CowdemoError, OSError):  # a read-only data folder still lists
        store.ensure_sample()
    return store.list()


def default_name(dataset: str, base: str, classes: list[str], now: float | None = None) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{'-'.join(classes) or 'model'}-{dataset}")[:40]
    short = base.removesuffix("-coco")
    return f"{stem.strip('-')}-{short}-{time.strftime('%m%d-%H%M', time.localtime(now))}"


NAME_KEY = "ft-name"


def suggest_name(state: Any, dataset: str, base: str, classes: list[str],
                 now: float | None = None) -> None:
    """Put the suggested model name in ``state[NAME_KEY]`` (the name field's session state)
    when there is none, or when dataset, base or classes changed and the field still holds the
    last suggestion. A name the user typed is kept, and the suggestion (which holds the
    minute it was made) does not change while they type: a field whose default changed each
    minute was a new widget each minute, and the name typed into it was lost."""
    made_for = (dataset, base, tuple(classes))
    if NAME_KEY in state and state.get("_ft_name_for") == made_for:
        return
    if NAME_KEY not in state or state[NAME_KEY] == state.get("_ft_name_suggested"):
        state[NAME_KEY] = state["_ft_name_suggested"] = default_name(dataset, base, classes, now)
    state["_ft_name_for"] = made_for


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def progress_text(status: dict[str, Any]) -> tuple[float, str]:
    """The progress bar's fraction and text: the import while a dataset is being imported
    (Deep Lake downloads), then the iterations."""
    imported = status.get("imported") or [0, 0]
    if status.get("state") == "preparing" and 0 < imported[0] < imported[1]:
        return imported[0] / imported[1], str(status.get("message", "importing the dataset"))
    done, total = int(status.get("iteration") or 0), int(status.get("iterations") or 1)
    text = f"iteration {done} of {total}"
    if status.get("sec_per_iter") and status.get("state") in ("training", "evaluating",
                                                              "saving"):
        text += (f" · {status['sec_per_iter']:.2f} s/iteration · ETA "
                 f"{minutes(status.get('eta_s'))}")
    return min(1.0, done / max(total, 1)), text


def job_label(status: dict[str, Any]) -> str:
    icon = STATE_ICONS.get(status.get("state", ""), "•")
    when = time.strftime("%m-%d %H:%M", time.localtime(status.get("created_at", 0)))
    return f"{icon} {status.get('model_name', '?')} · {status.get('state', '?')} · {when}"
