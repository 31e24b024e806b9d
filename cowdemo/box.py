"""`DetectorBox`: the original notebook's façade, one object to predict (and later train and
evaluate) with::

    box = DetectorBox(model="frcnn-r50-fpn-coco")
    dets = box.predict("cow.jpg")                       # Detections
    dets, drawn = box.predict(image, visualize=True)    # plus the annotated RGB image
    dets.notebook_view()["pred_classes"]                # [16] -- the COCO model says "dog"
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cowdemo import images
from cowdemo.detections import Detections
from cowdemo.draw import draw_detections
from cowdemo.models.base import Detector
from cowdemo.models.registry import DEFAULT_MODEL, load_detector

ImageLike = str | Path | bytes | np.ndarray


def as_rgb(image: ImageLike) -> np.ndarray:
    """An RGB uint8 array from a path, file bytes, or an array (returned as is)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("arrays must be RGB uint8 of shape (h, w, 3)")
        return image
    return images.load(image)


class DetectorBox:
    """A detector with its prediction settings.

    Args:
        model: a registry name (``cowdemo models`` lists them), a path to an ``.onnx`` or
            ``.pt`` file, or an already loaded :class:`Detector`.
        device: "auto" (GPU when present), "cpu" or "cuda[:N]".
        score_threshold: boxes scoring lower are dropped from results.
        classes: keep only these class names (None keeps all).
        weights: an explicit weights file for a built-in model.
        folder: the checkpoints folder to find models in (default ``checkpoints/``).
    """

    def __init__(
        self,
        model: str | Detector = DEFAULT_MODEL,
        device: str = "auto",
        score_threshold: float = 0.5,
        classes: Iterable[str] | None = None,
        weights: str | None = None,
        folder: str | Path | None = None,
    ):
        if isinstance(model, Detector):
            self.detector = model
        else:
            self.detector = load_detector(model, device, weights, Path(folder) if folder else None)
        self.score_threshold = score_threshold
        self.classes = None if classes is None else list(classes)

    @property
    def name(self) -> str:
        return self.detector.name

    def predict(
        self, img: ImageLike, visualize: bool = False
    ) -> Detections | tuple[Detections, np.ndarray]:
        """Detect in one image; with ``visualize=True`` also return the image with boxes drawn."""
        rgb = as_rgb(img)
        dets = self.detector.predict(rgb).filter(self.score_threshold, self.classes)
        if visualize:
            return dets, draw_detections(rgb, dets)
        return dets

    def predict_many(self, imgs: Iterable[ImageLike], batch_size: int = 1) -> list[Detections]:
        """Detect in several images, ``batch_size`` at a time (batches help on a GPU)."""
        out: list[Detections] = []
        batch: list[np.ndarray] = []
        for img in imgs:
            batch.append(as_rgb(img))
            if len(batch) == batch_size:
                out += self._run(batch)
                batch = []
        if batch:
            out += self._run(batch)
        return out

    def evaluate(self, dataset, store=None, progress=None):
        """COCO mAP of this model on ``dataset`` (a CocoDataset, a folder or a store name), as the
        notebook's ``evaluate``; the run is stored in the run history. Returns the EvalResult
        (``.stats["AP"]``, ``.per_class_ap``, ``.pr_curves``, ``.per_image``)."""
        from cowdemo.datasets import CocoDataset, open_dataset
        from cowdemo.evaluation.runner import evaluate_model

        if not isinstance(dataset, CocoDataset):
            dataset = open_dataset(dataset)
        return evaluate_model(self.detector, dataset, store=store, progress=progress).result

    def train(self, dataset, iterations: int = 1000, classes=("cow",), out=None, **settings):
        """Fine-tune this model on ``dataset`` (a CocoDataset, a store name, a folder, a COCO
        instances JSON, a Deep Lake path or hub:// URL) for ``iterations`` steps, as the
        notebook's ``train``; afterwards this box predicts with the fine-tuned model. Other
        settings are :class:`cowdemo.training.TrainConfig` fields (``batch_size``,
        ``image_size``, ``lr``, ...); ``out`` names the checkpoint (``checkpoints/NAME``).
        Returns the :class:`cowdemo.training.TrainResult` (``.metrics["AP50"]``,
        ``.checkpoint``, ``.history``)."""
        from cowdemo.training import TrainConfig
        from cowdemo.training import train as run_training

        options = {k: settings.pop(k) for k in ("val_dataset", "fresh", "compare", "record",
                                                "progress", "images") if k in settings}
        device = settings.pop("device", self.detector.device)
        config = TrainConfig.for_base(self.detector.name, classes=tuple(classes),
                                      iterations=iterations, device=device, **settings)
        result = run_training(config, dataset, out=out, **options)
        if result.completed:
            self.detector = load_detector(str(result.checkpoint), device=self.detector.device)
        return result

    def _run(self, batch: list[np.ndarray]) -> list[Detections]:
        return [
            d.filter(self.score_threshold, self.classes) for d in self.detector.predict_batch(batch)
        ]
