"""The app's dataset store: named datasets on disk, each a `CocoDataset` folder, safe to edit from
many browser sessions and processes at once::

    store = DatasetStore()                      # data_dir()/datasets, COWDEMO_DATA to move it
    store.create("herd", classes=("cow", "calf"))
    ids = store.add_images("herd", [("a.jpg", data)])     # deduplicated by content (sha256)
    store.set_boxes("herd", ids[0], [("cow", [10, 20, 110, 90])])   # xyxy pixels
    store.mark_done("herd", ids[0])
    dataset = store.get("herd")                 # CocoDataset: evaluation, training, export

Layout: ``<root>/<name>/annotations.json`` (COCO instances; each image has ``sha256`` and a
``done`` flag) and ``<root>/<name>/images/<file>``; locks live in ``<root>/.locks/``.

Safety: every change takes the dataset's lock (``fcntl.flock``, so it works across threads,
processes and server restarts), re-reads ``annotations.json``, applies the change and writes a
temporary file that is fsynced and renamed over the old one. Readers never lock and never see
half a file; two sessions editing different images of one dataset both keep their changes, and
two saves of the same image end with the last one. Imports are built in a hidden folder and
renamed into place only when complete, so a rejected or interrupted import changes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cowdemo import images as image_io
from cowdemo.datasets import formats
from cowdemo.datasets.coco import ANNOTATIONS_FILE, CocoDataset
from cowdemo.errors import CowdemoError
from cowdemo.files import atomic_write_bytes, replace_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_NAME = "synthetic-sample"
SAMPLE_IMAGES = 12  # synthetic scenes in the sample dataset
SAMPLE_DONE = 8  # of them done, with their exact boxes; the others are left to label
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Boxes given to set_boxes equal to a stored one within this (pixels) keep the stored
#: annotation, with its id, crowd flag, area and segmentation.
SAME_BOX_PX = 1e-6

Box = tuple[str, Sequence[float]]


def data_dir() -> Path:
    """The app's data folder: ``COWDEMO_DATA``, default ``<repo>/data``."""
    return Path(os.environ.get("COWDEMO_DATA") or REPO_ROOT / "data")


