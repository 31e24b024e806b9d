"""Bad input, as a table: one row per case, each a real bad file or argument given to the real
CLI. Every row must end with exit code 2 and one line naming the file (or argument) and what is
wrong with it: no traceback, no hang, and nothing that was saved before is lost or changed.

Rows run the CLI in this process (`cowdemo.cli.main`, stdout/stderr captured, SystemExit
caught); rows that could hang (a FIFO named like a file) run under a SIGALRM timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import shared_path

from cowdemo.cli import main

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    make: Callable[[Path], tuple[list[str], str, list[Path]]]
    may_hang: bool = False


CASES: dict[str, Case] = {}


def case(name: str, may_hang: bool = False):
    """Register ``make(tmp) -> (argv, regex the error line must match, paths to keep)``."""

    def register(make):
        assert name not in CASES
        CASES[name] = Case(make, may_hang)
        return make

    return register


# --- small real files -----------------------------------------------------------------------
def png_bytes(w: int = 64, h: int = 48, seed: int = 0) -> bytes:
    from cowdemo.images import encode_png

    rng = np.random.default_rng(seed)
    return encode_png(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def jpeg_bytes(w: int = 64, h: int = 48) -> bytes:
    import cv2

    rng = np.random.default_rng(1)
    ok, data = cv2.imencode(".jpg", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


def coco(n_images: int = 2, boxes: bool = True) -> dict:
    images = [{"id": i, "file_name": f"img{i}.png", "width": 64, "height": 48}
              for i in range(1, n_images + 1)]
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [5, 5, 20, 15], "area": 300,
             "iscrowd": 0} for i in range(1, n_images + 1)] if boxes else []
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "cow"}]}  # fmt: skip


def dataset_folder(tmp: Path, name: str = "ds", data: dict | None = None, images: bool = True):
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    data = data if data is not None else coco()
    (folder / "annotations.json").write_text(json.dumps(data))
    if images:
        for im in data.get("images", []):
            (folder / im["file_name"]).write_bytes(png_bytes(seed=im["id"]))
    return folder


def results_file(tmp: Path, rows, name: str = "res.json") -> Path:
    path = tmp / name
    path.write_text(rows if isinstance(rows, str) else json.dumps(rows))
    return path


GOOD_RESULTS = [{"image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 15], "score": 0.9}]


def nested_json(depth: int = 200_000) -> str:
    return "[" * depth + "]" * depth


def yolox(tmp: Path) -> Path:
    return shared_path("models/yolox-nano/yolox_nano.onnx")


def a_video(tmp: Path) -> Path:
    """A tiny real MP4 (4 frames) through the project's own writer."""
    from cowdemo.video import write_video

    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(4)]
    path = tmp / "clip.mp4"
    write_video(path, frames, fps=4)
    return path


def a_zip(tmp: Path, entries: dict[str, bytes], name: str = "upload.zip") -> Path:
    path = tmp / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in entries.items():
            zf.writestr(arcname, data)
    return path


def saved_dataset(tmp: Path, name: str = "herd") -> Path:
    """A dataset in the store (COWDEMO_DATA=tmp/data): what must never be lost."""
    from cowdemo.datasets.coco import CocoDataset
    from cowdemo.datasets.store import DatasetStore

    store = DatasetStore()
    store.save(name, CocoDataset.load(dataset_folder(tmp / "src", name)))
    return store.path(name)


# --- images (cowdemo predict) ---------------------------------------------------------------
def predict(tmp: Path, *paths: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return ["predict", *map(str, paths), "--model", str(yolox(tmp)), "--device", "cpu",
            "--out", str(tmp / "out"), *extra]


@case("image: random bytes named .jpg")
def _(tmp):
    p = tmp / "noise.jpg"
    p.write_bytes(os.urandom(2000))
    return predict(tmp, p), r"noise\.jpg.*not an image|noise\.jpg.*(corrupt|unsupported)", [p]


@case("image: empty file")
def _(tmp):
    p = tmp / "empty.png"
    p.write_bytes(b"")
    return predict(tmp, p), r"empty\.png.*empty", [p]


@case("image: truncated JPEG")
def _(tmp):
    p = tmp / "half.jpg"
    p.write_bytes(jpeg_bytes()[:300])
    return predict(tmp, p), r"half\.jpg.*(truncated|corrupt)", [p]


@case("image: text file named .png")
def _(tmp):
    p = tmp / "notes.png"
    p.write_text("hello, I am not a picture\n" * 20)
    return predict(tmp, p), r"notes\.png.*not an image", [p]


@case("image: PNG header claiming 100000 x 100000 pixels (decompression bomb)")
def _(tmp):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    head = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"\0" * 99))
    p = tmp / "bomb.png"
    p.write_bytes(data + chunk(b"IEND", b""))
    return predict(tmp, p), r"bomb\.png.*(too large|pixels)", [p]


