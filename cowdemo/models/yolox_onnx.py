"""YOLOX detectors exported to ONNX, run with onnxruntime.

The export this backend reads (Megvii's ``tools/export_onnx.py`` without ``--decode_in_inference``,
as in ``../shared/models/yolox-nano/``) takes one input ``images`` of shape (1, 3, S, S): BGR,
float32, 0..255, no mean/std, the picture letterboxed into the top-left corner and the rest
filled with 114. It returns the raw head, (1, N, 85): per anchor point (cx, cy, w, h,
objectness, 80 class scores) for strides 8, 16 and 32, which :func:`decode_outputs` turns into
input pixels and :func:`postprocess` into boxes of the original image::

    detector = YoloxOnnxDetector("checkpoints/yolox_nano.onnx")
    cows = detector.predict(image_rgb).filter(0.5, classes=["cow"])

The steps are plain functions so each one can be checked with hand-made numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from cowdemo.coco import COCO_CLASSES
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.models.base import Detector

#: The grey YOLOX pads letterboxed images with.
PAD_VALUE = 114.0
#: The strides of YOLOX's three head levels; an S x S input gives (S/8)^2 + (S/16)^2 + (S/32)^2
#: anchor points.
STRIDES: tuple[int, ...] = (8, 16, 32)
#: Boxes kept per image after NMS, as in COCO evaluation.
MAX_DETECTIONS = 100
#: The class-names file looked for beside the model.
CLASSES_FILE = "coco_classes.txt"


# --- preprocessing -------------------------------------------------------------------------
def letterbox(image_rgb: np.ndarray, size: int | tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize an RGB image into the top-left corner of a ``size`` canvas padded with 114.

    Args:
        image_rgb: (h, w, 3) uint8 RGB image.
        size: the model's input side S, or (height, width).

    Returns:
        ``(chw, ratio)``: a (3, H, W) float32 BGR array with values 0..255, ready to be stacked
        into the model's input, and the scale ``ratio = min(H / h, W / w)`` applied to the image,
        so a box in input pixels divided by ``ratio`` is a box in the original image.
    """
    height, width = (size, size) if isinstance(size, int) else size
    h, w = image_rgb.shape[:2]
    ratio = min(height / h, width / w)
    new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
    # Megvii's preprocessing uses bilinear resizing; keep it so scores match the reference.
    resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.float32)
    canvas[:new_h, :new_w] = resized[:, :, ::-1]  # RGB -> BGR, the channel order of training
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)), ratio


# --- decoding ------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _grids(height: int, width: int, strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Anchor-point grid (x, y) and stride of every output row, cached per input size."""
    grids, expanded = [], []
    for stride in strides:
        gh, gw = height // stride, width // stride
        ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")  # row-major, x fastest
        grids.append(np.stack((xs, ys), axis=2).reshape(-1, 2))
        expanded.append(np.full((gh * gw, 1), stride))
    grid = np.concatenate(grids).astype(np.float32)
    stride = np.concatenate(expanded).astype(np.float32)
    grid.flags.writeable = False
    stride.flags.writeable = False
    return grid, stride