def check_name(name: str) -> str:
    """A dataset name that is a safe folder name, or CowdemoError."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".lock"):
        raise CowdemoError(f"'{name}' is not a valid dataset name: use {NAME_RULE}.")
    return name


def check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(classes, str):
        classes = [classes]
    names = tuple(str(c).strip() for c in classes)
    if not names or any(not n for n in names):
        raise CowdemoError("A dataset needs at least one class, and class names cannot be empty.")
    if len(set(names)) != len(names):
        raise CowdemoError(f"Class names must be unique, got {', '.join(names)}.")
    return names


@dataclass(frozen=True)
class DatasetSummary:
    """One dataset of the store, as :meth:`DatasetStore.list` shows it."""

    name: str
    num_images: int
    num_annotated_images: int  # images marked done (a done image may have no boxes)
    num_boxes: int
    classes: tuple[str, ...]
    modified: datetime
    path: Path

    @property
    def progress(self) -> str:
        return f"{self.num_annotated_images} of {self.num_images} images done"


class DatasetStore:
    """Named datasets under ``root`` (default ``data_dir()/"datasets"``)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else data_dir() / "datasets"
        clean_stale_staging(self.root)

    # --- reading ------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def exists(self, name: str) -> bool:
        return (self.path(name) / ANNOTATIONS_FILE).is_file()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir()
            if _NAME.match(p.name) and (p / ANNOTATIONS_FILE).is_file()
        )

    def list(self) -> list[DatasetSummary]:
        """Every dataset, by name (folders whose annotations cannot be read are left out;
        :meth:`get` says what is wrong with them)."""
        out = []
        for name in self.names():
            try:
                out.append(self.summary(name))
            except CowdemoError:
                continue
        return out

    def summary(self, name: str) -> DatasetSummary:
        dataset = self.get(name)
        path = dataset.root / ANNOTATIONS_FILE
        return DatasetSummary(
            name=name,
            num_images=len(dataset.images),
            num_annotated_images=sum(1 for im in dataset.images if formats.is_done(im)),
            num_boxes=dataset.num_boxes(),
            classes=dataset.classes,
            modified=datetime.fromtimestamp(path.stat().st_mtime).astimezone(),
            path=dataset.root,
        )

    def get(self, name: str) -> CocoDataset:
        """The dataset as it is on disk now (CowdemoError if there is none by that name)."""
        folder = self.path(name)
        if not (folder / ANNOTATIONS_FILE).is_file():
            known = ", ".join(self.names()) or "none yet"
            raise CowdemoError(
                f"There is no dataset named '{name}' in {self.root} (datasets: {known}): "
                "create or import it first."
            )
        return CocoDataset.load(folder, name)

    def annotated(self, name: str) -> CocoDataset:
        """Only the images marked done: what evaluation and training should use, since an image
        nobody has looked at yet is not ground truth."""
        dataset = self.get(name)
        return dataset.subset([im["id"] for im in dataset.images if formats.is_done(im)])

    def boxes(self, name: str, image_id: int) -> list[tuple[str, list[float]]]:
        """One image's boxes as (class name, xyxy pixels)."""
        gt = self.get(name).ground_truth(image_id)
        return [(str(c), [float(v) for v in box]) for c, box in zip(gt.class_names, gt.xyxy)]

    # --- creating and deleting ----------------------------------------------------------------
    def create(self, name: str, classes: Sequence[str] = ("cow",)) -> CocoDataset:
        """An empty dataset with these classes (category ids 1..n)."""
        check_name(name)
        classes = check_classes(classes)
        coco = {
            "info": {"description": f"cowdemo dataset {name}"},
            "images": [],
            "annotations": [],
            "categories": [{"id": i + 1, "name": c} for i, c in enumerate(classes)],
        }
        return self._install(name, coco, lambda folder: None, replace=False)

    def delete(self, name: str) -> None:
        """Remove a dataset and its images."""
        folder = self.path(name)
        with self._lock(name):
            if not folder.exists():
                raise CowdemoError(f"There is no dataset named '{name}' to delete.")
            trash = self.root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
            os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def save(self, name: str, dataset: CocoDataset, replace: bool = False,
             report: formats.ImportReport | None = None) -> CocoDataset:
        """Copy any dataset (read from a file, another folder, in memory with images on disk)
        into the store as ``name``. Images with the same content are stored once (their boxes
        merged, noted in ``report``). Built aside and renamed into place: nothing changes when
        this fails. An existing ``name`` is an error unless ``replace``."""
        check_name(name)
        coco = json.loads(json.dumps(dataset.coco))

        def fill(folder: Path) -> None:
            _copy_into(dataset, coco, folder, report)

        return self._install(name, coco, fill, replace)

    def _install(self, name: str, coco: dict[str, Any], fill: Callable[[Path], None],
                 replace: bool) -> CocoDataset:
        stage = self.root / f"{staging_prefix('new')}{name}-{uuid.uuid4().hex[:8]}"
        with _disk_errors(self.root):
            (stage / "images").mkdir(parents=True)
        try:
            with _disk_errors(self.root):
                fill(stage)
            CocoDataset(stage, coco, name)  # validates before anything is installed
            _write_json(stage / ANNOTATIONS_FILE, coco)
            with self._lock(name):
                target = self.path(name)
                if target.exists() and not replace:
                    raise CowdemoError(
                        f"A dataset named '{name}' already exists: choose another name or "
                        "replace it."
                    )
                replace_dir(stage, target)
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
        return self.get(name)

    def ensure_sample(self) -> CocoDataset:
        """The sample dataset ``synthetic-sample``, created on first use: 12 seeded synthetic
        scenes, the first :data:`SAMPLE_DONE` done with their exact boxes (ground truth for
        evaluation and training), the rest not done and without boxes, so a new user has images
        to label and to pre-annotate; the real cow photo (:mod:`cowdemo.samples`), when this
        machine has it, comes first among those not done."""
        if self.exists(SAMPLE_NAME):
            return self.get(SAMPLE_NAME)
        import tempfile

        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=staging_prefix("sample")) as tmp:
            source = _sample_source(Path(tmp))
            try:
                return self.save(SAMPLE_NAME, source)
            except CowdemoError:
                if self.exists(SAMPLE_NAME):  # another session made it at the same time
                    return self.get(SAMPLE_NAME)
                raise

    # --- import and export --------------------------------------------------------------------
    def import_path(self, name: str, source: str | Path, fmt: str = "auto", *,
                    classes: Sequence[str] | None = None, images_dir: str | Path | None = None,
                    replace: bool = False,
                    voc_one_based: bool = True) -> tuple[CocoDataset, formats.ImportReport]:
        """Import a file or folder in any format as dataset ``name``. Validated first: a report
        with errors raises :class:`~cowdemo.datasets.formats.ImportRejected` (which carries the
        report) and nothing in the store changes."""
        check_name(name)
        if not Path(source).exists():
            raise CowdemoError(f"{source}: no such file or folder to import.")
        if self.exists(name) and not replace:
            raise CowdemoError(
                f"A dataset named '{name}' already exists: choose another name or replace it."
            )
        with formats.opened(source, fmt, classes=classes, images_dir=images_dir, name=name,
                            tmp_root=self.root, voc_one_based=voc_one_based) as (dataset, report):
            report.raise_if_errors()
            assert dataset is not None
            saved = self.save(name, dataset, replace=replace, report=report)
        return saved, report

    def export(self, name: str, dest: str | Path, fmt: str = "coco", with_images: bool = True,
               overwrite: bool = False, zip_format: str = "coco") -> Path:
        """Write dataset ``name`` as ``fmt`` (coco, yolo, voc, zip) at ``dest``: never into or
        over the store itself (an export there would replace a dataset's own files)."""
        dataset = self.get(name)
        target, root = Path(dest).resolve(), self.root.resolve()
        if target == root or root in target.parents or target in root.parents:
            raise CowdemoError(
                f"{dest} is inside the datasets store ({self.root}) or holds it: export "
                "somewhere else (a store folder is a dataset's own files)."
            )
        return formats.export(dataset, dest, fmt, with_images, overwrite, zip_format)

    # --- editing ------------------------------------------------------------------------------
    def add_images(self, name: str, files: Sequence[tuple[str, bytes]],
                   extra: Sequence[dict[str, Any]] | None = None) -> list[int]:
        """Add image files (name, bytes); returns their image ids in order. A file whose content
        is already in the dataset returns the existing id; one whose name matches an image
        imported without its file fills that image in. Every file is decoded first: if any
        cannot be read, CowdemoError names them and nothing is added. ``extra`` (one dict per
        file) adds fields to the new images' COCO entries, e.g. ``{"video": {...}}`` for a
        video frame (images already in the dataset keep theirs)."""
        if extra is not None and len(extra) != len(files):
            raise ValueError("add_images: give one extra dict per file")
        probes, problems = [], []
        for file_name, data in files:
            try:
                rgb = image_io.load(data, name=file_name)
            except CowdemoError as exc:
                problems.append(str(exc))
                continue
            probes.append((file_name, bytes(data), rgb.shape[1], rgb.shape[0],
                           image_io.content_hash(data)))
        if problems:
            raise CowdemoError(
                f"{len(problems)} of {len(files)} files cannot be added, so none was: "
                + " ".join(problems)
            )
        ids: list[int] = []

        def change(coco: dict[str, Any], folder: Path) -> None:
            by_hash = _hash_index(coco, folder)
            used = {im["file_name"].lower() for im in coco["images"]}
            waiting = {
                formats.safe_file_name(im["file_name"]).lower(): im for im in coco["images"]
                if not (folder / "images" / im["file_name"]).is_file() and not im.get("sha256")
            }
            next_id = max((int(im["id"]) for im in coco["images"]), default=0) + 1
            for index, (file_name, data, width, height, digest) in enumerate(probes):
                if digest in by_hash:
                    ids.append(by_hash[digest])
                    continue
                safe = _with_image_suffix(formats.safe_file_name(file_name), data)
                waiting_image = waiting.pop(safe.lower(), None)
                if waiting_image is not None:
                    if (waiting_image["width"], waiting_image["height"]) != (width, height):
                        raise CowdemoError(
                            f"{file_name} is {width}x{height}, but image "
                            f"{waiting_image['file_name']} of dataset {name} is "
                            f"{waiting_image['width']}x{waiting_image['height']}."
                        )
                    target = waiting_image
                else:
                    safe = _unique(safe, used)
                    target = {"id": next_id, "file_name": safe, "width": width,
                              "height": height, "done": False}
                    if extra is not None:
                        target.update({k: v for k, v in extra[index].items() if k not in target})
                    next_id += 1
                    coco["images"].append(target)
                used.add(target["file_name"].lower())
                _write_file(folder / "images" / target["file_name"], data)
                target["sha256"] = digest
                by_hash[digest] = int(target["id"])
                ids.append(int(target["id"]))

        self._update(name, change)
        return ids

    def set_boxes(self, name: str, image_id: int, boxes: Sequence[Box]) -> CocoDataset:
        """Replace the boxes of one image: (class name, [x1, y1, x2, y2] pixels) each. A box
        equal to a stored one keeps that annotation (id, crowd flag, area, segmentation)."""
        parsed = [_parse_box(i, item) for i, item in enumerate(boxes)]

        def change(coco: dict[str, Any], folder: Path) -> None:
            image = _image(coco, name, image_id)
            category = {c["name"]: int(c["id"]) for c in coco["categories"]}
            for index, (class_name, xyxy) in enumerate(parsed):
                if class_name not in category:
                    raise CowdemoError(
                        f"Box {index + 1} has class '{class_name}', which dataset {name} does not "
                        f"have (classes: {', '.join(category)}): add the class first."
                    )
                problem = formats.box_problem(xyxy, image["width"], image["height"])
                if problem:
                    raise CowdemoError(f"Box {index + 1} ({class_name}): {problem}.")
            old = [a for a in coco["annotations"] if int(a["image_id"]) == int(image_id)]
            kept = [a for a in coco["annotations"] if int(a["image_id"]) != int(image_id)]
            next_id = max((int(a["id"]) for a in coco["annotations"]), default=0) + 1
            for class_name, xyxy in parsed:
                x1, y1, x2, y2 = formats.clip_box(xyxy, image["width"], image["height"])
                bbox = [x1, y1, x2 - x1, y2 - y1]
                same = next((a for a in old if a["category_id"] == category[class_name]
                             and _same_bbox(a["bbox"], bbox)), None)
                if same is not None:
                    old.remove(same)
                    kept.append(same)
                    continue
                kept.append({"id": next_id, "image_id": int(image_id),
                             "category_id": category[class_name], "bbox": bbox,
                             "area": bbox[2] * bbox[3], "iscrowd": 0})
                next_id += 1
            coco["annotations"] = kept

        return self._update(name, change)

    def mark_done(self, name: str, image_id: int, done: bool = True) -> CocoDataset:
        """Mark one image as annotated (done), or not; a done image may have no boxes."""

        def change(coco: dict[str, Any], folder: Path) -> None:
            _image(coco, name, image_id)["done"] = bool(done)

        return self._update(name, change)

    def set_classes(self, name: str, classes: Sequence[str]) -> CocoDataset:
        """Set the class list: existing classes keep their category ids, new ones are added;
        a class that still has boxes cannot be removed."""
        classes = check_classes(classes)

        def change(coco: dict[str, Any], folder: Path) -> None:
            current = {c["name"]: c for c in coco["categories"]}
            used = {int(a["category_id"]) for a in coco["annotations"]}
            dropped = [c for n, c in current.items() if n not in classes and int(c["id"]) in used]
            if dropped:
                raise CowdemoError(
                    f"Class '{dropped[0]['name']}' still has boxes in dataset {name}: relabel or "
                    "delete them first."
                )
            next_id = max((int(c["id"]) for c in coco["categories"]), default=0) + 1
            out = []
            for class_name in classes:
                if class_name in current:
                    out.append(current[class_name])
                else:
                    out.append({"id": next_id, "name": class_name})
                    next_id += 1
            coco["categories"] = out

        return self._update(name, change)

    # --- machinery ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """The dataset's exclusive lock (a flock on ``<root>/.locks/<name>.lock``)."""
        locks = self.root / ".locks"
        with _disk_errors(self.root):
            locks.mkdir(parents=True, exist_ok=True)
            handle = open(locks / f"{check_name(name)}.lock", "a+b")  # noqa: SIM115
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                with _disk_errors(self.root):
                    yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _update(self, name: str,
                change: Callable[[dict[str, Any], Path], None]) -> CocoDataset:
        """Lock, read the current annotations, apply ``change``, validate, write atomically."""
        folder = self.path(name)
        with self._lock(name):
            path = folder / ANNOTATIONS_FILE
            if not path.is_file():
                self.get(name)  # raises the "no such dataset" error
            for stale in folder.glob(f".{ANNOTATIONS_FILE}.*.tmp"):
                stale.unlink(missing_ok=True)  # left by a crash; nobody else writes now
            coco = CocoDataset.load(folder, name).coco
            change(coco, folder)
            dataset = CocoDataset(folder, coco, name)
            _write_json(path, coco)
        return dataset


