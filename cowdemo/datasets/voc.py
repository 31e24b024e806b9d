"""Pascal VOC XML: one ``Annotations/<stem>.xml`` per annotated image, images in
``JPEGImages/``, the class order in ``classes.txt``. Coordinates follow the VOC devkit: 1-based
inclusive pixel indices (``xmin = x1 + 1``, ``xmax = x2`` for cowdemo's pixel-edge boxes); files
from tools that write 0-based values read with ``one_based=False``. ``difficult``,
``truncated``, ``occluded`` and ``pose`` are kept, and crowd boxes carry an extra
``<iscrowd>1</iscrowd>``. XML with a DOCTYPE or entities is refused. Use it through
:mod:`cowdemo.datasets.formats`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree

from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.importing import (
    BOUNDS_TOLERANCE_PX,
    DatasetBuilder,
    ImportReport,
    check_class_names,
    copy_images,
    dataset_name,
    export_names,
    find_image_files,
    finish,
    fmt,
    is_done,
    probe_image,
    read_class_list,
    relative,
    staged_folder,
    stem_of,
)


def _parse_xml(path: Path) -> ElementTree.Element | str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"could not be read ({exc.strerror})"
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return "declares a DOCTYPE or entities, which are refused (unsafe XML)"
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        return f"is not valid XML ({exc})"


def _voc_number(element: ElementTree.Element | None, tag: str) -> float | None:
    child = element.find(tag) if element is not None else None
    if child is None or child.text is None:
        return None
    try:
        value = float(child.text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_voc(source: str | Path, classes: Sequence[str] | None = None,
             name: str | None = None, images_dir: str | Path | None = None,
             one_based: bool = True) -> tuple[CocoDataset | None, ImportReport]:
    """A Pascal VOC folder: ``*.xml`` files (typically ``Annotations/``) and their images
    (``JPEGImages/``, beside the XML, or ``images_dir``). Class order comes from ``classes``,
    ``classes.txt``/``labels.txt``, or the names in the files (sorted)."""
    root = Path(source)
    report = ImportReport(root.name, "voc")
    if not root.is_dir():
        report.error(f"{root}: no such folder (a VOC dataset is a folder, or a zip of one)")
        return None, report
    xml_files = sorted(p for p in root.rglob("*.xml") if not any(
        part.startswith(".") or part.lower() == "__macosx" for part in p.relative_to(root).parts))
    parsed: list[tuple[Path, ElementTree.Element]] = []
    for xml_path in xml_files:
        tree = _parse_xml(xml_path)
        if isinstance(tree, str):
            report.error(f"{relative(xml_path, root)} {tree}")
        elif tree.tag != "annotation":
            report.error(f"{relative(xml_path, root)}: root element is <{tree.tag}>, expected "
                         "<annotation>")
        else:
            parsed.append((xml_path, tree))
    class_names = _voc_classes(root, parsed, report, classes)
    if class_names is None:
        return None, report
    search = [Path(images_dir)] if images_dir else []
    all_images = find_image_files(root) + (find_image_files(Path(images_dir)) if images_dir else [])
    by_name: dict[str, list[Path]] = {}
    for p in all_images:
        by_name.setdefault(p.name.lower(), []).append(p)
    builder = DatasetBuilder(class_names, report)
    claimed: dict[Path, str] = {}
    for xml_path, tree in parsed:
        rel = relative(xml_path, root)
        file_name = (tree.findtext("filename") or "").strip()
        if not file_name:
            report.error(f"{rel} is missing <filename>")
            continue
        image_path = _voc_image(xml_path, file_name, root, search, by_name)
        if image_path is None:
            report.error(f"{rel}: unknown image '{file_name}' (no such file in JPEGImages/, "
                         "beside the XML or in the images folder)")
            continue
        if image_path in claimed:
            report.error(f"{rel}: image '{file_name}' already has annotations in "
                         f"{claimed[image_path]} (duplicate)")
            continue
        claimed[image_path] = rel
        probe = probe_image(image_path)
        if isinstance(probe, str):
            report.error(f"{rel}: image {file_name}: {probe}")
            continue
        size = tree.find("size")
        width, height = _voc_number(size, "width"), _voc_number(size, "height")
        if size is not None and (width, height) != (None, None) and (
                (width, height) != (probe.width, probe.height)):
            report.error(f"{rel}: <size> says {fmt(width or 0)}x{fmt(height or 0)} but "
                         f"{file_name} is {probe.width}x{probe.height}")
            continue
        image = builder.add_image(relative(image_path, root), probe, probe.width, probe.height,
                                  True)
        _read_voc_objects(tree, rel, image, builder, one_based)
    unlabelled = [p for p in all_images if p not in claimed]
    if unlabelled and parsed:
        report.warn(f"{len(unlabelled)} image(s) have no XML file: imported as not annotated yet")
    builder.add_unannotated(unlabelled, root)
    return finish(report, root, builder.coco, name or dataset_name(root))


def _voc_classes(root: Path, parsed: list[tuple[Path, ElementTree.Element]],
                 report: ImportReport, classes: Sequence[str] | None) -> list[str] | None:
    if classes is not None:
        return check_class_names(list(classes), "the class list", report)
    for file_name in ("classes.txt", "labels.txt", "labelmap.txt"):
        path = root / file_name
        if path.is_file():
            if file_name == "labelmap.txt":  # CVAT: "name:color:parts:actions", '#' comments
                try:
                    lines = path.read_text(encoding="utf-8-sig").splitlines()
                except (OSError, UnicodeDecodeError) as exc:
                    report.error(f"{file_name} could not be read ({exc})")
                    return None
                names = [ln.split(":", 1)[0].strip() for ln in lines
                         if ln.strip() and not ln.startswith("#")]
                names = [n for n in names if n != "background"]
                return check_class_names(names, file_name, report)
            return read_class_list(path, report)
    found = sorted({(obj.findtext("name") or "").strip() for _, tree in parsed
                    for obj in tree.iter("object")} - {""})
    return found or ["cow"]


def _voc_image(xml_path: Path, file_name: str, root: Path, search: list[Path],
               by_name: dict[str, list[Path]]) -> Path | None:
    base = PurePosixPath(file_name.replace("\\", "/")).name
    candidates = [xml_path.parent / base, root / "JPEGImages" / base, root / "images" / base,
                  xml_path.parent.parent / "JPEGImages" / base, root / base]
    candidates += [folder / base for folder in search]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    matches = by_name.get(base.lower(), [])
    return matches[0] if len(matches) == 1 else None


def _read_voc_objects(tree: ElementTree.Element, rel: str, image: dict[str, Any],
                      builder: DatasetBuilder, one_based: bool) -> None:
    offset = 1.0 if one_based else 0.0
    for number, obj in enumerate(tree.iter("object"), start=1):
        where = f"{rel} object {number}"
        class_name = (obj.findtext("name") or "").strip()
        if not class_name:
            builder.report.error(f"{where} is missing <name>")
            continue
        box = obj.find("bndbox")
        values = [_voc_number(box, tag) for tag in ("xmin", "ymin", "xmax", "ymax")]
        if box is None or any(v is None for v in values):
            builder.report.error(f"{where} ({class_name}): <bndbox> needs numeric <xmin>, "
                                 "<ymin>, <xmax> and <ymax>")
            continue
        xmin, ymin, xmax, ymax = (float(v) for v in values)  # type: ignore[arg-type]
        if one_based and (xmin < 1 - BOUNDS_TOLERANCE_PX or ymin < 1 - BOUNDS_TOLERANCE_PX):
            builder.report.error(
                f"{where} ({class_name}): xmin/ymin {fmt(xmin)}, {fmt(ymin)} is below 1, but "
                "VOC coordinates are 1-based; if these files are 0-based, import them with "
                "voc_one_based=False (CLI: --voc-zero-based)")
            continue
        extra: dict[str, Any] = {}
        for tag in ("difficult", "truncated", "iscrowd", "occluded"):
            text = (obj.findtext(tag) or "").strip()
            if text in ("0", "1"):
                extra[tag] = int(text)
        pose = (obj.findtext("pose") or "").strip()
        if pose and pose != "Unspecified":
            extra["pose"] = pose
        builder.add_box(image, class_name, [xmin - offset, ymin - offset, xmax, ymax], where,
                        extra)


def _voc_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def voc_xml(image: dict[str, Any], file_name: str, annotations: list[dict[str, Any]],
            category_names: dict[int, str], one_based: bool = True) -> bytes:
    """One image's Pascal VOC annotation XML."""
    offset = 1.0 if one_based else 0.0
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "folder").text = "JPEGImages"
    ElementTree.SubElement(root, "filename").text = file_name
    source = ElementTree.SubElement(root, "source")
    ElementTree.SubElement(source, "database").text = "cowdemo"
    size = ElementTree.SubElement(root, "size")
    ElementTree.SubElement(size, "width").text = str(int(image["width"]))
    ElementTree.SubElement(size, "height").text = str(int(image["height"]))
    ElementTree.SubElement(size, "depth").text = "3"
    ElementTree.SubElement(root, "segmented").text = "0"
    for ann in annotations:
        x, y, w, h = (float(v) for v in ann["bbox"])
        obj = ElementTree.SubElement(root, "object")
        ElementTree.SubElement(obj, "name").text = category_names[ann["category_id"]]
        ElementTree.SubElement(obj, "pose").text = str(ann.get("pose", "Unspecified"))
        ElementTree.SubElement(obj, "truncated").text = str(int(ann.get("truncated", 0)))
        ElementTree.SubElement(obj, "difficult").text = str(int(ann.get("difficult", 0)))
        if ann.get("occluded") in (0, 1):
            ElementTree.SubElement(obj, "occluded").text = str(ann["occluded"])
        if ann.get("iscrowd"):
            ElementTree.SubElement(obj, "iscrowd").text = "1"
        box = ElementTree.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x + offset), ("ymin", y + offset), ("xmax", x + w),
                           ("ymax", y + h)):
            ElementTree.SubElement(box, tag).text = _voc_value(value)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_voc(dataset: CocoDataset, dest: str | Path, with_images: bool = True,
              overwrite: bool = False, one_based: bool = True) -> Path:
    """Pascal VOC export: ``Annotations/<stem>.xml`` per annotated image, ``JPEGImages/``,
    ``ImageSets/Main/default.txt`` and ``classes.txt``."""
    names = export_names(dataset)
    category_names = {c["id"]: c["name"] for c in dataset.categories}
    with staged_folder(Path(dest), overwrite) as stage:
        (stage / "Annotations").mkdir()
        listed = []
        for image in dataset.images:
            if not is_done(image):
                continue
            name = names[image["id"]]
            xml = voc_xml(image, name, dataset.annotations(image["id"]), category_names,
                          one_based)
            (stage / "Annotations" / f"{stem_of(name)}.xml").write_bytes(xml)
            listed.append(stem_of(name))
        (stage / "ImageSets" / "Main").mkdir(parents=True)
        (stage / "ImageSets" / "Main" / "default.txt").write_text(
            "".join(s + "\n" for s in listed), encoding="utf-8")
        (stage / "classes.txt").write_text("".join(c + "\n" for c in dataset.classes),
                                           encoding="utf-8")
        if with_images:
            copy_images(dataset, names, stage / "JPEGImages")
    return Path(dest)