@case("image: no such file")
def _(tmp):
    return predict(tmp, tmp / "ghost.jpg"), r"ghost\.jpg.*no such", []


@case("image: a FIFO named .jpg (would block forever)", may_hang=True)
def _(tmp):
    p = tmp / "pipe.jpg"
    os.mkfifo(p)
    return predict(tmp, p), r"pipe\.jpg.*not a regular file", []


@case("image: a folder with no images")
def _(tmp):
    (tmp / "nothing").mkdir()
    (tmp / "nothing" / "readme.txt").write_text("x")
    return predict(tmp, tmp / "nothing"), r"No images found", []


@case("predict --out is an existing regular file")
def _(tmp):
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    out = tmp / "out"
    out.write_text("my notes, keep me")
    return predict(tmp, img), r"out.*not a folder", [out, img]


@case("predict: --score-threshold -1")
def _(tmp):
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    return predict(tmp, img, extra=("--score-threshold", "-1")), r"score.threshold.*-1", []


@case("predict: --score-threshold 5")
def _(tmp):
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    return predict(tmp, img, extra=("--score-threshold", "5")), r"score.threshold.*5", []


@case("predict: --score-threshold nan")
def _(tmp):
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    return predict(tmp, img, extra=("--score-threshold", "nan")), r"score.threshold.*nan", []


@case("predict: --classes unicorn (not a class of the model)")
def _(tmp):
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    return predict(tmp, img, extra=("--classes", "unicorn")), r"unicorn.*yolox_nano", []


@case("predict: --device tpu")
def _(tmp):
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--device") + 1] = "tpu"
    return args, r"Unknown device 'tpu'", []


# --- checkpoints and model files --------------------------------------------------------------
class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/cowdemo-pwned",))


@case("checkpoint: pickled code (os.system) in a .pt")
def _(tmp):
    p = tmp / "evil.pt"
    with open(p, "wb") as handle:
        pickle.dump({"cowdemo_checkpoint": 1, "model": Payload()}, handle)
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--model") + 1] = str(p)
    return args, r"evil\.pt.*(weights_only|pickled code)", [p]


@case("checkpoint: truncated .pt")
def _(tmp):
    buf = io.BytesIO()
    torch.save({"cowdemo_checkpoint": 1, "model": {"w": torch.zeros(1000)}}, buf)
    p = tmp / "cut.pt"
    p.write_bytes(buf.getvalue()[:500])
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--model") + 1] = str(p)
    return args, r"cut\.pt.*(corrupt|truncated|not a loadable)", [p]


@case("checkpoint: random bytes as .onnx")
def _(tmp):
    p = tmp / "noise.onnx"
    p.write_bytes(os.urandom(5000))
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--model") + 1] = str(p)
    return args, r"noise\.onnx.*(not a|could not|ONNX)", [p]


def bad_checkpoint(tmp: Path, name: str, **fields) -> Path:
    folder = Path(os.environ["COWDEMO_CHECKPOINTS"])
    data = {"cowdemo_checkpoint": 1, "architecture": "frcnn-mobilenet-v3", "classes": ["cow"],
            "base_model": "", "metadata": {}, "model": {}}
    data.update(fields)
    torch.save(data, folder / f"{name}.pt")
    return folder / f"{name}.pt"


@case("checkpoint in checkpoints/: classes is an int")
def _(tmp):
    p = bad_checkpoint(tmp, "badclasses", classes=3)
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--model") + 1] = "badclasses"
    return args, r"badclasses.*unavailable.*classes", [p]


@case("checkpoint in checkpoints/: metadata is a string")
def _(tmp):
    p = bad_checkpoint(tmp, "badmeta", metadata="oops")
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--model") + 1] = "badmeta"
    return args, r"badmeta.*unavailable.*metadata", [p]


@case("checkpoint in checkpoints/: unknown architecture")
def _(tmp):
    p = bad_checkpoint(tmp, "badarch", architecture="resnet-9000")
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--model") + 1] = "badarch"
    return args, r"badarch.*unavailable.*resnet-9000", [p]


@case("checkpoint in checkpoints/: random bytes .pt")
def _(tmp):
    p = Path(os.environ["COWDEMO_CHECKPOINTS"]) / "junk.pt"
    p.write_bytes(os.urandom(3000))
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--model") + 1] = "junk"
    return args, r"junk.*unavailable", [p]


