"""What the format readers and writers share: the :class:`ImportReport` (every problem, one
line each), box checks against the image, safe file names, the image probe (decode fully, size,
content hash), a builder of COCO dicts, and folders written aside then renamed into place."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cowdemo import images as image_io
from cowdemo.datasets.coco import CocoDataset
from cowdemo.errors import CowdemoError
from cowdemo.files import replace_dir

#: How far (pixels) a box may overshoot its image and still be accepted (clipped to the edge).
BOUNDS_TOLERANCE_PX = 1e-3


# --- the report ------------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What an import found: every problem (``errors``, each one line; any error means the import
    is rejected and nothing is written), notes (``warnings``) and counts."""

    source: str
    format: str = ""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    num_images: int = 0
    num_boxes: int = 0
    num_done: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, message: str) -> None:
        self.errors.append(" ".join(str(message).split()))

    def warn(self, message: str) -> None:
        self.warnings.append(" ".join(str(message).split()))

    def lines(self) -> list[str]:
        """Every problem and note, one line each (errors first)."""
        return [f"error: {e}" for e in self.errors] + [f"warning: {w}" for w in self.warnings]

    def summary(self) -> str:
        """One line: what was read, or why the import was rejected."""
        where = f"{self.source} ({self.format})" if self.format else self.source
        if self.errors:
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            return (
                f"{where}: import rejected, {len(self.errors)} problem"
                f"{'s' if len(self.errors) != 1 else ''}: {self.errors[0]}{more}. "
                "Nothing was saved; fix the files and import again."
            )
        notes = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        return (
            f"{where}: {self.num_images} images ({self.num_done} annotated), "
            f"{self.num_boxes} boxes{notes}."
        )

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ImportRejected(self)


class ImportRejected(CowdemoError):
    """An import with problems: the message is the one-line summary, ``report`` has them all."""

    def __init__(self, report: ImportReport):
        super().__init__(report.summary())
        self.report = report


# --- shared helpers --------------------------------------------------------------------------
def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def fmt(value: float) -> str:
    return f"{value:.6g}"


def box_problem(xyxy: Sequence[float], width: float, height: float) -> str | None:
    """Why a box cannot be stored on a ``width`` x ``height`` image, or None when it can."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return f"box {[x1, y1, x2, y2]} has a coordinate that is not a finite number"
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return f"box [{fmt(x1)}, {fmt(y1)}, {fmt(x2)}, {fmt(y2)}] has zero area"
    tol = BOUNDS_TOLERANCE_PX
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        return (
            f"box [{fmt(x1)}, {fmt(y1)}, {fmt(x2)}, {fmt(y2)}] (x1, y1, x2, y2) is outside the "
            f"{fmt(width)}x{fmt(height)} image"
        )
    return None


def clip_box(xyxy: Sequence[float], width: float, height: float) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return [max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))]


def safe_file_name(name: str, fallback: str = "image") -> str:
    """A file's base name reduced to letters, digits, ``._-`` (no folders, no leading dot)."""
    base = PurePosixPath(str(name).replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip("._")
    return cleaned[:150] or fallback


def export_names(dataset: CocoDataset) -> dict[int, str]:
    """A unique, safe base name per image (unique stems too, since YOLO and VOC files are named
    after the image's stem)."""
    names: dict[int, str] = {}
    used: set[str] = set()
    for image in dataset.images:
        name = safe_file_name(image["file_name"], f"image_{image['id']}")
        stem, suffix = os.path.splitext(name)
        candidate, n = name, 1
        while stem_of(candidate).lower() in used:
            n += 1
            candidate = f"{stem}-{n}{suffix}"
        used.add(stem_of(candidate).lower())
        names[int(image["id"])] = candidate
    return names


def stem_of(name: str) -> str:
    return os.path.splitext(name)[0]


def is_done(image: dict[str, Any]) -> bool:
    """Whether an image has been annotated (cowdemo's ``done`` flag; absent means done)."""
    return bool(image.get("done", True))


@dataclass
class ImageProbe:
    width: int
    height: int
    sha256: str


def probe_image(path: Path) -> ImageProbe | str:
    """Decode an image file fully (the same check uploads get); its size and content hash, or
    why it cannot be used."""
    try:
        data = path.read_bytes()
        rgb = image_io.load(data, name=path.name)
    except OSError as exc:
        return f"{path.name} could not be read ({exc.strerror})"
    except CowdemoError as exc:
        return str(exc).rstrip(".")
    return ImageProbe(int(rgb.shape[1]), int(rgb.shape[0]), image_io.content_hash(data))


def find_image_files(root: Path) -> list[Path]:
    skip = {"labels", "annotations", "__macosx"}
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in image_io.IMAGE_EXTENSIONS
        and not any(part.lower() in skip or part.startswith(".") for part in
                    p.relative_to(root).parts[:-1])
        and not p.name.startswith(".")
    )


def relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


