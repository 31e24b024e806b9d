"""YOLOX in PyTorch (the ``pixeltable-yolox`` package, a maintained fork of Megvii's YOLOX):
built by size, loaded from Megvii's official ``.pth``, or rebuilt from a YOLOX ONNX export so it
can be fine-tuned.

An ONNX export made with BatchNorm folded into the convolutions (Megvii's ``export_onnx.py``
does that) keeps every convolution's weights but no BatchNorm statistics. The same network is
rebuilt here: the graph's convolutions are read in graph order and copied onto the module's
convolutions in the order a forward pass calls them; every BatchNorm becomes the identity plus
the folded bias (weight 1, mean 0, variance ``1 - eps``, bias = the convolution's bias), so the
PyTorch model gives the ONNX model's raw output::

    module, info = module_from_onnx("checkpoints/yolox_nano.onnx")
    detector = YoloxTorchDetector("nano", module, COCO_CLASSES, info.input_size)

Pre- and postprocessing are the ONNX backend's (:mod:`cowdemo.models.yolox_onnx`): the same
letterbox, decoding and NMS, so both backends give the same boxes for the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.models.base import Detector
from cowdemo.models.yolox_onnx import decode_outputs, letterbox, postprocess

RELEASES = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/"


@dataclass(frozen=True)
class YoloxSize:
    """One YOLOX size: the package's config name, its input side and Megvii's COCO weights."""

    name: str  # "nano", "tiny", "s", ...
    config: str  # pixeltable-yolox's named config
    input_size: int
    coco_ap: float
    url: str


SIZES: dict[str, YoloxSize] = {
    s.name: s
    for s in (
        YoloxSize("nano", "yolox_nano", 416, 25.8, RELEASES + "yolox_nano.pth"),
        YoloxSize("tiny", "yolox_tiny", 416, 32.8, RELEASES + "yolox_tiny.pth"),
        YoloxSize("s", "yolox_s", 640, 40.5, RELEASES + "yolox_s.pth"),
        YoloxSize("m", "yolox_m", 640, 46.9, RELEASES + "yolox_m.pth"),
        YoloxSize("l", "yolox_l", 640, 49.7, RELEASES + "yolox_l.pth"),
        YoloxSize("x", "yolox_x", 640, 51.1, RELEASES + "yolox_x.pth"),
    )
}


def architecture_name(size: str) -> str:
    """The ``architecture`` written into checkpoints: ``yolox-nano``, ``yolox-s``, ..."""
    return f"yolox-{size}"


def size_of_architecture(architecture: str) -> YoloxSize:
    size = architecture.removeprefix("yolox-")
    if not architecture.startswith("yolox-") or size not in SIZES:
        raise CowdemoError(
            f"Unknown YOLOX architecture {architecture!r}: use one of "
            f"{', '.join(architecture_name(s) for s in SIZES)}."
        )
    return SIZES[size]


def is_yolox_architecture(architecture: str) -> bool:
    return architecture.startswith("yolox-")


MISSING_PACKAGE = ("YOLOX in PyTorch needs the pixeltable-yolox package: run scripts/setup.sh "
                   "(pip install --no-deps -r requirements-nodeps.txt).")


def yolox_available() -> tuple[bool, str]:
    """Whether pixeltable-yolox is installed (without importing it: listing models stays fast)."""
    from importlib.util import find_spec

    return (True, "") if find_spec("yolox") is not None else (False, MISSING_PACKAGE)


# --- building -------------------------------------------------------------------------------
def build_module(size: str, num_classes: int = 80) -> torch.nn.Module:
    """A YOLOX network of ``size`` with random weights (the package's own initialisation:
    BatchNorm eps 1e-3, momentum 0.03, prior-probability head biases)."""
    try:
        from yolox.config import YoloxConfig
    except ImportError:
        raise CowdemoError(MISSING_PACKAGE) from None

    if size not in SIZES:
        raise CowdemoError(f"Unknown YOLOX size {size!r}: use one of {', '.join(SIZES)}.")
    config = YoloxConfig.get_named_config(SIZES[size].config)
    config.num_classes = int(num_classes)
    module = config.get_model()
    module.head.decode_in_inference = False  # raw head, as the ONNX exports give it
    return module


def conv_call_order(module: torch.nn.Module, input_size: tuple[int, int]) -> list[torch.nn.Conv2d]:
    """Every ``Conv2d`` of ``module`` in the order one inference pass calls it (the order an
    ONNX trace writes them), which differs from the order they are registered in."""
    order: list[torch.nn.Conv2d] = []
    hooks = [m.register_forward_pre_hook(lambda m, _: order.append(m))
             for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, *input_size))
    finally:
        for hook in hooks:
            hook.remove()
        module.train(was_training)
    return order


def batchnorm_after(module: torch.nn.Module) -> dict[int, torch.nn.BatchNorm2d]:
    """id(conv) -> the BatchNorm that follows it in its block (YOLOX's BaseConv: conv, bn, act)."""
    pairs = {}
    for block in module.modules():
        conv, bn = getattr(block, "conv", None), getattr(block, "bn", None)
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            pairs[id(conv)] = bn
    return pairs


# --- ONNX exports -----------------------------------------------------------------------------
@dataclass(frozen=True)
class OnnxYoloxInfo:
    size: str
    num_classes: int
    input_size: tuple[int, int]
    convolutions: int


def read_onnx_convolutions(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray | None]],
                                                   tuple[int, int], int]:
    """The (weight, bias) of every Conv node in graph order, the input (height, width) and the
    number of classes of a YOLOX ONNX export."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise CowdemoError(f"{path} is not a readable ONNX model ({type(exc).__name__}): give "
                           "a YOLOX model exported to ONNX.") from None
    graph = model.graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # some exporters write weights as Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].t.dims:
            tensors[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for node in graph.node:  # ... or pass them through Identity
        if node.op_type == "Identity" and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]]
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        if node.input[1] not in tensors:
            raise CowdemoError(f"{path}: convolution {node.name} has no constant weights, so "
                               "it is not a plain YOLOX export.")
        bias = tensors.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        convs.append((tensors[node.input[1]], bias))
    dims = graph.input[0].type.tensor_type.shape.dim
    out_dims = graph.output[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not (dims[2].dim_value and dims[3].dim_value) or len(out_dims) != 3:
        raise CowdemoError(f"{path} does not take one 1x3xSxS image and give the raw YOLOX head "
                           "(export it with a fixed input size, without decoding).")
    return convs, (int(dims[2].dim_value), int(dims[3].dim_value)), int(out_dims[2].dim_value) - 5


def _signature(convs: Sequence[torch.nn.Conv2d]) -> list[tuple[int, ...]]:
    return [tuple(c.weight.shape) for c in convs]


def module_from_onnx(path: str | Path) -> tuple[torch.nn.Module, OnnxYoloxInfo]:
    """A trainable YOLOX module with the weights of a YOLOX ONNX export (see the module doc).

    The size is the one whose convolutions match the graph's, shape for shape."""
    path = Path(path)
    convs, input_size, num_classes = read_onnx_convolutions(path)
    shapes = [tuple(w.shape) for w, _ in convs]
    small = (64, 64)  # the call order does not depend on the input size
    for size in SIZES:
        if size in ("m", "l", "x") and len(convs) and shapes[0][0] < 48:
            continue  # the big sizes are slow to build; their stems are 48+ channels wide
        module = build_module(size, num_classes)
        order = conv_call_order(module, small)
        if _signature(order) == shapes:
            break
    else:
        raise CowdemoError(
            f"{path} has {len(convs)} convolutions that match no YOLOX size "
            f"({', '.join(SIZES)}): give a YOLOX ONNX export (Megvii's export_onnx.py)."
        )
    bns = batchnorm_after(module)
    with torch.no_grad():
        for conv, (weight, bias) in zip(order, convs):
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            bn = bns.get(id(conv))
            if bn is not None:  # BaseConv: conv (no bias) + bn; the export folded bn into conv
                bn.weight.fill_(1.0)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)  # sqrt(var + eps) == 1
                bn.bias.copy_(torch.from_numpy(bias.copy()) if bias is not None else 0.0)
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(bias.copy()) if bias is not None else 0.0)
            elif bias is not None and np.any(bias):
                raise CowdemoError(f"{path}: a convolution has a bias the YOLOX module lacks.")
    module.eval()
    return module, OnnxYoloxInfo(size, num_classes, input_size, len(convs))