@case("model: unknown name")
def _(tmp):
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--model") + 1] = "no-such-model"
    return args, r"Unknown model 'no-such-model'", []


@case("model: a path that does not exist")
def _(tmp):
    img = tmp / "cow.png"
    img.write_bytes(png_bytes())
    args = predict(tmp, img)
    args[args.index("--model") + 1] = str(tmp / "gone" / "m.onnx")
    return args, r"m\.onnx does not exist", []


@case("evaluate --model elsewhere/yolox_nano.onnx of random bytes (a registry stem)")
def _(tmp):
    """Must load *that* file (and fail on it), never the registry's yolox_nano."""
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    p = elsewhere / "yolox_nano.onnx"
    p.write_bytes(os.urandom(4000))
    ds = dataset_folder(tmp)
    return (["evaluate", "--dataset", str(ds), "--model", str(p), "--device", "cpu"],
            r"elsewhere/yolox_nano\.onnx", [p])


# --- COCO ground truth (cowdemo evaluate) --------------------------------------------------
def evaluate_gt(tmp: Path, gt_text: str | dict, name: str = "instances_x.json"):
    folder = tmp / "gt"
    folder.mkdir(exist_ok=True)
    p = folder / name
    p.write_text(gt_text if isinstance(gt_text, str) else json.dumps(gt_text))
    res = results_file(tmp, GOOD_RESULTS)
    return ["evaluate", "--dataset", str(p), "--results", str(res)], p


@case("COCO GT: not JSON")
def _(tmp):
    args, p = evaluate_gt(tmp, "{images: oops")
    return args, r"instances_x\.json.*not valid JSON", [p]


@case("COCO GT: a JSON list, not an object")
def _(tmp):
    args, p = evaluate_gt(tmp, "[1, 2, 3]")
    return args, r"instances_x\.json", [p]


@case("COCO GT: no 'images' key")
def _(tmp):
    data = coco()
    del data["images"]
    args, p = evaluate_gt(tmp, data)
    return args, r"instances_x\.json.*images", [p]


@case("COCO GT: bbox with 3 numbers")
def _(tmp):
    data = coco()
    data["annotations"][0]["bbox"] = [1, 2, 3]
    args, p = evaluate_gt(tmp, data)
    return args, r"instances_x\.json.*bbox", [p]


@case("COCO GT: annotation of an unknown image id")
def _(tmp):
    data = coco()
    data["annotations"][0]["image_id"] = 99
    args, p = evaluate_gt(tmp, data)
    return args, r"instances_x\.json.*99", [p]


@case("COCO GT: annotation of an unknown category")
def _(tmp):
    data = coco()
    data["annotations"][0]["category_id"] = 7
    args, p = evaluate_gt(tmp, data)
    return args, r"instances_x\.json.*7", [p]


@case("COCO GT: zero annotations (AP undefined)")
def _(tmp):
    args, p = evaluate_gt(tmp, coco(boxes=False))
    return args, r"instances_x.*no (ground.truth )?box", [p]


@case("COCO GT: 200,000 levels of nested lists")
def _(tmp):
    args, p = evaluate_gt(tmp, nested_json())
    return args, r"instances_x\.json.*nested", [p]


@case("COCO GT: not UTF-8")
def _(tmp):
    args, p = evaluate_gt(tmp, "{}")
    p.write_bytes(b'{"images": "\xff\xfe\xfa"}')
    return args, r"instances_x\.json.*(UTF-8|utf-8|valid JSON)", [p]


@case("COCO GT: a 3 GB file (sparse) is refused by size, unread")
def _(tmp):
    args, p = evaluate_gt(tmp, "{}")
    with open(p, "wb") as handle:
        handle.truncate(3 * 1024**3)
    return args, r"instances_x\.json.*(GB|too large)", []


@case("COCO GT: a FIFO named .json", may_hang=True)
def _(tmp):
    folder = tmp / "gt"
    folder.mkdir()
    p = folder / "instances_x.json"
    os.mkfifo(p)
    res = results_file(tmp, GOOD_RESULTS)
    return (["evaluate", "--dataset", str(p), "--results", str(res)],
            r"instances_x\.json.*not a regular file", [])


@case("COCO GT: no such dataset name")
def _(tmp):
    res = results_file(tmp, GOOD_RESULTS)
    return ["evaluate", "--dataset", "no-such-set", "--results", str(res)], r"no-such-set", []