class DatasetBuilder:
    """Collects images and boxes into a COCO dict, validating each box against its image."""

    def __init__(self, classes: Sequence[str], report: ImportReport):
        self.classes = list(classes)
        self.report = report
        self.coco: dict[str, Any] = {
            "images": [],
            "annotations": [],
            "categories": [{"id": i + 1, "name": c} for i, c in enumerate(self.classes)],
        }
        self._category = {c: i + 1 for i, c in enumerate(self.classes)}

    def add_unannotated(self, image_paths: Sequence[Path], root: Path) -> None:
        """Images without labels, imported as not annotated yet; unreadable ones are errors."""
        for image_path in image_paths:
            probe = probe_image(image_path)
            if isinstance(probe, str):
                self.report.error(f"{relative(image_path, root)}: {probe}")
                continue
            self.add_image(relative(image_path, root), probe, probe.width, probe.height, False)

    def add_image(self, file_name: str, probe: ImageProbe | None, width: float, height: float,
                  done: bool) -> dict[str, Any]:
        image: dict[str, Any] = {
            "id": len(self.coco["images"]) + 1,
            "file_name": file_name,
            "width": int(width),
            "height": int(height),
            "done": bool(done),
        }
        if probe is not None:
            image["sha256"] = probe.sha256
        self.coco["images"].append(image)
        return image

    def add_box(self, image: dict[str, Any], class_name: str, xyxy: Sequence[float],
                where: str, extra: dict[str, Any] | None = None) -> None:
        if class_name not in self._category:
            known = ", ".join(self.classes) or "none"
            self.report.error(f"{where}: unknown class '{class_name}' (classes: {known})")
            return
        problem = box_problem(xyxy, image["width"], image["height"])
        if problem:
            self.report.error(f"{where}: {problem}")
            return
        x1, y1, x2, y2 = clip_box(xyxy, image["width"], image["height"])
        ann = {
            "id": len(self.coco["annotations"]) + 1,
            "image_id": image["id"],
            "category_id": self._category[class_name],
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "area": (x2 - x1) * (y2 - y1),
            "iscrowd": 0,
        }
        ann.update(extra or {})
        self.coco["annotations"].append(ann)


def finish(report: ImportReport, root: Path, coco: dict[str, Any] | None,
            name: str) -> tuple[CocoDataset | None, ImportReport]:
    if coco is None or report.errors:
        return None, report
    if not coco["images"]:
        report.error("no images found: a dataset needs at least one image")
        return None, report
    report.num_images = len(coco["images"])
    report.num_boxes = len(coco["annotations"])
    report.num_done = sum(1 for im in coco["images"] if is_done(im))
    try:
        return CocoDataset(root, coco, name), report
    except CowdemoError as exc:  # a check above let something through: still one clear line
        report.error(str(exc))
        return None, report


def read_class_list(path: Path, report: ImportReport) -> list[str] | None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        report.error(f"{path.name} could not be read as text ({exc})")
        return None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return check_class_names(names, path.name, report)


def check_class_names(names: Sequence[str], where: str, report: ImportReport) -> list[str] | None:
    names = [str(n).strip() for n in names]
    if not names:
        report.error(f"{where} lists no classes")
        return None
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        report.error(f"{where} names a class more than once: {', '.join(duplicates)}")
        return None
    if any(not n for n in names):
        report.error(f"{where} has an empty class name")
        return None
    return list(names)


def dataset_name(source: Path) -> str:
    stem = source.stem if source.suffix else source.name
    return safe_file_name(stem, "dataset")


# --- writing folders ------------------------------------------------------------------------------
#: Written into every exported folder: ``--overwrite`` replaces only folders holding it (an
#: earlier export), never a folder someone else made.
EXPORT_MARKER = ".cowdemo-export"


def check_dest(dest: Path, overwrite: bool, folder: bool = False) -> None:
    """Refuse to write over what an export did not write: an existing ``dest`` is an error
    unless ``overwrite``, and even then a folder must hold the export marker (an earlier export)
    and a file must be the same kind an export writes (``folder`` says which is wanted)."""
    if not dest.exists() and not dest.is_symlink():
        return
    if dest.is_dir() and not any(dest.iterdir()):
        if folder:
            return
        raise CowdemoError(f"{dest} is a folder: give a file name.")
    if not overwrite:
        raise CowdemoError(f"{dest} already exists: choose another path or allow overwriting.")
    if dest.is_symlink():
        raise CowdemoError(f"{dest} is a symbolic link: not overwritten, choose another path.")
    if folder and not dest.is_dir():
        raise CowdemoError(f"{dest} is a file, not a folder an export wrote: not overwritten.")
    if folder and not (dest / EXPORT_MARKER).is_file():
        raise CowdemoError(
            f"{dest} was not written by a cowdemo export (no {EXPORT_MARKER} inside): it is left "
            "as it is; choose a new folder or empty this one."
        )
    if not folder and dest.is_dir():
        raise CowdemoError(f"{dest} is a folder, not a file an export wrote: not overwritten.")


@contextlib.contextmanager
def staged_folder(dest: Path, overwrite: bool) -> Iterator[Path]:
    """Build a folder beside ``dest`` and rename it into place when complete (marked as an
    export, so a later ``overwrite`` may replace it and nothing else)."""
    check_dest(dest, overwrite, folder=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
    stage.mkdir()
    try:
        yield stage
        (stage / EXPORT_MARKER).write_text("written by `cowdemo datasets export`\n")
        replace_dir(stage, dest)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def copy_images(dataset: CocoDataset, names: dict[int, str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for image in dataset.images:
        src = dataset.image_path(image["id"])
        if src.is_file():
            shutil.copyfile(src, folder / names[int(image["id"])])