_STAGING = re.compile(r"^\.(new|import|sample)-(\d+)-")


def staging_prefix(kind: str) -> str:
    """The name prefix of a staging folder in the store: ``.<kind>-<pid>-`` (the pid says whose
    it is, so :func:`clean_stale_staging` can tell a live one from one a killed process left)."""
    return f".{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_staging(root: Path) -> list[Path]:
    """Remove what killed imports and saves left in the store: staging folders whose process is
    gone, and ``.old`` folders a replacement was interrupted before deleting. Returns them."""
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _STAGING.match(entry.name)
        stale = (match is not None and int(match.group(2)) != os.getpid()
                 and not _alive(int(match.group(2))))
        stale = stale or (entry.name.startswith(".") and entry.name.endswith(".old"))
        if stale and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _sample_source(folder: Path) -> CocoDataset:
    """The sample dataset in ``folder``: done synthetic scenes (ids 1..SAMPLE_DONE), then the
    real cow photo if there is one, then the synthetic scenes left to label."""
    from cowdemo.datasets.synthetic import make_dataset
    from cowdemo.samples import COW_PHOTO_CREDIT, COW_PHOTO_NAME, cow_photo

    make_dataset(folder, n_images=SAMPLE_IMAGES, seed=0)
    coco = json.loads((folder / ANNOTATIONS_FILE).read_text())
    done = coco["images"][:SAMPLE_DONE]
    todo = coco["images"][SAMPLE_DONE:]
    for image in done:
        image["done"] = True
    description = "cowdemo synthetic sample: seeded pasture scenes with exact cow boxes"
    photo = cow_photo()
    if photo is not None:
        rgb = image_io.load(photo)
        shutil.copyfile(photo, folder / "images" / COW_PHOTO_NAME)
        todo.insert(0, {"file_name": f"images/{COW_PHOTO_NAME}", "width": rgb.shape[1],
                        "height": rgb.shape[0]})
        description += f", and a real cow photo ({COW_PHOTO_CREDIT})"
    for image_id, image in enumerate(todo, start=SAMPLE_DONE + 1):
        image.update(id=image_id, done=False)
    coco["annotations"] = [a for a in coco["annotations"] if int(a["image_id"]) <= SAMPLE_DONE]
    coco["images"] = done + todo
    coco["info"] = {"description": description}
    return CocoDataset(folder, coco, SAMPLE_NAME)