@case("evaluate --model: the images of the done boxes have no boxes at all")
def _(tmp):
    ds = dataset_folder(tmp, data=coco(boxes=False))
    return (["evaluate", "--dataset", str(ds), "--model", str(yolox(tmp)), "--device", "cpu"],
            r"ds.*no (ground.truth )?box", [ds / "annotations.json"])


@case("evaluate --model: an image file of the dataset is missing")
def _(tmp):
    ds = dataset_folder(tmp)
    (ds / "img2.png").unlink()
    return (["evaluate", "--dataset", str(ds), "--model", str(yolox(tmp)), "--device", "cpu"],
            r"img2\.png.*(missing|no such)", [ds / "annotations.json"])


@case("evaluate --batch-size 0")
def _(tmp):
    ds = dataset_folder(tmp)
    return (["evaluate", "--dataset", str(ds), "--model", str(yolox(tmp)), "--batch-size", "0"],
            r"batch.size.*0", [])


@case("evaluate: neither --model nor --results")
def _(tmp):
    ds = dataset_folder(tmp)
    return ["evaluate", "--dataset", str(ds)], r"--model or --results", []


# --- COCO results ------------------------------------------------------------------------------
def evaluate_res(tmp: Path, rows) -> tuple[list[str], Path]:
    ds = dataset_folder(tmp)
    p = results_file(tmp, rows, "detections.json")
    return ["evaluate", "--dataset", str(ds), "--results", str(p)], p


@case("COCO results: an object, not a list")
def _(tmp):
    args, p = evaluate_res(tmp, {"image_id": 1})
    return args, r"detections\.json.*list", [p]


@case("COCO results: a row without score")
def _(tmp):
    args, p = evaluate_res(tmp, [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}])
    return args, r"detections\.json.*score", [p]


@case("COCO results: bbox of strings")
def _(tmp):
    args, p = evaluate_res(tmp, [{"image_id": 1, "category_id": 1, "bbox": ["a", "b", "c", "d"],
                                  "score": 0.5}])
    return args, r"detections\.json.*bbox", [p]


@case("COCO results: an image id not in the ground truth")
def _(tmp):
    args, p = evaluate_res(tmp, [{**GOOD_RESULTS[0], "image_id": 555}])
    return args, r"detections\.json.*555", [p]


@case("COCO results: a category id not in the ground truth")
def _(tmp):
    args, p = evaluate_res(tmp, [{**GOOD_RESULTS[0], "category_id": 42}])
    return args, r"detections\.json.*42", [p]


@case("COCO results: not JSON")
def _(tmp):
    args, p = evaluate_res(tmp, "[{]")
    return args, r"detections\.json.*not valid JSON", [p]


@case("COCO results: 200,000 levels of nested lists")
def _(tmp):
    args, p = evaluate_res(tmp, nested_json())
    return args, r"detections\.json.*nested", [p]


@case("COCO results: empty file")
def _(tmp):
    args, p = evaluate_res(tmp, "")
    return args, r"detections\.json.*(empty|not valid JSON)", [p]


@case("COCO results: score NaN")
def _(tmp):
    args, p = evaluate_res(tmp, '[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], '
                                '"score": NaN}]')
    return args, r"detections\.json.*score", [p]


# --- dataset import: COCO JSON, YOLO, VOC, zips --------------------------------------------------
def import_args(source: Path, *extra: str) -> list[str]:
    return ["datasets", "import", str(source), *extra]


@case("import: /dev/null")
def _(tmp):
    return import_args(Path("/dev/null")), r"/dev/null.*(not a regular file|not a zip)", []


@case("import: a 200,000-level nested JSON")
def _(tmp):
    p = tmp / "deep.json"
    p.write_text(nested_json())
    return import_args(p), r"deep\.json.*nested", [p]


@case("import: COCO JSON with a bbox of 2 numbers")
def _(tmp):
    data = coco()
    data["annotations"][0]["bbox"] = [1, 2]
    folder = dataset_folder(tmp, "bad", data)
    return import_args(folder / "annotations.json"), r"annotations\.json.*bbox", []


@case("import: onto an existing dataset without --replace")
def _(tmp):
    kept = saved_dataset(tmp, "herd")
    folder = dataset_folder(tmp, "other")
    return (import_args(folder, "--name", "herd"), r"herd.*already exists",
            [kept / "annotations.json"])


def yolo_folder(tmp: Path, label: str, classes: str | None = "cow\n") -> Path:
    root = tmp / "yolo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "images" / "a.png").write_bytes(png_bytes())
    (root / "labels" / "a.txt").write_text(label)
    if classes is not None:
        (root / "classes.txt").write_text(classes)
    return root


