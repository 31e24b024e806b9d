"""Weights from the browser (cowdemo.models.upload): real files checked and added to the
checkpoints folder, everything else refused with one line and nothing written."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from cowdemo.errors import CowdemoError
from cowdemo.models.registry import list_models
from cowdemo.models.upload import install_weights

MOBILENET = "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_real_files_are_added_and_listed(tmp_path, demo_checkpoints, yolox_nano_path):
    folder = tmp_path / "checkpoints"
    path, what = install_weights("yolox_nano.onnx", yolox_nano_path.read_bytes(), folder)
    assert path == folder / "yolox_nano.onnx" and "YOLOX ONNX export" in what
    assert "416x416" in what and "80 classes" in what
    path, what = install_weights("cows.pt", (demo_checkpoints / "cows-finetuned.pt").read_bytes(),
                                 folder)
    assert what == "a frcnn-mobilenet-v3 fine-tune of cow"
    path, what = install_weights(MOBILENET, (demo_checkpoints / MOBILENET).read_bytes(), folder)
    assert what == "frcnn-mobilenet-v3 COCO weights"
    assert _listing(folder) == sorted(["yolox_nano.onnx", "cows.pt", MOBILENET])
    ready = {m.name: m.status for m in list_models(folder)}
    assert ready["yolox_nano"] == ready["cows"] == ready["frcnn-mobilenet-v3-coco"] == "ready"


@pytest.mark.parametrize("name, data, message", [
    ("evil.pt", pickle.dumps(_Payload()), "only plain tensors load"),
    ("cows.pt", b"\x00" * 64, "is not a loadable"),
    ("random.onnx", os.urandom(4096), "is not a readable ONNX model"),
    ("../../escape.pth", b"x", "not a usable file name"),
    ("notes.txt", b"hello", "not a weights file"),
    ("empty.onnx", b"", "is empty"),
    ("plain.pt", None, "is not a cowdemo checkpoint"),
    ("fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", "mobilenet", "does not fit frcnn-r50-fpn"),
])  # fmt: skip
def test_bad_files_are_refused_with_one_line_and_nothing_written(tmp_path, demo_checkpoints,
                                                                 name, data, message):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "keep.onnx").write_bytes(b"earlier file")
    if data is None:  # a plain state dict under a name no registry entry expects
        torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pt")
        data = (tmp_path / "plain.pt").read_bytes()
    elif data == "mobilenet":  # the wrong architecture's weights under R50's file name
        data = (demo_checkpoints / MOBILENET).read_bytes()
    with pytest.raises(CowdemoError) as caught:
        install_weights(name, data, folder)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert ".upload-" not in text, "the message names the user's file, not the temporary one"
    assert _listing(folder) == ["keep.onnx"], "nothing written, no temporary file left"
    assert (folder / "keep.onnx").read_bytes() == b"earlier file"


def test_an_existing_file_is_replaced_only_when_asked(tmp_path, yolox_nano_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "yolox_nano.onnx").write_bytes(b"old")
    with pytest.raises(CowdemoError, match="already exists"):
        install_weights("yolox_nano.onnx", yolox_nano_path.read_bytes(), folder)
    assert (folder / "yolox_nano.onnx").read_bytes() == b"old"
    install_weights("yolox_nano.onnx", yolox_nano_path.read_bytes(), folder, overwrite=True)
    assert (folder / "yolox_nano.onnx").read_bytes() == yolox_nano_path.read_bytes()