# --- helpers -----------------------------------------------------------------------------------
@contextlib.contextmanager
def _disk_errors(root: Path) -> Iterator[None]:
    """A full or read-only disk is the user's to fix: one clear line, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise CowdemoError(
            f"Could not write to the datasets folder {root} ({exc.strerror or exc}): free some "
            "space or set COWDEMO_DATA to a folder you can write to."
        ) from None


def _write_json(path: Path, coco: dict[str, Any]) -> None:
    atomic_write_bytes(path, json.dumps(coco, indent=1, ensure_ascii=False).encode())
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


def _image(coco: dict[str, Any], name: str, image_id: int) -> dict[str, Any]:
    for image in coco["images"]:
        if int(image["id"]) == int(image_id):
            return image
    raise CowdemoError(f"Dataset {name} has no image with id {image_id}.")


def _parse_box(index: int, item: Any) -> tuple[str, list[float]]:
    try:
        class_name, values = item
        xyxy = [float(v) for v in values]
    except (TypeError, ValueError):
        raise CowdemoError(
            f"Box {index + 1} must be (class name, [x1, y1, x2, y2]), got {item!r}."
        ) from None
    if len(xyxy) != 4 or not all(math.isfinite(v) for v in xyxy):
        raise CowdemoError(f"Box {index + 1} must have four finite numbers x1, y1, x2, y2.")
    return str(class_name), xyxy


def _same_bbox(a: Sequence[float], b: Sequence[float]) -> bool:
    ax1, ay1, aw, ah = (float(v) for v in a)
    bx1, by1, bw, bh = (float(v) for v in b)
    return all(abs(u - v) <= SAME_BOX_PX for u, v in
               ((ax1, bx1), (ay1, by1), (ax1 + aw, bx1 + bw), (ay1 + ah, by1 + bh)))


def _hash_index(coco: dict[str, Any], folder: Path) -> dict[str, int]:
    """sha256 -> image id, hashing (and remembering) images stored without one."""
    out = {}
    for image in coco["images"]:
        digest = image.get("sha256")
        if not digest:
            path = folder / "images" / image["file_name"]
            if not path.is_file():
                continue
            digest = image["sha256"] = image_io.content_hash(path.read_bytes())
        out.setdefault(digest, int(image["id"]))
    return out


_FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif",
                  "MPO": ".jpg"}


def _with_image_suffix(name: str, data: bytes) -> str:
    """Keep the name, adding the real format's extension when the name has none we know."""
    if os.path.splitext(name)[1].lower() in image_io.IMAGE_EXTENSIONS:
        return name
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return name + _FORMAT_SUFFIX.get(img.format or "", ".png")