@case("YOLO: a label line of 4 numbers")
def _(tmp):
    root = yolo_folder(tmp, "0 0.5 0.5 0.2\n")
    return import_args(root, "--format", "yolo"), r"a\.txt.*(5|fields|numbers)", []


@case("YOLO: class index 7 with one class")
def _(tmp):
    root = yolo_folder(tmp, "7 0.5 0.5 0.2 0.2\n")
    return import_args(root, "--format", "yolo"), r"a\.txt.*7", []


@case("YOLO: words instead of numbers")
def _(tmp):
    root = yolo_folder(tmp, "cow left top wide tall\n")
    return import_args(root, "--format", "yolo"), r"a\.txt.*(number|cow)", []


@case("YOLO: no classes.txt and no --classes")
def _(tmp):
    root = yolo_folder(tmp, "0 0.5 0.5 0.2 0.2\n", classes=None)
    return import_args(root, "--format", "yolo"), r"classes", []


def voc_folder(tmp: Path, xml: str) -> Path:
    root = tmp / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "JPEGImages" / "a.jpg").write_bytes(jpeg_bytes())
    (root / "Annotations" / "a.xml").write_text(xml)
    return root


VOC_OBJECT = ("<annotation><filename>a.jpg</filename><size><width>64</width><height>48</height>"
              "<depth>3</depth></size>{obj}</annotation>")


@case("VOC: malformed XML")
def _(tmp):
    root = voc_folder(tmp, "<annotation><filename>a.jpg</filename>")
    return import_args(root, "--format", "voc"), r"a\.xml", []


@case("VOC: object without bndbox")
def _(tmp):
    root = voc_folder(tmp, VOC_OBJECT.format(obj="<object><name>cow</name></object>"))
    return import_args(root, "--format", "voc"), r"a\.xml.*bndbox", []


@case("VOC: billion laughs entity bomb")
def _(tmp):
    ents = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    xml = f'<?xml version="1.0"?><!DOCTYPE annotation [{ents}]>' + VOC_OBJECT.format(
        obj="<object><name>&a9;</name></object>")
    root = voc_folder(tmp, xml)
    return import_args(root, "--format", "voc"), r"a\.xml", []


