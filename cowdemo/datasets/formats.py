"""Import and export detection datasets: COCO JSON (with or without images), YOLO txt, Pascal VOC
XML, and zip archives of any of them. Every reader validates first and reports *every* problem,
one line each, in an :class:`ImportReport`; a report with errors gives no dataset, so nothing
gets written::

    dataset, report = read("labels.zip")              # format detected from the content
    if not report.ok:
        print("\\n".join(report.lines()))             # every problem, one line each
    dataset = load("cows/", fmt="yolo", classes=["cow"])   # raises ImportRejected instead
    export(dataset, "out/cows-voc", fmt="voc")           # a folder, written atomically
    data = zip_bytes(dataset, fmt="yolo")                # for a download button

Conventions (what each format carries)
    COCO: ``bbox`` is ``[x, y, width, height]`` in pixels (pixel-edge coordinates, like
    cowdemo's xyxy boxes); ids, ``iscrowd``, ``area``, segmentations and any extra fields are
    kept. A cowdemo ``done`` flag per image says whether it has been annotated; absent means done.
    YOLO: one ``labels/<stem>.txt`` per annotated image, ``class x_center y_center width height``
    normalised by the image size, classes in ``classes.txt`` (also ``data.yaml``). An image
    without a label file is not annotated yet; an empty label file means "no objects". YOLO
    cannot carry crowd flags. Coordinates are written with 12 significant digits.
    Pascal VOC: one ``Annotations/<stem>.xml`` per annotated image, images in ``JPEGImages/``,
    the class order in ``classes.txt``. ``xmin``/``ymin``/``xmax``/``ymax`` follow the VOC
    devkit: 1-based inclusive pixel indices, so a box covering pixel columns 10..19 (cowdemo
    ``x1 = 10, x2 = 20``) is ``xmin 11, xmax 20``. Files from tools that write 0-based values
    read correctly with ``voc_one_based=False``. ``difficult``/``truncated``/``pose`` are kept,
    and crowd boxes carry an extra ``<iscrowd>1</iscrowd>`` element.
    Zip: any of the above inside one archive (a single top folder is fine), or images alone.

Boxes are checked against their image: zero or negative area, or more than 1e-3 pixel outside
the image, is an error (overshoots within that are clipped to the edge).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from cowdemo.datasets.coco import ANNOTATIONS_FILE, CocoDataset
from cowdemo.datasets.importing import (
    BOUNDS_TOLERANCE_PX,
    DatasetBuilder,
    ImageProbe,
    ImportRejected,
    ImportReport,
    box_problem,
    check_class_names,
    check_dest,
    clip_box,
    copy_images,
    dataset_name,
    export_names,
    find_image_files,
    finish,
    is_done,
    is_int,
    is_number,
    probe_image,
    relative,
    safe_file_name,
    staged_folder,
)
from cowdemo.datasets.voc import read_voc, voc_xml, write_voc
from cowdemo.datasets.yolo import CLASS_FILES, YAML_FILES, parse_yaml_names, read_yolo, write_yolo
from cowdemo.errors import CowdemoError
from cowdemo.files import MAX_JSON_BYTES, atomic_write_bytes, require_regular_file

__all__ = [
    "BOUNDS_TOLERANCE_PX", "EXPORT_FORMATS", "FORMATS", "ImportRejected", "ImportReport",
    "box_problem", "check_coco", "clip_box", "coco_for_export", "detect_format", "export",
    "export_names", "extract_zip", "is_done", "json_bytes", "load", "opened", "parse_yaml_names",
    "read", "read_coco", "read_images", "read_voc", "read_yolo", "read_zip", "safe_file_name",
    "voc_xml", "write_coco", "write_voc", "write_yolo", "zip_bytes",
]

FORMATS: tuple[str, ...] = ("coco", "yolo", "voc", "zip")
#: Formats an export can write (a zip holds one of the first three).
EXPORT_FORMATS: tuple[str, ...] = ("coco", "yolo", "voc")
MAX_ZIP_MEMBERS = 200_000
#: An entry over MIN_BOMB_BYTES that unpacks more than MAX_ZIP_RATIO times its stored size is
#: refused (images hardly compress; COCO JSON about 10:1; 1 GiB of zeros in 1.5 MB is 700:1).
MAX_ZIP_RATIO = 100
MIN_BOMB_BYTES = 1 << 20
DEFAULT_MAX_ZIP_BYTES = 8 * 1024**3


# --- COCO ------------------------------------------------------------------------------------
def check_coco(coco: Any, where: str, report: ImportReport,
               classes: Sequence[str] | None = None) -> None:
    """Add every structural problem of a COCO instances dict to ``report``: missing fields,
    duplicate and unknown ids, unknown classes, zero-area and out-of-image boxes."""
    if not isinstance(coco, dict):
        report.error(f"{where}: expected a JSON object with images, annotations and categories")
        return
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(coco.get(k),
                                                                                     list)]
    for key in missing:
        report.error(f"{where}: '{key}' is missing or not a list")
    if missing:
        return
    category_ids = _check_categories(coco["categories"], where, report, classes)
    sizes = _check_images(coco["images"], where, report)
    ann_ids: Counter = Counter()
    for index, ann in enumerate(coco["annotations"]):
        label = f"{where}: annotation #{index}"
        if not isinstance(ann, dict):
            report.error(f"{label} is not an object")
            continue
        if "id" in ann:
            label += f" (id {ann['id']})"
        for key in ("id", "image_id", "category_id", "bbox"):
            if key not in ann:
                report.error(f"{label} is missing '{key}'")
        if "id" in ann:
            if is_int(ann["id"]):
                ann_ids[int(ann["id"])] += 1
            else:
                report.error(f"{label}: 'id' must be a whole number")
        if "image_id" in ann and (not is_int(ann["image_id"])
                                  or int(ann["image_id"]) not in sizes):
            report.error(f"{label} names unknown image id {ann['image_id']!r}")
        if "category_id" in ann and (not is_int(ann["category_id"])
                                     or int(ann["category_id"]) not in category_ids):
            report.error(f"{label} names unknown category id {ann['category_id']!r} "
                         "(unknown class)")
        if "iscrowd" in ann and ann["iscrowd"] not in (0, 1):
            report.error(f"{label}: 'iscrowd' must be 0 or 1, got {ann['iscrowd']!r}")
        if "area" in ann and not is_number(ann["area"]):
            report.error(f"{label}: 'area' must be a number")
        if "bbox" not in ann:
            continue
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
            report.error(f"{label}: 'bbox' must be four numbers [x, y, width, height], "
                         f"got {bbox!r}")
            continue
        size = sizes.get(int(ann["image_id"])) if is_int(ann.get("image_id")) else None
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0:
            report.error(f"{label}: bbox {bbox} has zero area")
        elif size is not None and size[0] is not None:
            problem = box_problem([x, y, x + w, y + h], size[0], size[1])
            if problem:
                report.error(f"{label}: {problem}")
    _report_repeats(ann_ids, "annotation id", where, report)


def _report_repeats(counts: Counter, what: str, where: str, report: ImportReport,
                    quoted: bool = False) -> None:
    """One error per value used more than once: "<where>: image id 3 is used 2 times"."""
    for value, count in sorted(counts.items()):
        if count > 1:
            shown = f"'{value}'" if quoted else value
            report.error(f"{where}: {what} {shown} is used {count} times")


def _check_categories(categories: list, where: str, report: ImportReport,
                      classes: Sequence[str] | None) -> set[int]:
    ids: Counter = Counter()
    names: Counter = Counter()
    for index, cat in enumerate(categories):
        label = f"{where}: category #{index}"
        if not isinstance(cat, dict):
            report.error(f"{label} is not an object")
            continue
        if not is_int(cat.get("id")):
            report.error(f"{label} is missing 'id' or it is not a whole number")
        else:
            ids[int(cat["id"])] += 1
        if not isinstance(cat.get("name"), str) or not cat["name"].strip():
            report.error(f"{label} is missing 'name'")
        else:
            names[cat["name"]] += 1
            if classes is not None and cat["name"] not in classes:
                report.error(f"{label}: unknown class '{cat['name']}' "
                             f"(allowed: {', '.join(classes)})")
    _report_repeats(ids, "category id", where, report)
    _report_repeats(names, "category name", where, report, quoted=True)
    if not categories:
        report.error(f"{where}: 'categories' is empty: a dataset needs at least one class")
    return set(ids)


def _check_images(images_list: list, where: str,
                  report: ImportReport) -> dict[int, tuple[int | None, int | None]]:
    sizes: dict[int, tuple[int | None, int | None]] = {}
    ids: Counter = Counter()
    names: Counter = Counter()
    for index, image in enumerate(images_list):
        label = f"{where}: image #{index}"
        if not isinstance(image, dict):
            report.error(f"{label} is not an object")
            continue
        if "id" in image:
            label += f" (id {image['id']})"
        if not is_int(image.get("id")):
            report.error(f"{label} is missing 'id' or it is not a whole number")
            continue
        ids[int(image["id"])] += 1
        if not isinstance(image.get("file_name"), str) or not image["file_name"].strip():
            report.error(f"{label} is missing 'file_name'")
        else:
            names[image["file_name"]] += 1
        width, height = image.get("width"), image.get("height")
        if width is None and height is None:
            sizes[int(image["id"])] = (None, None)  # taken from the image file, if there is one
        elif not (is_int(width) and is_int(height) and width > 0 and height > 0):
            report.error(f"{label}: 'width' and 'height' must be positive whole numbers, got "
                         f"{width!r} x {height!r}")
            sizes[int(image["id"])] = (None, None)
        else:
            sizes[int(image["id"])] = (int(width), int(height))
        if "done" in image and not isinstance(image["done"], bool):
            report.error(f"{label}: 'done' must be true or false")
    _report_repeats(ids, "image id", where, report)
    for name, count in sorted(names.items()):
        if count > 1:
            report.error(f"{where}: file_name '{name}' is used by {count} images")
    return sizes


def _coco_candidates(file_name: str, json_dir: Path, images_dir: Path | None) -> list[Path]:
    name = PurePosixPath(file_name.replace("\\", "/"))
    rel = Path(*[p for p in name.parts if p not in ("..", "/", "")]) if name.parts else Path()
    bases = [images_dir] if images_dir else []
    bases += [json_dir, json_dir / "images", json_dir.parent / "images"]
    out: list[Path] = []
    for base in bases:
        out += [base / rel, base / name.name]
    return out


def read_coco(source: str | Path, images_dir: str | Path | None = None,
              classes: Sequence[str] | None = None,
              name: str | None = None) -> tuple[CocoDataset | None, ImportReport]:
    """A COCO instances JSON file (or a folder with ``annotations.json``), with or without its
    images. Images are looked for in ``images_dir``, beside the JSON and in ``images/``. When
    ``images_dir`` is given, or some images are found, every image must be found and readable
    and its size must match the JSON; when none is found the boxes are imported alone.
    ``classes``, if given, are the only class names allowed."""
    path = Path(source)
    if path.is_dir():
        path = _find_coco_json(path) or path / ANNOTATIONS_FILE
    report = ImportReport(str(Path(source).name), "coco")
    try:
        if path.exists():
            require_regular_file(path, "COCO JSON file")
        size = path.stat().st_size if path.exists() else 0
        if size > MAX_JSON_BYTES:
            report.error(f"{path.name} is too large for COCO JSON ({size / 1024**3:.1f} GB)")
            return None, report
        coco = json.loads(path.read_text(encoding="utf-8-sig"))
    except CowdemoError as exc:
        report.error(str(exc))
        return None, report
    except FileNotFoundError:
        report.error(f"{path}: no such file (expected a COCO JSON file or a folder with "
                     f"{ANNOTATIONS_FILE})")
        return None, report
    except (OSError, UnicodeDecodeError) as exc:
        report.error(f"{path.name} could not be read ({exc})")
        return None, report
    except json.JSONDecodeError as exc:
        report.error(f"{path.name} is not valid JSON ({exc})")
        return None, report
    except RecursionError:
        report.error(f"{path.name} is nested too deeply to be COCO JSON")
        return None, report
    where = path.name
    check_coco(coco, where, report, classes)
    if report.errors:
        return None, report
    coco = json.loads(json.dumps(coco))  # a private copy: the caller's dict is never changed
    json_dir = path.parent
    folder = Path(images_dir) if images_dir is not None else None
    if folder is not None and not folder.is_dir():
        report.error(f"{folder}: no such folder of images")
        return None, report
    found: dict[int, Path] = {}
    for image in coco["images"]:
        for candidate in _coco_candidates(image["file_name"], json_dir, folder):
            if candidate.is_file():
                found[int(image["id"])] = candidate
                break
    with_images = folder is not None or bool(found)
    if not with_images:
        report.warn("no image files found beside the JSON: imported the boxes without images "
                    "(add the images later with the same file names)")
    for image in coco["images"]:
        image_id = int(image["id"])
        label = f"{where}: image id {image_id} ({image['file_name']})"
        probe: ImageProbe | None = None
        if image_id in found:
            result = probe_image(found[image_id])
            if isinstance(result, str):
                report.error(f"{label}: {result}")
                continue
            probe = result
            image["file_name"] = relative(found[image_id], json_dir)
            image["sha256"] = probe.sha256
        elif with_images:
            report.error(f"{label}: image file not found")
            continue
        width, height = image.get("width"), image.get("height")
        if width is None:
            if probe is None:
                report.error(f"{label} is missing 'width' and 'height' and has no image file")
                continue
            image["width"], image["height"] = probe.width, probe.height
        elif probe is not None and (probe.width, probe.height) != (int(width), int(height)):
            turned = (probe.height, probe.width) == (int(width), int(height))
            report.error(
                f"{label}: the file is {probe.width}x{probe.height} but the JSON says "
                f"{int(width)}x{int(height)}" + (" (EXIF rotation?)" if turned else "")
            )
        image.setdefault("done", True)
    if report.errors:
        return None, report
    sizes = {int(im["id"]): (im["width"], im["height"]) for im in coco["images"]}
    for index, ann in enumerate(coco["annotations"]):
        x, y, w, h = (float(v) for v in ann["bbox"])
        width, height = sizes[int(ann["image_id"])]
        problem = box_problem([x, y, x + w, y + h], width, height)
        if problem:  # images whose size came from the file are checked here
            report.error(f"{where}: annotation #{index} (id {ann['id']}): {problem}")
            continue
        x1, y1, x2, y2 = clip_box([x, y, x + w, y + h], width, height)
        if [x1, y1, x2 - x1, y2 - y1] != [x, y, w, h]:
            ann["bbox"] = [x1, y1, x2 - x1, y2 - y1]
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", ann["bbox"][2] * ann["bbox"][3])
    return finish(report, json_dir, coco, name or dataset_name(Path(source)))


def _find_coco_json(folder: Path) -> Path | None:
    preferred = folder / ANNOTATIONS_FILE
    if preferred.is_file():
        return preferred
    for candidate in sorted(folder.rglob("*.json")):
        if any(p.startswith(".") or p.lower() == "__macosx" for p in
               candidate.relative_to(folder).parts):
            continue
        try:
            with open(candidate, "rb") as handle:
                head = handle.read(1 << 16)
        except OSError:
            continue
        if b'"images"' in head or b'"annotations"' in head or b'"categories"' in head:
            return candidate
    return None


def write_coco(dataset: CocoDataset, dest: str | Path, with_images: bool = True,
               overwrite: bool = False) -> Path:
    """COCO export: a folder with ``annotations.json`` and ``images/`` (``file_name`` is the
    image's base name, as in COCO's own files), or, without images, ``dest`` as a single JSON
    file (a ``.json`` path) or a folder with just ``annotations.json``."""
    dest = Path(dest)
    names = export_names(dataset)
    coco = coco_for_export(dataset, names)
    if not with_images and dest.suffix.lower() == ".json":
        check_dest(dest, overwrite)
        atomic_write_bytes(dest, json_bytes(coco))
        return dest
    with staged_folder(dest, overwrite) as stage:
        atomic_write_bytes(stage / ANNOTATIONS_FILE, json_bytes(coco))
        if with_images:
            copy_images(dataset, names, stage / "images")
    return dest


def coco_for_export(dataset: CocoDataset, names: dict[int, str] | None = None) -> dict[str, Any]:
    """The dataset's COCO dict with ``file_name`` set to each image's export name."""
    names = names or export_names(dataset)
    coco = json.loads(json.dumps(dataset.coco))
    for image in coco["images"]:
        image["file_name"] = names[int(image["id"])]
    return coco


def json_bytes(coco: dict[str, Any]) -> bytes:
    return json.dumps(coco, indent=1, ensure_ascii=False).encode("utf-8")


# --- images only ------------------------------------------------------------------------------
def read_images(source: str | Path, classes: Sequence[str] | None = None,
                name: str | None = None) -> tuple[CocoDataset | None, ImportReport]:
    """A folder of images without labels: a dataset to annotate (nothing marked done)."""
    root = Path(source)
    report = ImportReport(root.name, "images")
    class_names = check_class_names(list(classes or ["cow"]), "the class list", report)
    if class_names is None:
        return None, report
    builder = DatasetBuilder(class_names, report)
    builder.add_unannotated(find_image_files(root), root)
    return finish(report, root, builder.coco, name or dataset_name(root))


# --- zip -------------------------------------------------------------------------------------
def max_zip_bytes() -> int:
    try:
        return int(os.environ.get("COWDEMO_MAX_ZIP_BYTES", DEFAULT_MAX_ZIP_BYTES))
    except ValueError:
        return DEFAULT_MAX_ZIP_BYTES


def extract_zip(source: str | Path | BinaryIO, dest: Path, report: ImportReport) -> Path | None:
    """Unpack a zip safely into ``dest``: no absolute paths, no ``..``, no links, a size limit
    (COWDEMO_MAX_ZIP_BYTES, default 8 GiB); the folder holding the data (a single top folder is
    stepped into), or None with the problems in ``report``."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        report.error(f"not a readable zip file ({exc})")
        return None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            report.error(f"the zip holds {len(members):,} entries, over the limit of "
                         f"{MAX_ZIP_MEMBERS:,}")
            return None
        total = sum(m.file_size for m in members)
        if total > max_zip_bytes():
            report.error(f"the zip unpacks to {total:,} bytes, over the limit of "
                         f"{max_zip_bytes():,} (COWDEMO_MAX_ZIP_BYTES)")
            return None
        for member in members:
            parts = PurePosixPath(member.filename.replace("\\", "/")).parts
            mode = member.external_attr >> 16
            ratio = member.file_size / max(member.compress_size, 1)
            if member.file_size > MIN_BOMB_BYTES and ratio > MAX_ZIP_RATIO:
                report.error(f"zip entry '{member.filename}' unpacks {ratio:,.0f} times larger "
                             f"than it is stored ({member.file_size:,} bytes), over the "
                             f"compression ratio limit of {MAX_ZIP_RATIO}:1: a zip bomb?")
                continue
            if member.filename.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                report.error(f"zip entry '{member.filename}' points outside the archive")
            elif (mode & 0o170000) == 0o120000:
                report.error(f"zip entry '{member.filename}' is a symbolic link (refused)")
        if report.errors:
            return None
        for member in members:
            parts = PurePosixPath(member.filename.replace("\\", "/")).parts
            if not parts or parts[0] == "__MACOSX" or member.is_dir():
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
                report.error(f"zip entry '{member.filename}' could not be unpacked ({exc})")
                return None
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def detect_format(folder: Path) -> str:
    """Which format a folder holds: coco, voc, yolo, or images (no labels)."""
    if _find_coco_json(folder) is not None:
        return "coco"
    if any(True for _ in folder.rglob("*.xml")):
        return "voc"
    special = {n.lower() for n in CLASS_FILES} | {n.lower() for n in YAML_FILES}
    if any(p.name.lower() in special for p in folder.iterdir()) or any(
        p.name.lower() not in special for p in folder.rglob("*.txt")
    ):
        return "yolo"
    return "images"