def module_from_pth(size: str, path: Path) -> torch.nn.Module:
    """Megvii's official COCO weights (``{"model": state_dict, ...}``), loaded weights-only."""
    from yolox.utils import load_checkpoint

    try:
        data = load_checkpoint(path, map_location="cpu")
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CowdemoError(f"{path} is not loadable YOLOX weights ({first}).") from None
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise CowdemoError(f"{path} does not hold YOLOX weights (no state dict inside).")
    num_classes = _classes_in_state(state, path)
    module = build_module(size, num_classes)
    load_module_state(module, state, path, architecture_name(size))
    module.eval()
    return module


def _classes_in_state(state: dict, path: Path) -> int:
    weight = state.get("head.cls_preds.0.weight")
    if weight is None:
        raise CowdemoError(f"{path} is not a YOLOX state dict (no head.cls_preds.0.weight).")
    return int(weight.shape[0])


def load_module_state(module: torch.nn.Module, state: dict, path: Path, what: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise CowdemoError(f"{path} does not fit a {what} network ({first}): check the file "
                           "belongs to this YOLOX size.") from None


# --- BatchNorm ----------------------------------------------------------------------------------
class StatsFrozenBatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm that always normalises with its stored statistics, in training too, while its
    scale and shift still learn. The right choice for fine-tuning with batches of a few images
    and for bases rebuilt from an ONNX export (whose statistics are folded into the
    convolutions). Same state-dict keys as ``BatchNorm2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            False, 0.0, self.eps)