def anchor_count(input_size: int | tuple[int, int], strides: Sequence[int] = STRIDES) -> int:
    """How many rows the raw head has for an input of ``input_size`` (3549 for 416)."""
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    return sum((height // s) * (width // s) for s in strides)


def decode_outputs(
    raw: np.ndarray, input_size: int | tuple[int, int], strides: Sequence[int] = STRIDES
) -> np.ndarray:
    """Turn the raw YOLOX head (N, 5 + classes) into boxes in input pixels.

    ``cx = (out_x + grid_x) * stride`` and ``w = exp(out_w) * stride`` (same for y and h);
    objectness and class scores pass through unchanged (the export already applies sigmoid).
    Returns a new (N, 5 + classes) float32 array whose first four columns are (cx, cy, w, h).
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    grid, stride = _grids(int(height), int(width), tuple(int(s) for s in strides))
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 2 or len(raw) != len(grid):
        raise ValueError(
            f"raw YOLOX output has shape {raw.shape}; expected ({len(grid)}, 5 + classes) "
            f"for a {height}x{width} input"
        )
    out = raw.copy()
    out[:, :2] = (raw[:, :2] + grid) * stride
    out[:, 2:4] = np.exp(raw[:, 2:4]) * stride
    return out


# --- non-maximum suppression ---------------------------------------------------------------
def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS on (n, 4) xyxy boxes; indices of the kept boxes, highest score first.

    A box is dropped when its IoU with an already kept, higher-scoring box exceeds
    ``iou_threshold``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        inter_w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        inter_h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = inter_w * inter_h
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other.

    Each class is shifted by its own offset larger than any coordinate, so one :func:`nms` pass
    never sees overlaps across classes (torchvision's ``batched_nms`` trick).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    offsets = class_ids.astype(np.float64) * (float(np.abs(boxes).max()) + 1.0)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


# --- postprocessing ------------------------------------------------------------------------
def postprocess(
    decoded: np.ndarray,
    ratio: float,
    image_shape: tuple[int, ...],
    min_score: float = 0.05,
    nms_iou: float = 0.45,
    max_detections: int = MAX_DETECTIONS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes of the original image from decoded YOLOX rows.

    Each anchor point votes for its best class with score ``objectness * class score``; rows
    below ``min_score`` are dropped, class-aware NMS at ``nms_iou`` removes duplicates, and the
    ``max_detections`` best survive. Boxes are divided by the letterbox ``ratio`` and clipped to
    ``image_shape`` (h, w, ...).

    Returns:
        ``(xyxy, scores, class_ids)``: (n, 4) float64 pixels, (n,) float64, (n,) int64, best first.
    """
    decoded = np.asarray(decoded, dtype=np.float32)
    class_scores = decoded[:, 5:] * decoded[:, 4:5]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(decoded)), class_ids].astype(np.float64)
    keep = scores >= min_score
    cxcywh = decoded[keep, :4].astype(np.float64)
    scores, class_ids = scores[keep], class_ids[keep].astype(np.int64)
    xyxy = np.concatenate(
        (cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2), axis=1
    )
    xyxy /= ratio
    h, w = image_shape[:2]
    np.clip(xyxy[:, 0::2], 0, w, out=xyxy[:, 0::2])
    np.clip(xyxy[:, 1::2], 0, h, out=xyxy[:, 1::2])
    kept = batched_nms(xyxy, scores, class_ids, nms_iou)[:max_detections]
    return xyxy[kept], scores[kept], class_ids[kept]


# --- the detector ----------------------------------------------------------------------------
def read_classes_file(path: Path) -> tuple[str, ...]:
    """Class names, one a line, blank lines ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CowdemoError(
            f"Cannot read the class names in {path} ({exc.__class__.__name__}): "
            "give one class name per line, UTF-8."
        ) from None
    return tuple(line.strip() for line in lines if line.strip())


def classes_beside(model_path: Path) -> tuple[str, ...]:
    """The class names for a model: ``coco_classes.txt`` beside it, or COCO's.

    A file with exactly 80 names is taken to be COCO in the contiguous order and the
    project's canonical names (:data:`cowdemo.coco.COCO_CLASSES`) are used instead: exports
    often ship VOC-style spellings (``motorbike``, ``aeroplane``, ``sofa``, ``tvmonitor``) that
    would not match COCO ground truth or category ids by name. Any other count (a fine-tuned
    model) is used as written.
    """
    path = model_path.with_name(CLASSES_FILE)
    if not path.is_file():
        return COCO_CLASSES
    names = read_classes_file(path)
    if len(names) == len(COCO_CLASSES):
        return COCO_CLASSES
    return names


def _select_providers(device: str) -> tuple[list, str]:
    """onnxruntime providers for `device`, and the device they amount to ("cpu" or "cuda:N")."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda") and "CUDAExecutionProvider" in available:
        index = device.partition(":")[2] or "0"
        return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"], (
            f"cuda:{index}"
        )
    return ["CPUExecutionProvider"], "cpu"