def read_zip(source: str | Path | BinaryIO, workdir: str | Path,
             fmt: str = "auto", classes: Sequence[str] | None = None, name: str | None = None,
             voc_one_based: bool = True) -> tuple[CocoDataset | None, ImportReport]:
    """A zip of images + labels in any format (detected unless ``fmt`` is given), unpacked into
    ``workdir``, which must outlive the returned dataset (its images are read from there)."""
    label = Path(source).name if isinstance(source, (str, Path)) else "upload.zip"
    report = ImportReport(label, "zip")
    folder = extract_zip(source, Path(workdir), report)
    if folder is None:
        return None, report
    inner = detect_format(folder) if fmt in ("auto", "zip") else fmt
    default_name = name or (dataset_name(Path(label)) if isinstance(source, (str, Path))
                            else None)
    dataset, inner_report = _read_folder(folder, inner, classes, default_name, None, voc_one_based)
    inner_report.source, inner_report.format = label, f"zip/{inner}"
    return dataset, inner_report


def _read_folder(folder: Path, fmt: str, classes: Sequence[str] | None, name: str | None,
                 images_dir: str | Path | None,
                 voc_one_based: bool) -> tuple[CocoDataset | None, ImportReport]:
    if fmt == "coco":
        return read_coco(folder, images_dir, classes, name)
    if fmt == "yolo":
        return read_yolo(folder, classes, name)
    if fmt == "voc":
        return read_voc(folder, classes, name, images_dir, voc_one_based)
    if fmt == "images":
        return read_images(folder, classes, name)
    report = ImportReport(folder.name, fmt)
    report.error(f"unknown format '{fmt}' (choose one of auto, {', '.join(FORMATS)})")
    return None, report


