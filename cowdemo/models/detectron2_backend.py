"""detectron2 backend: the original notebook's ``COCO-Detection/faster_rcnn_R_50_FPN_3x``.

Used when ``import detectron2`` works (detectron2 has no wheels on the package registries; users
build it from source as its install guide says; the tests use detectron2 0.6's Python sources,
installed by ``scripts/install-detectron2.sh``). Model-zoo ``.pkl`` files are read with a
restricted unpickler that admits numpy arrays and plain containers only, never code.
"""

from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from cowdemo.coco import COCO_CLASSES
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.models.base import Detector
from cowdemo.models.weights import resolve_weights

CONFIG = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"
WEIGHTS_URL = (
    "https://dl.fbaipublicfiles.com/detectron2/COCO-Detection/faster_rcnn_R_50_FPN_3x/"
    "137849458/model_final_280758.pkl"
)
INSTALL_HINT = (
    "detectron2 is not installed (no wheels on PyPI for this Python): build it from source with "
    "`pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'`"
)


def detectron2_available() -> tuple[bool, str]:
    if importlib.util.find_spec("detectron2") is None:
        return False, INSTALL_HINT
    try:
        import detectron2  # noqa: F401
    except Exception as exc:  # a broken build fails here with any error type
        return False, f"detectron2 is installed but fails to import ({exc})"
    return True, ""


class _ArraysOnly(pickle.Unpickler):
    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise CowdemoError(f"refusing to unpickle {module}.{name}: not a weights file")
        return super().find_class(module, name)


def read_model_zoo_pkl(path: Path) -> dict:
    """The state of a detectron2 model-zoo ``.pkl`` without running pickled code."""
    try:
        with open(path, "rb") as handle:
            data = _ArraysOnly(handle, encoding="latin1").load()
    except CowdemoError as exc:
        raise CowdemoError(f"{path}: {exc}") from None
    except Exception as exc:
        raise CowdemoError(f"{path} is not a readable detectron2 weights file ({exc}).") from None
    return data.get("model", data) if isinstance(data, dict) else {}


class Detectron2Detector(Detector):
    """detectron2's GeneralizedRCNN, run like its DefaultPredictor (BGR input, resize to 800)."""

    def __init__(self, name: str, device: str = "cpu", weights: str | Path | None = None):
        ok, reason = detectron2_available()
        if not ok:
            raise CowdemoError(reason)
        import torch
        from detectron2 import model_zoo
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.config import get_cfg
        from detectron2.modeling import build_model

        cfg = get_cfg()
        cfg.merge_from_file(model_zoo.get_config_file(CONFIG))
        cfg.MODEL.DEVICE = device
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = self.min_score
        self.model = build_model(cfg).eval()
        path = resolve_weights(name, WEIGHTS_URL, explicit=weights)
        if path.suffix == ".pkl":
            state = {k: torch.as_tensor(np.asarray(v)) for k, v in read_model_zoo_pkl(path).items()}
            checkpoint = {"model": state, "matching_heuristics": True}
            DetectionCheckpointer(self.model)._load_model(checkpoint)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            DetectionCheckpointer(self.model)._load_model({"model": state.get("model", state)})
        self.name, self.device, self.classes = name, device, COCO_CLASSES
        self._min_size, self._max_size = cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        import torch
        from detectron2.data import transforms as T

        resize = T.ResizeShortestEdge([self._min_size, self._min_size], self._max_size)
        inputs = []
        for image in images:
            bgr = np.ascontiguousarray(image[:, :, ::-1])
            resized = resize.get_transform(bgr).apply_image(bgr)
            tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
            inputs.append({"image": tensor, "height": image.shape[0], "width": image.shape[1]})
        with torch.inference_mode():
            outputs = self.model(inputs)
        results = []
        for out in outputs:
            inst = out["instances"].to("cpu")
            results.append(
                Detections.from_class_ids(
                    inst.pred_boxes.tensor.numpy(),
                    inst.scores.numpy(),
                    inst.pred_classes.numpy(),
                    self.classes,
                )
            )
        return results