@case("VOC: external entity (XXE) to /etc/passwd")
def _(tmp):
    xml = ('<?xml version="1.0"?><!DOCTYPE annotation [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           + VOC_OBJECT.format(obj="<object><name>&x;</name></object>"))
    root = voc_folder(tmp, xml)
    return import_args(root, "--format", "voc"), r"a\.xml", []


@case("VOC: xmax smaller than xmin")
def _(tmp):
    obj = ("<object><name>cow</name><bndbox><xmin>40</xmin><ymin>5</ymin><xmax>10</xmax>"
           "<ymax>30</ymax></bndbox></object>")
    root = voc_folder(tmp, VOC_OBJECT.format(obj=obj))
    return import_args(root, "--format", "voc"), r"a\.xml", []


def coco_zip_entries() -> dict[str, bytes]:
    return {"annotations.json": json.dumps(coco(1)).encode(), "img1.png": png_bytes()}


@case("zip: path traversal (../../evil.png)")
def _(tmp):
    p = a_zip(tmp, {**coco_zip_entries(), "../../evil.png": png_bytes()})
    return import_args(p), r"upload\.zip.*\.\./\.\./evil\.png", [p]


@case("zip: absolute path (/tmp/evil.png)")
def _(tmp):
    p = a_zip(tmp, {**coco_zip_entries(), "/tmp/evil.png": png_bytes()})
    return import_args(p), r"upload\.zip.*/tmp/evil\.png", [p]


@case("zip: a symlink entry")
def _(tmp):
    p = tmp / "upload.zip"
    with zipfile.ZipFile(p, "w") as zf:
        for arcname, data in coco_zip_entries().items():
            zf.writestr(arcname, data)
        link = zipfile.ZipInfo("img2.png")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    return import_args(p), r"upload\.zip.*(symlink|link)", [p]


@case("zip: 1000:1 compression (a zip bomb by ratio)")
def _(tmp):
    p = tmp / "upload.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for arcname, data in coco_zip_entries().items():
            zf.writestr(arcname, data)
        zf.writestr("zeros.png", b"\0" * (64 * 1024**2))
    return import_args(p), r"upload\.zip.*(ratio|compress)", [p]


@case("zip: random bytes named .zip")
def _(tmp):
    p = tmp / "upload.zip"
    p.write_bytes(os.urandom(3000))
    return import_args(p), r"upload\.zip.*not a (valid )?zip", [p]


@case("zip: truncated")
def _(tmp):
    p = a_zip(tmp, coco_zip_entries())
    p.write_bytes(p.read_bytes()[:200])
    return import_args(p), r"upload\.zip", [p]


@case("zip: no images and no annotations inside")
def _(tmp):
    p = a_zip(tmp, {"readme.txt": b"hello"})
    return import_args(p), r"upload\.zip", [p]


# --- MOT txt and videos (cowdemo track) ----------------------------------------------------
def track(tmp: Path, video: Path, *extra: str) -> list[str]:
    return ["track", str(video), "--model", str(yolox(tmp)), "--device", "cpu", "--no-video",
            "--out", str(tmp / "tracks"), *extra]


@case("video: random bytes named .mp4")
def _(tmp):
    p = tmp / "noise.mp4"
    p.write_bytes(os.urandom(4000))
    return track(tmp, p), r"noise\.mp4", [p]


@case("video: empty .mp4")
def _(tmp):
    p = tmp / "empty.mp4"
    p.write_bytes(b"")
    return track(tmp, p), r"empty\.mp4", [p]


@case("video: no such file")
def _(tmp):
    return track(tmp, tmp / "ghost.mp4"), r"ghost\.mp4.*(no such|does not exist)", []


@case("video: a FIFO named .mp4", may_hang=True)
def _(tmp):
    p = tmp / "pipe.mp4"
    os.mkfifo(p)
    return track(tmp, p), r"pipe\.mp4.*not a regular file", []


@case("track --out is an existing file")
def _(tmp):
    video = a_video(tmp)
    out = tmp / "tracks"
    out.write_text("keep me")
    return track(tmp, video), r"tracks.*not a folder", [out, video]


@case("track --classes unicorn (not a class of the model)")
def _(tmp):
    return track(tmp, a_video(tmp), "--classes", "unicorn"), r"unicorn.*yolox_nano", []


@case("track --score-threshold 2")
def _(tmp):
    return track(tmp, a_video(tmp), "--score-threshold", "2"), r"score.threshold.*2", []


@case("track --stride 0")
def _(tmp):
    return track(tmp, a_video(tmp), "--stride", "0"), r"stride.*0", []


@case("MOT gt.txt: 3 columns")
def _(tmp):
    gt = tmp / "gt.txt"
    gt.write_text("1,1,10\n")
    return track(tmp, a_video(tmp), "--gt", str(gt)), r"gt\.txt.*(line 1|column)", [gt]


@case("MOT gt.txt: words")
def _(tmp):
    gt = tmp / "gt.txt"
    gt.write_text("frame,id,x,y,w,h,conf,class,vis\n")
    return track(tmp, a_video(tmp), "--gt", str(gt)), r"gt\.txt.*line 1", [gt]


@case("MOT gt.txt: no such file")
def _(tmp):
    return track(tmp, a_video(tmp), "--gt", str(tmp / "nogt.txt")), r"nogt\.txt", []


# --- run history (cowdemo runs / check) -------------------------------------------------------
@case("runs list --db mysql://nohost/x (driver not installed)")
def _(tmp):
    return ["runs", "list", "--db", "mysql://nohost/x"], r"mysql://nohost/x", []


@case("runs list --db not-a-url")
def _(tmp):
    return ["runs", "list", "--db", "not-a-url"], r"not-a-url.*URL", []


@case("runs list --db sqlite in a folder that cannot be made")
def _(tmp):
    return ["runs", "list", "--db", "sqlite:////proc/x/runs.sqlite"], r"/proc/x/runs\.sqlite", []


@case("runs export --out /proc/x.csv (unwritable)")
def _(tmp):
    return ["runs", "export", "--out", "/proc/x.csv"], r"/proc/x\.csv", []


@case("runs show 999 (no such run)")
def _(tmp):
    return ["runs", "show", "999"], r"999", []


@case("check: --baseline median")
def _(tmp):
    from cowdemo.runs import RunStore

    RunStore().record("evaluation", "m", {"AP50": 0.5}, dataset="cows")
    return (["check", "--dataset", "cows", "--model", "m", "--current", "latest", "--baseline",
             "median"], r"median", [])


# --- names, export and training ------------------------------------------------------------
@case("import --name ../escape")
def _(tmp):
    folder = dataset_folder(tmp, "src")
    return import_args(folder, "--name", "../escape"), r"\.\./escape", []


@case("import --name with a slash")
def _(tmp):
    folder = dataset_folder(tmp, "src")
    return import_args(folder, "--name", "a/b"), r"a/b", []


@case("datasets show: no such dataset")
def _(tmp):
    return ["datasets", "show", "nope"], r"nope", []


@case("export --overwrite onto a folder an export did not write")
def _(tmp):
    saved_dataset(tmp, "herd")
    mine = tmp / "my-folder"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    return (["datasets", "export", "herd", str(mine), "--overwrite"],
            r"my-folder.*(not written by|did not write)", [mine / "thesis.txt"])


@case("export --overwrite onto the store's own dataset folder")
def _(tmp):
    folder = saved_dataset(tmp, "herd")
    return (["datasets", "export", "herd", str(folder), "--overwrite"], r"herd",
            [folder / "annotations.json"])


@case("export: a dataset that does not exist")
def _(tmp):
    return ["datasets", "export", "ghost", str(tmp / "x")], r"ghost", []


@case("train --out ../../x (outside checkpoints/)")
def _(tmp):
    ds = dataset_folder(tmp)
    return (["train", "--dataset", str(ds), "--out", "../../x", "--iterations", "1"],
            r"\.\./\.\./x", [])


@case("train --iterations 0")
def _(tmp):
    ds = dataset_folder(tmp)
    return ["train", "--dataset", str(ds), "--iterations", "0"], r"iterations", []


@case("unknown subcommand")
def _(tmp):
    return ["fly"], r"invalid choice: 'fly'", []


@case("predict without any path")
def _(tmp):
    return ["predict"], r"the following arguments are required: paths", []


# --- the runner -------------------------------------------------------------------------------
def fingerprint(paths: list[Path]) -> dict[str, str]:
    out = {}
    for path in paths:
        for p in [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]:
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file()
                           else "dir" if p.is_dir() else "missing")
    return out