# --- one entry point ---------------------------------------------------------------------------
def read(source: str | Path, fmt: str = "auto", *, classes: Sequence[str] | None = None,
         images_dir: str | Path | None = None, name: str | None = None,
         workdir: str | Path | None = None,
         voc_one_based: bool = True) -> tuple[CocoDataset | None, ImportReport]:
    """Read a dataset in any supported format: a ``.zip``, a COCO ``.json`` file, or a folder
    (COCO, YOLO, VOC or plain images, detected unless ``fmt`` says). A zip needs ``workdir``
    (see :func:`opened` for a version that cleans up after itself)."""
    path = Path(source)
    report = ImportReport(path.name, fmt)
    if not path.exists():
        report.error(f"{path}: no such file or folder")
        return None, report
    if not path.is_dir():
        try:
            require_regular_file(path, "file to import (a .zip, a COCO .json or a folder)")
        except CowdemoError as exc:
            report.error(str(exc))
            return None, report
    is_zip = path.is_file() and (fmt == "zip" or path.suffix.lower() == ".zip")
    if is_zip or (fmt in ("auto", "zip") and path.is_file() and zipfile.is_zipfile(path)):
        if workdir is None:
            raise ValueError("read() of a zip needs a workdir: use formats.opened() instead")
        return read_zip(path, workdir, "auto" if fmt == "zip" else fmt, classes, name,
                        voc_one_based)
    if path.is_file():
        if fmt not in ("auto", "coco") or (fmt == "auto" and path.suffix.lower() != ".json"):
            report.error(f"{path.name}: a single file can only be COCO JSON (.json) or a zip; "
                         "YOLO and VOC datasets are folders (import the folder or a zip of it)")
            return None, report
        return read_coco(path, images_dir, classes, name)
    inner = detect_format(path) if fmt == "auto" else fmt
    return _read_folder(path, inner, classes, name, images_dir, voc_one_based)


