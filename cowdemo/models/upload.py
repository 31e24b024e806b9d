"""Weights a user provides (an upload on the Home or Fine-tune page): checked, then put into the
checkpoints folder, or refused with one line and nothing written.

Accepted, by file name:

- a COCO weights file the registry knows by name (``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth``,
  ``yolox_nano.pth``, ...): it must load with ``torch.load(weights_only=True)`` as a state dict
  (YOLOX's official files hold it under ``"model"``) whose tensors fit that architecture;
- any other ``.pt`` / ``.pth``: a cowdemo checkpoint (architecture, classes and weights inside,
  as ``cowdemo train`` writes them), read with ``weights_only`` and its fields checked;
- ``.onnx``: a YOLOX ONNX export that onnxruntime opens, with YOLOX's input and output shapes.

The file is written under a temporary name in the checkpoints folder, checked there, and renamed
into place only when every check passed; an existing file of the same name is never replaced
unless asked (``overwrite=True``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from cowdemo.errors import CowdemoError

SUFFIXES = (".pth", ".pt", ".onnx")
#: Larger than any detector we list (YOLOX-S .pth is 69 MB, R50-FPN v2 is 167 MB).
MAX_BYTES = 1 << 30
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,120}$")


def known_weight_files() -> dict[str, tuple[str, str]]:
    """Plain COCO weights file name -> (family "torchvision" | "yolox", architecture/size)."""
    from cowdemo.models.torchvision_frcnn import ARCHITECTURES
    from cowdemo.models.yolox_torch import SIZES

    files = {Path(urlparse(a.coco_url).path).name: ("torchvision", name)
             for name, a in ARCHITECTURES.items()}
    files.update({Path(urlparse(s.url).path).name: ("yolox", size) for size, s in SIZES.items()})
    return files


def check_upload_name(name: str) -> str:
    """The file name to store an upload under (no folders), or a one-line error."""
    base = str(name)
    if "/" in base or "\\" in base or not _SAFE_NAME.match(base):
        raise CowdemoError(f"{name!r} is not a usable file name: use letters, digits, '.', '_', "
                           "'+' and '-' only.")
    if Path(base).suffix.lower() not in SUFFIXES:
        raise CowdemoError(f"{base}: not a weights file (.pth, .pt or .onnx expected).")
    if base.startswith("."):
        raise CowdemoError(f"{base}: hidden file names are not allowed.")
    return base


def _check_plain_weights(path: Path, shown: str, family: str, arch: str) -> str:
    from cowdemo.models.weights import load_state_dict

    state = load_state_dict(path, shown)
    if family == "yolox":
        from cowdemo.models.yolox_torch import build_module, load_module_state

        state = state.get("model", state)
        if not isinstance(state, dict):
            raise CowdemoError(f"{shown} does not hold a YOLOX state dict.")
        classes = state.get("head.cls_preds.0.weight")
        num = int(classes.shape[0]) if hasattr(classes, "shape") else 80
        load_module_state(build_module(arch, num), state, Path(shown), f"YOLOX-{arch}")
        return f"YOLOX-{arch.capitalize()} COCO weights"
    from cowdemo.models.torchvision_frcnn import get_architecture

    model = get_architecture(arch).build(91)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CowdemoError(f"{shown} does not fit {arch} ({first[:160]}).") from None
    return f"{arch} COCO weights"


def _check_checkpoint(path: Path, shown: str) -> str:
    from cowdemo.models.checkpoints import read_checkpoint

    data = read_checkpoint(path)
    classes = ", ".join(str(c) for c in data["classes"])
    return f"a {data['architecture']} fine-tune of {classes}"


def _check_onnx(path: Path, shown: str) -> str:
    from cowdemo.models.yolox_onnx import YoloxOnnxDetector

    detector = YoloxOnnxDetector(path, device="cpu", name=Path(shown).stem)
    height, width = detector.input_size
    return f"a YOLOX ONNX export ({width}x{height} input, {len(detector.classes)} classes)"


def install_weights(name: str, data: bytes, folder: str | Path | None = None, *,
                    overwrite: bool = False) -> tuple[Path, str]:
    """Check ``data`` (the uploaded file ``name``) and put it into ``folder`` (default the
    checkpoints folder). Returns the stored path and what it is; raises a one-line
    :class:`CowdemoError` (and writes nothing) otherwise."""
    from cowdemo.models.weights import checkpoints_dir

    base = check_upload_name(name)
    if not data:
        raise CowdemoError(f"{base} is empty.")
    if len(data) > MAX_BYTES:
        raise CowdemoError(f"{base} is {len(data) / 1e9:.1f} GB: larger than any detector "
                           f"cowdemo lists (limit {MAX_BYTES / 1e9:.1f} GB).")
    target_dir = Path(folder) if folder else checkpoints_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / base
    if target.exists() and not overwrite:
        raise CowdemoError(f"{target} already exists: remove it first or choose replace.")
    suffix = Path(base).suffix.lower()
    fd, temp_name = tempfile.mkstemp(prefix=".upload-", suffix=suffix, dir=target_dir)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        plain = known_weight_files().get(base)
        try:
            if suffix == ".onnx":
                what = _check_onnx(temp, base)
            elif plain is not None:
                what = _check_plain_weights(temp, base, *plain)
            else:
                what = _check_checkpoint(temp, base)
        except CowdemoError as exc:  # name the user's file, not the temporary one
            text = re.sub(r"\S*\.upload-[A-Za-z0-9_]+(\.(onnx|pth|pt))?", base, str(exc))
            raise CowdemoError(text) from None
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target, what