class YoloxOnnxDetector(Detector):
    """A YOLOX model exported to ONNX (raw head output), run with onnxruntime.

    Args:
        path: the ``.onnx`` file.
        classes: class names behind the model's class indices. Defaults to the names the file
            carries (``cowdemo export`` writes them into its metadata), else those in a
            ``coco_classes.txt`` beside the model, or COCO's 80 (see :func:`classes_beside`).
        device: "cpu", or "cuda" / "cuda:N" to run on a GPU where onnxruntime has CUDA; falls
            back to the CPU otherwise (``self.device`` says which was used).
        min_score: the model's own floor: rows scoring lower are dropped before NMS.
        nms_iou: boxes of one class overlapping a better one by more than this are removed.
        name: shown in model pickers; defaults to the file name without ``.onnx``.
        threads: onnxruntime intra-op threads (None: its default, one per core). Several
            single-threaded copies running frames side by side use a small CPU better than
            one copy spreading each frame over all cores (see :meth:`with_threads`).
    """

    def __init__(
        self,
        path: str | Path,
        classes: Sequence[str] | None = None,
        device: str = "cpu",
        min_score: float = 0.05,
        nms_iou: float = 0.45,
        name: str | None = None,
        threads: int | None = None,
    ):
        self.path = Path(path)
        self.threads = threads
        self.classes = tuple(classes) if classes is not None else classes_beside(self.path)
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.name = name or self.path.stem
        self.session, self.device = self._open_session(device)
        if classes is None:  # an export made by `cowdemo export` carries its class names
            embedded = self.session.get_modelmeta().custom_metadata_map.get("cowdemo_classes")
            if embedded:
                import json

                self.classes = tuple(str(c) for c in json.loads(embedded))
        self._input = self.session.get_inputs()[0]
        self._output_name = self.session.get_outputs()[0].name
        self.input_size, self.batch_dynamic = self._check_shapes()

    def _fail(self, what: str) -> CowdemoError:
        return CowdemoError(
            f"{self.path} {what}: give the path of a YOLOX model exported to ONNX "
            "(tools/export_onnx.py from the YOLOX releases)."
        )

    def _open_session(self, device: str):
        import onnxruntime as ort

        if not self.path.is_file():
            raise self._fail("does not exist")
        providers, used = _select_providers(device)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers are noise to users
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        try:
            session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
            reason = str(exc).splitlines()[0][:160] if str(exc) else exc.__class__.__name__
            raise self._fail(f"is not a readable ONNX model ({reason})") from None
        return session, used

    def _check_shapes(self) -> tuple[tuple[int, int], bool]:
        """(height, width) of the input and whether the batch dimension is dynamic."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(self._input.shape)
        if len(inputs) != 1 or len(shape) != 4 or shape[1] not in (3, "3"):
            raise self._fail(f"takes inputs {[(i.name, i.shape) for i in inputs]}, not one 1x3xSxS")
        height, width = shape[2], shape[3]
        if not (isinstance(height, int) and isinstance(width, int)):
            raise self._fail(f"has a dynamic input size {shape}; export it with a fixed size")
        if height % max(STRIDES) or width % max(STRIDES):
            raise self._fail(f"has input size {height}x{width}, not a multiple of 32")
        out_shape = list(outputs[0].shape)
        expected = (anchor_count((height, width)), 5 + len(self.classes))
        if len(out_shape) != 3 or tuple(out_shape[1:]) != expected:
            raise self._fail(
                f"outputs {out_shape}, not (batch, {expected[0]}, {expected[1]}) "
                f"(raw YOLOX head for {len(self.classes)} classes)"
            )
        return (height, width), not isinstance(shape[0], int)

    def with_threads(self, threads: int) -> YoloxOnnxDetector:
        """The same model in a new session using ``threads`` intra-op threads."""
        return YoloxOnnxDetector(self.path, self.classes, self.device, self.min_score,
                                 self.nms_iou, self.name, threads)  # fmt: skip

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        images = list(images)
        if not images:
            return []
        prepared = [letterbox(image, self.input_size) for image in images]
        if self.batch_dynamic:
            raws = self._run(np.stack([chw for chw, _ in prepared]))
        else:  # a fixed batch of 1, as most exports have
            raws = np.concatenate([self._run(chw[None]) for chw, _ in prepared])
        results = []
        for raw, (_, ratio), image in zip(raws, prepared, images):
            decoded = decode_outputs(raw, self.input_size)
            xyxy, scores, class_ids = postprocess(
                decoded, ratio, image.shape, self.min_score, self.nms_iou
            )
            results.append(Detections.from_class_ids(xyxy, scores, class_ids, self.classes))
        return results

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self._output_name], {self._input.name: batch})[0]