@contextlib.contextmanager
def opened(source: str | Path, fmt: str = "auto", *, classes: Sequence[str] | None = None,
           images_dir: str | Path | None = None, name: str | None = None,
           tmp_root: str | Path | None = None,
           voc_one_based: bool = True) -> Iterator[tuple[CocoDataset | None, ImportReport]]:
    """:func:`read` inside a ``with`` block: a zip is unpacked into a temporary folder (under
    ``tmp_root``) that is removed when the block ends."""
    if tmp_root is not None:
        Path(tmp_root).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".import-{os.getpid()}-", dir=tmp_root))
    try:
        yield read(source, fmt, classes=classes, images_dir=images_dir, name=name,
                   workdir=workdir, voc_one_based=voc_one_based)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def load(source: str | Path, fmt: str = "auto", **kwargs: Any) -> CocoDataset:
    """Like :func:`read` for folders and JSON files, raising :class:`ImportRejected` (with the
    full report) instead of returning a report with errors."""
    dataset, report = read(source, fmt, **kwargs)
    report.raise_if_errors()
    assert dataset is not None
    return dataset


# --- export ------------------------------------------------------------------------------------
WRITERS = {"coco": write_coco, "yolo": write_yolo, "voc": write_voc}


def export(dataset: CocoDataset, dest: str | Path, fmt: str = "coco", with_images: bool = True,
           overwrite: bool = False, zip_format: str = "coco") -> Path:
    """Write ``dataset`` as ``fmt`` (coco, yolo, voc: a folder; zip: one archive holding
    ``zip_format``) at ``dest``, atomically. An existing ``dest`` is an error unless
    ``overwrite``."""
    dest = Path(dest)
    if fmt not in (*WRITERS, "zip"):
        raise CowdemoError(f"Unknown export format '{fmt}': choose one of {', '.join(FORMATS)}.")
    try:
        if fmt == "zip":
            check_dest(dest, overwrite)
            atomic_write_bytes(dest, zip_bytes(dataset, zip_format, with_images))
            return dest
        return WRITERS[fmt](dataset, dest, with_images=with_images, overwrite=overwrite)
    except OSError as exc:
        raise CowdemoError(f"Could not write {dest} ({exc.strerror or exc}): choose a folder "
                           "you can write to.") from None


def zip_bytes(dataset: CocoDataset, fmt: str = "coco", with_images: bool = True) -> bytes:
    """The dataset exported as ``fmt`` inside a zip, in memory (for a download button)."""
    if fmt not in WRITERS:
        raise CowdemoError(f"Unknown zip format '{fmt}': choose one of "
                           f"{', '.join(EXPORT_FORMATS)}.")
    with tempfile.TemporaryDirectory(prefix="cowdemo-export-") as tmp:
        folder = Path(tmp) / "dataset"
        WRITERS[fmt](dataset, folder, with_images=with_images)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    stored = path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
                    archive.write(path, path.relative_to(folder).as_posix(),
                                  zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
        return buffer.getvalue()