def run_in_process(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:
            err.write(traceback.format_exc())
            code = -1
    return code, err.getvalue()


class Hang(Exception):
    pass


def run_with_alarm(argv: list[str], seconds: int = 20) -> tuple[int, str]:
    """In this process, but interrupted after ``seconds``: a blocking open() of a FIFO is a
    system call SIGALRM breaks out of (a hang fails the row instead of the whole run)."""

    def ring(signum, frame):
        raise Hang(f"HANG: no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        return run_in_process(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def bad_env(tmp_path, monkeypatch) -> Path:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("COWDEMO_RUNS_DB", f"sqlite:///{tmp_path / 'data' / 'runs.sqlite'}")
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, bad_env):
    case_ = CASES[name]
    argv, expected, keep = case_.make(bad_env)
    before = fingerprint(keep)
    if case_.may_hang:
        code, stderr = run_with_alarm(argv)
    else:
        code, stderr = run_in_process(argv)
    assert "Traceback" not in stderr, stderr
    assert code == 2, f"exit {code}: {stderr}"
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1, stderr
    assert re.search(expected, errors[0]), f"{errors[0]!r} does not match {expected!r}"
    assert fingerprint(keep) == before, "a file that was there before was changed or lost"
    assert not Path("/tmp/cowdemo-pwned").exists()


def test_the_table_is_big_enough():
    assert len(CASES) >= 60


# --- the cases that were wrong results or lost data, checked by what they leave ------------------
def test_a_bad_checkpoint_is_that_model_unavailable_and_others_still_work(bad_env):
    folder = Path(os.environ["COWDEMO_CHECKPOINTS"])
    bad_checkpoint(bad_env, "badclasses", classes=3)
    bad_checkpoint(bad_env, "badmeta", metadata="oops")
    (folder / "junk.pt").write_bytes(os.urandom(3000))
    (folder / "yolox_nano.onnx").symlink_to(yolox(bad_env))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["models", "--device", "cpu"]) == 0, err.getvalue()
    listing = out.getvalue()
    for name in ("badclasses", "badmeta", "junk"):
        line = next(ln for ln in listing.splitlines() if ln.startswith(name))
        assert "unavailable" in line
    assert re.search(r"^yolox_nano\s+ready", listing, re.M)
    img = bad_env / "cow.png"
    img.write_bytes(png_bytes())
    code, err_text = run_in_process(["predict", str(img), "--model", "yolox_nano", "--device",
                                     "cpu", "--out", str(bad_env / "out")])
    assert code == 0, err_text
    assert (bad_env / "out" / "predictions.json").is_file()