def freeze_batchnorm_statistics(module: torch.nn.Module) -> int:
    """Turn every BatchNorm2d into a :class:`StatsFrozenBatchNorm2d`; returns how many."""
    count = 0
    for m in module.modules():
        if type(m) is torch.nn.BatchNorm2d:
            m.__class__ = StatsFrozenBatchNorm2d
            count += 1
    return count


# --- the detector ---------------------------------------------------------------------------------
class YoloxTorchDetector(Detector):
    """A YOLOX module run with PyTorch; boxes as the ONNX backend gives them.

    Args:
        name: shown in model pickers.
        module: a YOLOX module (``head.decode_in_inference`` is switched off: raw head).
        classes: the names behind the head's class indices.
        input_size: (height, width) images are letterboxed to.
        device: "cpu" or "cuda:N".
        mixed_precision: float16 autocast on a GPU.
    """

    def __init__(self, name: str, module: torch.nn.Module, classes: Sequence[str],
                 input_size: tuple[int, int] | int, device: str = "cpu",
                 min_score: float = 0.05, nms_iou: float = 0.45, mixed_precision: bool = False):
        self.name = name
        self.module = module
        self.classes = tuple(classes)
        self.input_size = (input_size, input_size) if isinstance(input_size, int) \
            else tuple(int(v) for v in input_size)
        self.device = device
        self.min_score, self.nms_iou = float(min_score), float(nms_iou)
        self.mixed_precision = mixed_precision and device.startswith("cuda")
        module.head.decode_in_inference = False
        module.to(device).eval()

    def raw(self, batch: np.ndarray) -> np.ndarray:
        """The raw head (B, N, 5 + classes) for letterboxed BGR 0..255 images (B, 3, H, W)."""
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad(), torch.autocast("cuda", enabled=self.mixed_precision):
                out = self.module(torch.from_numpy(batch).to(self.device))
        finally:
            self.module.train(was_training)
        return out.float().cpu().numpy()

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        images = list(images)
        if not images:
            return []
        prepared = [letterbox(image, self.input_size) for image in images]
        raws = self.raw(np.stack([chw for chw, _ in prepared]))
        results = []
        for raw, (_, ratio), image in zip(raws, prepared, images):
            decoded = decode_outputs(raw, self.input_size)
            xyxy, scores, class_ids = postprocess(decoded, ratio, image.shape, self.min_score,
                                                  self.nms_iou)
            results.append(Detections.from_class_ids(xyxy, scores, class_ids, self.classes))
        return results


# --- fine-tuned checkpoints ----------------------------------------------------------------
def inference_settings(input_size: tuple[int, int] | int) -> dict:
    """Stored in a YOLOX fine-tune's checkpoint: the input size it is run at."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    return {"input_size": [int(h), int(w)]}


def load_yolox_checkpoint_detector(path: str | Path, device: str, name: str | None = None):
    """A ready detector from a cowdemo checkpoint of a YOLOX fine-tune (``architecture``
    ``yolox-<size>``); head class k is ``classes[k]``."""
    from cowdemo.models.checkpoints import read_checkpoint

    path = Path(path)
    data = read_checkpoint(path)
    size = size_of_architecture(str(data["architecture"]))
    classes = [str(c) for c in data["classes"]]
    module = build_module(size.name, len(classes))
    load_module_state(module, data["model"], path, str(data["architecture"]))
    settings = dict(data.get("metadata", {})).get("inference") or {}
    input_size = tuple(settings.get("input_size") or (size.input_size, size.input_size))
    return YoloxTorchDetector(name or path.stem, module, classes, input_size, device)
