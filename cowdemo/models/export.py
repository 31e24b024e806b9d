"""Export a YOLOX fine-tune to ONNX, in the layout the ONNX backend reads (one ``images`` input
1x3xSxS BGR 0..255, the raw head as ``output``), with its class names inside the file::

    path = export_onnx("cows-nano")        # checkpoints/cows-nano.pt -> checkpoints/cows-nano.onnx
    YoloxOnnxDetector(path).classes        # ("cow",)

The class names travel in the model's metadata (``cowdemo_classes``, a JSON list), so the
backend needs no ``coco_classes.txt`` beside an exported fine-tune.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from cowdemo.errors import CowdemoError

#: The ONNX metadata key holding the class names (JSON list).
CLASSES_KEY = "cowdemo_classes"
OPSET = 17


def export_onnx(name: str, out: str | Path | None = None) -> Path:
    """Write the YOLOX fine-tune ``name`` (registry name or .pt path) as ONNX; returns the path
    (default: beside the checkpoint, ``.onnx``). Written to a temp file, then renamed."""
    import onnx

    from cowdemo.models.registry import find_model
    from cowdemo.models.yolox_torch import load_yolox_checkpoint_detector

    spec = find_model(name)
    if spec.kind != "checkpoint" or not spec.architecture.startswith("yolox-"):
        raise CowdemoError(f"{spec.name} is not a YOLOX fine-tune ({spec.kind}"
                           f"{' ' + spec.architecture if spec.architecture else ''}): only "
                           "YOLOX checkpoints export to ONNX.")
    detector = load_yolox_checkpoint_detector(spec.path, "cpu", name=spec.name)
    # NAME-onnx.onnx: a model name of its own in the registry, beside the NAME checkpoint
    target = Path(out) if out else Path(spec.path).with_name(f"{Path(spec.path).stem}-onnx.onnx")
    module = detector.module.eval()
    module.head.decode_in_inference = False
    dummy = torch.zeros(1, 3, *detector.input_size)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".onnx")
    os.close(fd)
    try:
        torch.onnx.export(module, (dummy,), tmp, input_names=["images"],
                          output_names=["output"], opset_version=OPSET, dynamo=False)
        model = onnx.load(tmp)
        entry = model.metadata_props.add()
        entry.key, entry.value = CLASSES_KEY, json.dumps(list(detector.classes))
        onnx.checker.check_model(model)
        onnx.save(model, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