def test_a_model_path_is_that_file_even_when_a_registry_model_shares_its_stem(bad_env):
    """checkpoints/yolox_nano.onnx is broken; elsewhere/yolox_nano.onnx is a real model: the run
    is of the file given (its sha256), never of the registry entry with the same stem."""
    from cowdemo.runs import RunStore, file_sha256

    (Path(os.environ["COWDEMO_CHECKPOINTS"]) / "yolox_nano.onnx").write_bytes(os.urandom(4000))
    (bad_env / "elsewhere").mkdir()
    given = bad_env / "elsewhere" / "yolox_nano.onnx"
    given.write_bytes(yolox(bad_env).read_bytes())
    ds = dataset_folder(bad_env)
    code, err = run_in_process(["evaluate", "--dataset", str(ds), "--model", str(given),
                                "--device", "cpu"])
    assert code == 0, err
    (run,) = RunStore().list()
    assert run.weights_sha256 == file_sha256(given)
    code, err = run_in_process(["check", "--dataset", str(ds), "--model", str(given),
                                "--current", "latest"])
    assert code == 0, err


def test_predict_gives_inputs_sharing_a_stem_distinct_drawn_images(bad_env):
    for rel in ("a/cow.jpg", "b/cow.jpg"):
        (bad_env / rel).parent.mkdir(exist_ok=True)
        (bad_env / rel).write_bytes(jpeg_bytes())
    (bad_env / "cow.png").write_bytes(png_bytes())
    code, err = run_in_process(["predict", "a/cow.jpg", "b/cow.jpg", "cow.png", "--model",
                                str(yolox(bad_env)), "--device", "cpu", "--out", "out"])
    assert code == 0, err
    drawn = sorted(p.name for p in (bad_env / "out" / "annotated").iterdir())
    assert drawn == ["cow-2.png", "cow-3.png", "cow.png"]
    rows = json.loads((bad_env / "out" / "images.json").read_text())["images"]
    assert sorted(r["annotated"] for r in rows) == [f"annotated/{n}" for n in drawn]


def test_export_overwrite_replaces_an_earlier_export_only(bad_env):
    saved_dataset(bad_env, "herd")
    out = bad_env / "export"
    assert run_in_process(["datasets", "export", "herd", str(out)])[0] == 0
    assert (out / ".cowdemo-export").is_file()
    (out / "stale.txt").write_text("from an earlier export")
    code, err = run_in_process(["datasets", "export", "herd", str(out), "--overwrite"])
    assert code == 0, err
    assert not (out / "stale.txt").exists() and (out / "annotations.json").is_file()


def _import_proc(source: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cowdemo.cli", "datasets", "import",
                             str(source), "--name", "herd", "--replace"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_imports_into_one_name_at_once_leave_one_of_them_whole(bad_env):
    from cowdemo.datasets.coco import CocoDataset
    from cowdemo.datasets.store import DatasetStore

    a = dataset_folder(bad_env / "src", "a", coco(3))
    b = dataset_folder(bad_env / "src", "b", coco(5))
    env = dict(os.environ)
    procs = [_import_proc(a, env), _import_proc(b, env)]
    for proc in procs:
        proc.communicate(timeout=120)
    assert [p.returncode for p in procs] == [0, 0]
    herd = DatasetStore().get("herd")
    assert len(herd.image_ids) in (3, 5)
    source = CocoDataset.load(a if len(herd.image_ids) == 3 else b)
    assert herd.num_boxes() == source.num_boxes()
    for image_id in herd.image_ids:
        assert herd.image_path(image_id).is_file()
    assert not [p for p in DatasetStore().root.iterdir() if p.name.startswith((".new-",
                                                                                ".import-"))]


def test_kill_9_during_an_import_keeps_the_old_dataset_and_cleans_up_at_next_open(bad_env):
    import time

    from cowdemo.datasets.store import DatasetStore

    folder = saved_dataset(bad_env, "herd")
    before = _snapshot(folder)
    many = coco(300)
    big = a_zip(bad_env, {"annotations.json": json.dumps(many).encode(),
                          **{im["file_name"]: png_bytes(seed=im["id"]) for im in many["images"]}},
                "big.zip")
    proc = _import_proc(big, dict(os.environ))
    root = DatasetStore().root
    deadline = time.monotonic() + 120
    staging: list[Path] = []
    while not staging and proc.poll() is None and time.monotonic() < deadline:
        staging = [p for p in root.iterdir() if p.name.startswith((f".import-{proc.pid}-",
                                                                     f".new-{proc.pid}-"))]
        time.sleep(0.01)  # polling for the staging folder, not a timed wait
    proc.kill()  # SIGKILL: no clean-up code runs
    proc.communicate()
    assert staging, "the import ended before it could be killed mid-way"
    assert _snapshot(folder) == before  # the previous content, whole and readable
    assert DatasetStore().get("herd").num_boxes() == 2
    assert not any(p.exists() for p in staging), "the next store open removes what it left"
