"""Streamlit glue of the Home page: the loop, what the ready models do, the device and the data,
in the user's words. Importing it is cheap; torch and the registry load inside the functions, so
the page draws its text before the slow part of a fresh server's first run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cowdemo.errors import CowdemoError

if TYPE_CHECKING:
    from cowdemo.datasets.store import DatasetSummary
    from cowdemo.models.registry import ModelSpec
    from cowdemo.ui.common import Settings

#: The loop, one numbered line per step (Markdown needs each item on its own line).
LOOP = """Show, measure and improve an object detector and tracker, on cows. The loop:

1. **Predict**: upload photos (or use the samples) and see a detector's boxes, classes and
   scores, model A and model B side by side.
2. **Annotate** ground truth in the browser, or start from a model's boxes and correct them.
3. **Evaluate** with COCO mAP: charts, and a gallery of each model's hits and misses.
4. **Fine-tune** a COCO model into a cows-only detector.
5. **Track** cows through a video, ID switches counted and shown.
6. **Compare** pretrained and fine-tuned models, and catch regressions in the run history.
"""

STATUS_ICONS = {"ready": "✅ ready", "weights missing": "⬇️ weights missing",
                "unavailable": "❌ unavailable"}


def model_blurb(spec: ModelSpec) -> str:
    """What a model does, in one sentence a new user understands."""
    if spec.kind == "onnx-yolox":
        return ("a YOLOX detector (ONNX, run by onnxruntime) for COCO's 80 classes, cow among "
                "them: it boxes cows in real photos, and often misses the synthetic cartoon cows")
    if spec.kind == "torchvision-coco":
        return ("a Faster R-CNN pretrained on COCO's 80 classes; cow is one of them, yet COCO "
                "models often call a cow *dog* (the class filter says what it hides)")
    if spec.kind == "detectron2":
        return ("the original notebook's detectron2 Faster R-CNN (COCO's 80 classes); on the "
                "notebook's photo it called the cows *dog*")
    classes = ", ".join(spec.classes) or "?"
    base = spec.base_model or spec.architecture or "a COCO model"
    return f"fine-tuned by cowdemo from {base} to find {classes}"


def ready_text(cfg: Settings, specs: list[ModelSpec]) -> str:
    """Markdown: which models the pages will use and what each does."""
    by_name = {s.name: s for s in specs}
    lines = []
    for label, name in (("Model A", cfg.model_a), ("Model B", cfg.model_b)):
        spec = by_name.get(name or "")
        if spec is not None:
            note = "" if spec.status == "ready" else f" ({spec.status})"
            lines.append(f"- **{label}: {spec.name}**{note}, {model_blurb(spec)}.")
    if cfg.model_a and not cfg.model_b:
        lines.append("- **Model B**: none yet; a model you fine-tune appears beside model A.")
    return "**What the pages use** (change it in the sidebar):\n" + "\n".join(lines)


def device_metric(choice: str) -> tuple[str, str]:
    """("CPU" or "GPU", the details): a short metric value that is never cut off."""
    from cowdemo.devices import describe_device
    from cowdemo.ui.common import resolved_device

    device = resolved_device(choice)
    return ("GPU" if device.startswith("cuda") else "CPU"), describe_device(device)


def models_table(specs: list[ModelSpec]) -> list[dict[str, str]]:
    return [{"model": s.name, "status": STATUS_ICONS.get(s.status, s.status),
             "what": s.description} for s in specs]


def how_to_get(specs: list[ModelSpec]) -> list[str]:
    """One Markdown line per model that is not ready: what to do to get it."""
    return [f"- **{s.name}** ({s.status}): {s.reason or 'see checkpoints/README.md'}"
            for s in specs if s.status != "ready"]


def data_status() -> tuple[list[DatasetSummary], int, CowdemoError | None]:
    """The app's datasets and the number of stored runs (and the error, if one is unreadable)."""
    from cowdemo.datasets.store import DatasetStore
    from cowdemo.runs import RunStore

    try:
        return DatasetStore().list(), RunStore().count(), None
    except CowdemoError as exc:
        return [], 0, exc