def _unique(name: str, used: set[str]) -> str:
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while candidate.lower() in used or os.path.splitext(candidate)[0].lower() in {
        os.path.splitext(u)[0] for u in used
    }:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    return candidate


def _copy_into(dataset: CocoDataset, coco: dict[str, Any], folder: Path,
               report: formats.ImportReport | None) -> None:
    """Copy the images of ``dataset`` into ``folder/images`` under safe unique names, rewriting
    ``coco`` (a copy of its dict); images with equal content become one, boxes merged."""
    used: set[str] = set()
    first_by_hash: dict[str, dict[str, Any]] = {}
    merged: dict[int, int] = {}
    keep_images = []
    for image in coco["images"]:
        source = dataset.image_path(image["id"])
        safe = formats.safe_file_name(image["file_name"], f"image_{image['id']}")
        if source.is_file():
            data = source.read_bytes()
            digest = image_io.content_hash(data)
            if digest in first_by_hash:
                first = first_by_hash[digest]
                merged[int(image["id"])] = int(first["id"])
                first["done"] = formats.is_done(first) or formats.is_done(image)
                if report is not None:
                    report.warn(f"{image['file_name']} has the same content as "
                                f"{first['file_name']}: stored once, with the boxes of both")
                continue
            safe = _unique(_with_image_suffix(safe, data), used)
            _write_file(folder / "images" / safe, data)
            image["sha256"] = digest
            first_by_hash[digest] = image
        else:
            safe = _unique(safe, used)
            image.pop("sha256", None)
        used.add(safe.lower())
        image["file_name"] = safe
        image.setdefault("done", True)
        keep_images.append(image)
    coco["images"] = keep_images
    if merged:
        seen: dict[int, list[tuple[int, list[float]]]] = {}
        kept = []
        for ann in coco["annotations"]:
            ann["image_id"] = merged.get(int(ann["image_id"]), int(ann["image_id"]))
            key = (int(ann["category_id"]), [float(v) for v in ann["bbox"]])
            boxes = seen.setdefault(ann["image_id"], [])
            if any(k[0] == key[0] and _same_bbox(k[1], key[1]) for k in boxes):
                continue
            boxes.append(key)
            kept.append(ann)
        coco["annotations"] = kept
