"""YOLO txt labels: one ``labels/<stem>.txt`` per annotated image with ``class x_center
y_center width height`` normalised by the image size, class names in ``classes.txt`` (or
``obj.names``, or an Ultralytics ``data.yaml``). An image without a label file is not annotated
yet; an empty file means "no objects". YOLO has no crowd flags. Use it through
:mod:`cowdemo.datasets.formats`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.importing import (
    DatasetBuilder,
    ImportReport,
    check_class_names,
    clip_box,
    copy_images,
    dataset_name,
    export_names,
    find_image_files,
    finish,
    is_done,
    probe_image,
    read_class_list,
    relative,
    staged_folder,
    stem_of,
)

#: How far a normalised YOLO value may leave [0, 1] (rounding in other tools' writers).
YOLO_TOLERANCE = 1e-6
CLASS_FILES = ("classes.txt", "obj.names", "classes.names", "labels.txt")
YAML_FILES = ("data.yaml", "dataset.yaml", "data.yml")


def _yolo_label_paths(image: Path, root: Path) -> list[Path]:
    rel = image.relative_to(root)
    parts = list(rel.parts)
    out = [image.with_suffix(".txt")]
    for i in range(len(parts) - 2, -1, -1):
        if parts[i].lower() == "images":
            swapped = [*parts[:i], "labels" if parts[i] == "images" else "Labels", *parts[i + 1:]]
            out.append((root / Path(*swapped)).with_suffix(".txt"))
            break
    out.append(root / "labels" / Path(*parts).with_suffix(".txt"))
    out.append(root / "labels" / (image.stem + ".txt"))
    return out


def _yolo_classes(root: Path, report: ImportReport,
                  classes: Sequence[str] | None) -> list[str] | None:
    if classes is not None:
        return check_class_names(list(classes), "the class list", report)
    for name in CLASS_FILES:
        if (root / name).is_file():
            return read_class_list(root / name, report)
    for name in YAML_FILES:
        if (root / name).is_file():
            try:
                names = parse_yaml_names((root / name).read_text(encoding="utf-8-sig"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                report.error(f"{name} could not be read ({exc})")
                return None
            if names is None:
                report.error(f"{name} has no 'names' list this importer can read: add "
                             "classes.txt (one class per line)")
                return None
            return check_class_names(names, name, report)
    report.error("no classes.txt, obj.names or data.yaml found: YOLO labels hold class numbers "
                 "only, so give the class names (classes.txt, one per line, or --classes)")
    return None


def read_yolo(source: str | Path, classes: Sequence[str] | None = None,
              name: str | None = None) -> tuple[CocoDataset | None, ImportReport]:
    """A YOLO folder: images (anywhere below, typically ``images/``), one ``.txt`` per image
    (beside it or in the matching ``labels/`` folder) and the class names (``classes.txt``,
    ``obj.names`` or ``data.yaml``, or ``classes``)."""
    root = Path(source)
    report = ImportReport(root.name, "yolo")
    if not root.is_dir():
        report.error(f"{root}: no such folder (a YOLO dataset is a folder, or a zip of one)")
        return None, report
    class_names = _yolo_classes(root, report, classes)
    if class_names is None:
        return None, report
    builder = DatasetBuilder(class_names, report)
    used_labels: set[Path] = set()
    unlabelled = 0
    for image_path in find_image_files(root):
        rel = relative(image_path, root)
        probe = probe_image(image_path)
        if isinstance(probe, str):
            report.error(f"{rel}: {probe}")
            continue
        label_path = next((p for p in _yolo_label_paths(image_path, root) if p.is_file()), None)
        image = builder.add_image(rel, probe, probe.width, probe.height, label_path is not None)
        if label_path is None:
            unlabelled += 1
            continue
        used_labels.add(label_path.resolve())
        _read_yolo_labels(label_path, root, image, builder, class_names)
    if unlabelled:
        report.warn(f"{unlabelled} image(s) have no label file: imported as not annotated yet")
    # top-level text files that are not labels: class lists, Ultralytics' image lists, notes
    ignore = {n.lower() for n in CLASS_FILES} | {
        "readme.txt", "notes.txt", "license.txt", "train.txt", "val.txt", "valid.txt", "test.txt"}
    for txt in sorted(root.rglob("*.txt")):
        rel_parts = txt.relative_to(root).parts
        if (txt.name.lower() in ignore and len(rel_parts) == 1) or any(
            p.startswith(".") or p.lower() == "__macosx" for p in rel_parts
        ):
            continue
        if txt.resolve() not in used_labels:
            report.error(f"{relative(txt, root)}: label file without an image (unknown image "
                         f"'{txt.stem}')")
    return finish(report, root, builder.coco, name or dataset_name(root))


def _read_yolo_labels(path: Path, root: Path, image: dict[str, Any], builder: DatasetBuilder,
                      class_names: list[str]) -> None:
    report = builder.report
    rel = relative(path, root)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        report.error(f"{rel} could not be read as text ({exc})")
        return
    width, height = image["width"], image["height"]
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{rel} line {number}"
        if len(fields) != 5:
            report.error(f"{where}: expected 5 values 'class x_center y_center width height', "
                         f"got {len(fields)}" + (" (polygon labels are not supported)"
                                                 if len(fields) > 6 else ""))
            continue
        try:
            class_index = int(fields[0])
            xc, yc, w, h = (float(v) for v in fields[1:])
        except ValueError:
            report.error(f"{where}: '{line.strip()}' is not a class number and four numbers")
            continue
        if not 0 <= class_index < len(class_names):
            report.error(f"{where}: unknown class {class_index} (classes 0..{len(class_names) - 1}"
                         f": {', '.join(class_names)})")
            continue
        values = (xc, yc, w, h)
        if not all(math.isfinite(v) for v in values):
            report.error(f"{where}: a value is not a finite number")
            continue
        if w <= 0 or h <= 0:
            report.error(f"{where}: box has zero area (width {fields[3]}, height {fields[4]})")
            continue
        tol = YOLO_TOLERANCE
        if (xc - w / 2 < -tol or yc - h / 2 < -tol or xc + w / 2 > 1 + tol
                or yc + h / 2 > 1 + tol):
            report.error(f"{where}: box leaves the image (YOLO values are fractions of the image "
                         f"size, 0..1): {' '.join(fields[1:])}")
            continue
        xyxy = clip_box([(xc - w / 2) * width, (yc - h / 2) * height,
                         (xc + w / 2) * width, (yc + h / 2) * height], width, height)
        builder.add_box(image, class_names[class_index], xyxy, where)


def write_yolo(dataset: CocoDataset, dest: str | Path, with_images: bool = True,
               overwrite: bool = False) -> Path:
    """YOLO export: ``images/``, ``labels/<stem>.txt`` for every annotated image (empty when it
    has no boxes), ``classes.txt`` and ``data.yaml``. Crowd flags are not kept (YOLO has none)."""
    names = export_names(dataset)
    classes = list(dataset.classes)
    index = {name: i for i, name in enumerate(classes)}
    category_names = {c["id"]: c["name"] for c in dataset.categories}
    with staged_folder(Path(dest), overwrite) as stage:
        (stage / "labels").mkdir()
        for image in dataset.images:
            if not is_done(image):
                continue
            width, height = float(image["width"]), float(image["height"])
            rows = []
            for ann in dataset.annotations(image["id"]):
                x, y, w, h = (float(v) for v in ann["bbox"])
                values = ((x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
                cls = index[category_names[ann["category_id"]]]
                rows.append(f"{cls} " + " ".join(f"{v:.12g}" for v in values))
            label = stage / "labels" / (stem_of(names[image["id"]]) + ".txt")
            label.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
        (stage / "classes.txt").write_text("".join(c + "\n" for c in classes), encoding="utf-8")
        yaml = (f"# YOLO dataset written by cowdemo\npath: .\ntrain: images\nval: images\n"
                f"nc: {len(classes)}\nnames: {json.dumps(classes, ensure_ascii=False)}\n")
        (stage / "data.yaml").write_text(yaml, encoding="utf-8")
        if with_images:
            copy_images(dataset, names, stage / "images")
    return Path(dest)


def parse_yaml_names(text: str) -> list[str] | None:
    """The ``names`` of an Ultralytics data.yaml (flow list, block list or index mapping), read
    without a YAML library; None when there is no ``names`` key this can read."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^names\s*:\s*(.*?)\s*(#.*)?$", line)
        if not match:
            continue
        rest = match.group(1)
        if rest.startswith("["):
            inner = rest.strip("[]")
            return [_unquote(part) for part in inner.split(",") if part.strip()]
        if rest.startswith("{"):
            inner = rest.strip("{}")
            pairs = [part.split(":", 1) for part in inner.split(",") if part.strip()]
            return [_unquote(v) for _, v in sorted(pairs, key=lambda kv: int(kv[0].strip()))]
        items: list[tuple[int, str]] = []
        for follow in lines[i + 1:]:
            if not follow.strip() or follow.strip().startswith("#"):
                continue
            if not follow.startswith((" ", "\t", "-")):
                break
            item = follow.strip()
            if item.startswith("-"):
                items.append((len(items), _unquote(item[1:])))
            elif re.match(r"^\d+\s*:", item):
                key, value = item.split(":", 1)
                items.append((int(key), _unquote(value)))
            else:
                break
        return [name for _, name in sorted(items)] if items else None
    return None


def _unquote(value: str) -> str:
    value = value.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
