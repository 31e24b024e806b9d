"""The dataset store: named datasets on disk, content dedup, atomic saves under a lock, real
parallel processes, crashes mid-write, and rejected imports that change nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cowdemo import images
from cowdemo.datasets import formats
from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.store import (
    SAMPLE_DONE,
    SAMPLE_IMAGES,
    SAMPLE_NAME,
    DatasetStore,
    data_dir,
)
from cowdemo.datasets.synthetic import make_scene
from cowdemo.errors import CowdemoError
from cowdemo.samples import COW_PHOTO_NAME, cow_photo

REPO = Path(__file__).resolve().parents[1]


def png(seed: int, width: int = 64, height: int = 48) -> bytes:
    return images.encode_png(make_scene(seed=seed, width=width, height=height).image)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the store (locks aside): what 'unchanged' means."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*")) if p.is_file() and ".locks" not in p.parts
    }


@pytest.fixture
def store(tmp_path) -> DatasetStore:
    return DatasetStore(tmp_path / "datasets")


@pytest.fixture
def herd(store) -> tuple[DatasetStore, list[int]]:
    store.create("herd", ["cow", "calf"])
    ids = store.add_images("herd", [(f"img{i}.png", png(i)) for i in range(3)])
    return store, ids


def test_data_dir_follows_cowdemo_data(monkeypatch, tmp_path):
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "elsewhere"))
    assert data_dir() == tmp_path / "elsewhere"
    assert DatasetStore().root == tmp_path / "elsewhere" / "datasets"
    monkeypatch.delenv("COWDEMO_DATA")
    assert data_dir() == REPO / "data"


def test_create_list_get(store):
    store.create("herd", ["cow", "calf"])
    (summary,) = store.list()
    assert (summary.name, summary.num_images, summary.num_boxes) == ("herd", 0, 0)
    assert summary.classes == ("cow", "calf") and summary.modified.tzinfo is not None
    dataset = store.get("herd")
    assert isinstance(dataset, CocoDataset) and dataset.classes == ("cow", "calf")
    assert (store.root / "herd" / "annotations.json").is_file()
    with pytest.raises(CowdemoError, match="already exists"):
        store.create("herd")
    with pytest.raises(CowdemoError, match="no dataset named 'nope'"):
        store.get("nope")


@pytest.mark.parametrize("bad", ["", "../up", ".hidden", "a/b", "a b", "x" * 65, "naïve",
                                 "-dash", "herd.lock"])
def test_unsafe_names_are_refused(store, bad):
    with pytest.raises(CowdemoError, match="not a valid dataset name"):
        store.create(bad)
    assert not store.root.exists() or store.names() == []


def test_bad_class_lists(store):
    for classes in ([], ["cow", "cow"], ["cow", " "]):
        with pytest.raises(CowdemoError):
            store.create("herd", classes)


def test_add_images_dedups_by_content(herd):
    store, ids = herd
    assert ids == [1, 2, 3]
    # the same bytes under another name: the existing id, nothing stored twice
    assert store.add_images("herd", [("copy.png", png(1)), ("new.png", png(7))]) == [2, 4]
    dataset = store.get("herd")
    assert len(dataset.images) == 4 and len(list((dataset.root / "images").iterdir())) == 4
    assert all(len(im["sha256"]) == 64 and im["done"] is False for im in dataset.images)
    assert dataset.read_image(4).shape == (48, 64, 3)


def test_add_images_names_are_safe_and_unique(store):
    store.create("herd")
    ids = store.add_images("herd", [("../../evil.png", png(1)), ("evil.png", png(2)),
                                    ("no extension", png(3))])
    names = [store.get("herd").image_info(i)["file_name"] for i in ids]
    assert names == ["evil.png", "evil-2.png", "no_extension.png"]
    assert not (store.root.parent / "evil.png").exists()


def test_an_unreadable_image_adds_nothing(herd):
    store, _ = herd
    before = snapshot(store.root)
    with pytest.raises(CowdemoError, match=r"broken\.jpg") as info:
        store.add_images("herd", [("fine.png", png(9)), ("broken.jpg", b"\xff\xd8\xff junk")])
    assert "\n" not in str(info.value) and "none was" in str(info.value)
    assert snapshot(store.root) == before


def test_set_boxes_mark_done_and_summary(herd):
    store, ids = herd
    store.set_boxes("herd", ids[0], [("cow", [1, 2, 30, 40]), ("calf", [0.5, 0.5, 64, 48])])
    store.mark_done("herd", ids[0])
    store.mark_done("herd", ids[1])  # done with no boxes: a negative image
    summary = store.summary("herd")
    assert (summary.num_annotated_images, summary.num_boxes) == (2, 2)
    assert summary.progress == "2 of 3 images done"
    assert store.boxes("herd", ids[0]) == [("cow", [1, 2, 30, 40]), ("calf", [0.5, 0.5, 64, 48])]
    ann = store.get("herd").annotations(ids[0])[0]
    assert ann["bbox"] == [1.0, 2.0, 29.0, 38.0] and ann["area"] == 29 * 38
    assert ann["iscrowd"] == 0
    assert [im["id"] for im in store.annotated("herd").images] == ids[:2]
    store.mark_done("herd", ids[1], False)
    assert store.summary("herd").num_annotated_images == 1
    store.set_boxes("herd", ids[0], [])
    assert store.boxes("herd", ids[0]) == []


@pytest.mark.parametrize(("boxes", "message"), [
    ([("dog", [1, 1, 5, 5])], "class 'dog'"),
    ([("cow", [1, 1, 65, 5])], "outside the 64x48 image"),
    ([("cow", [5, 5, 5, 9])], "zero area"),
    ([("cow", [1, 1, float("nan"), 5])], "finite"),
    ([("cow", [1, 2, 3])], "four"),
    (["cow"], "must be"),
])
def test_bad_boxes_change_nothing(herd, boxes, message):
    store, ids = herd
    store.set_boxes("herd", ids[0], [("cow", [1, 1, 10, 10])])
    before = snapshot(store.root)
    with pytest.raises(CowdemoError, match=message) as info:
        store.set_boxes("herd", ids[0], boxes)
    assert "\n" not in str(info.value)
    assert snapshot(store.root) == before
    with pytest.raises(CowdemoError, match="no image with id 99"):
        store.set_boxes("herd", 99, [])


def test_unchanged_boxes_keep_their_annotation(tmp_path, store):
    """Saving an image from the page keeps crowd flags, areas and ids of untouched boxes."""
    folder = tmp_path / "src"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.png").write_bytes(png(1))
    coco = {"images": [{"id": 7, "file_name": "a.png", "width": 64, "height": 48}],
            "annotations": [{"id": 70, "image_id": 7, "category_id": 1, "bbox": [1, 1, 10, 10],
                             "iscrowd": 1, "area": 42.5, "segmentation": {"counts": "x"}}],
            "categories": [{"id": 1, "name": "cow"}]}
    (folder / "annotations.json").write_text(json.dumps(coco))
    store.import_path("crowd", folder)
    store.set_boxes("crowd", 7, [("cow", [1, 1, 11, 11]), ("cow", [20, 20, 30, 30])])
    first, second = store.get("crowd").annotations(7)
    assert first["id"] == 70 and first["iscrowd"] == 1 and first["area"] == 42.5
    assert first["segmentation"] == {"counts": "x"}
    assert second["id"] == 71 and second["iscrowd"] == 0


def test_set_classes(herd):
    store, ids = herd
    store.set_boxes("herd", ids[0], [("calf", [1, 1, 5, 5])])
    store.set_classes("herd", ["calf", "cow", "bull"])
    assert store.get("herd").categories == [{"id": 2, "name": "calf"}, {"id": 1, "name": "cow"},
                                            {"id": 3, "name": "bull"}]
    with pytest.raises(CowdemoError, match="'calf' still has boxes"):
        store.set_classes("herd", ["cow"])
    store.set_classes("herd", ["calf"])
    assert store.get("herd").classes == ("calf",)


def test_delete(herd):
    store, _ = herd
    store.delete("herd")
    assert store.names() == [] and not (store.root / "herd").exists()
    with pytest.raises(CowdemoError, match="no dataset named 'herd'"):
        store.delete("herd")


def test_ensure_sample_is_ready_and_idempotent(store):
    """Done scenes with exact boxes for evaluation, then work left: the real cow photo (where the
    machine has it) and the other scenes, not done and without boxes."""
    sample = store.ensure_sample()
    photo = cow_photo()
    assert sample.name == SAMPLE_NAME
    assert len(sample.images) == SAMPLE_IMAGES + (photo is not None)
    done = [im["id"] for im in sample.images if im["done"]]
    assert done == list(range(1, SAMPLE_DONE + 1)) and 0 < SAMPLE_DONE < SAMPLE_IMAGES
    summary = store.summary(SAMPLE_NAME)
    assert summary.num_annotated_images == SAMPLE_DONE
    assert {int(a["image_id"]) for a in sample.coco["annotations"]} == set(done)
    assert summary.num_boxes == sample.num_boxes() == 22 > SAMPLE_DONE
    todo = sample.images[SAMPLE_DONE:]
    if photo is not None:
        assert todo[0]["file_name"] == COW_PHOTO_NAME and (todo[0]["width"], todo[0]["height"]) \
            == (1140, 760)
        assert sample.image_path(todo[0]["id"]).read_bytes() == photo.read_bytes()
    assert [im["file_name"] for im in todo][-1] == "synthetic_000011.png"
    stamp = (store.root / SAMPLE_NAME / "annotations.json").stat().st_mtime_ns
    assert store.ensure_sample().coco == sample.coco
    assert (store.root / SAMPLE_NAME / "annotations.json").stat().st_mtime_ns == stamp
    assert sample.read_image(1).shape == (480, 640, 3)


def test_sample_without_the_photo_and_open_dataset_makes_it(tmp_path, monkeypatch):
    """Without the photo the sample is the synthetic scenes alone; `open_dataset` (the CLI's
    evaluate, check and train) makes the sample in a fresh data folder, as the app does."""
    from cowdemo.datasets import open_dataset

    monkeypatch.setenv("COWDEMO_COW_PHOTO", str(tmp_path / "absent.jpg"))
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "fresh"))
    dataset = open_dataset(SAMPLE_NAME)
    assert dataset.image_ids == list(range(1, SAMPLE_DONE + 1)), "the done images only"
    assert dataset.num_boxes() == 22
    full = DatasetStore().get(SAMPLE_NAME)
    assert len(full.images) == SAMPLE_IMAGES
    assert all(im["file_name"].startswith("synthetic_") for im in full.images)


def test_coco_json_without_images_then_the_images(tmp_path, store):
    coco = {"images": [{"id": 1, "file_name": "photos/a.png", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 3, 4, 5]}],
            "categories": [{"id": 3, "name": "cow"}]}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(coco))
    dataset, report = store.import_path("gt", path)
    assert report.ok and any("without images" in w for w in report.warnings)
    assert not dataset.image_path(1).is_file()
    # adding the file by name fills the image in, keeping its boxes
    assert store.add_images("gt", [("a.png", png(4))]) == [1]
    dataset = store.get("gt")
    assert dataset.read_image(1).shape == (48, 64, 3) and dataset.num_boxes() == 1
    store.import_path("gt2", path)
    with pytest.raises(CowdemoError, match=r"a\.png is 60x40, but image a\.png of dataset gt2"):
        store.add_images("gt2", [("a.png", png(4, 60, 40))])  # same name, other size


def test_atomic_save_leaves_the_old_file_when_writing_fails(herd, monkeypatch):
    store, ids = herd
    store.set_boxes("herd", ids[0], [("cow", [1, 1, 10, 10])])
    before = snapshot(store.root)

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(CowdemoError, match="No space left"):
        store.set_boxes("herd", ids[0], [("cow", [2, 2, 20, 20])])
    monkeypatch.undo()
    assert snapshot(store.root) == before  # no half file, no temp file left behind
    assert store.boxes("herd", ids[0]) == [("cow", [1.0, 1.0, 10.0, 10.0])]


WRITER = """
import sys
from cowdemo.datasets.store import DatasetStore
root, name, image_id, extra, count = sys.argv[1:]
store = DatasetStore(root)
for i in range(int(count)):
    store.set_boxes(name, int(image_id), [("cow", [i % 20, 1, i % 20 + 10 + int(extra), 20])])
print("ok")
"""

READER = """
import json, sys, time
from pathlib import Path
from cowdemo.datasets.coco import CocoDataset
root, stop = sys.argv[1:]
reads = 0
while not Path(stop).exists():
    for name in ("herd", "other"):
        CocoDataset.load(Path(root) / name)   # raises on a half-written file
        reads += 1
print(reads)
"""


def spawn(code: str, *args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_parallel_processes_never_lose_or_corrupt_a_save(tmp_path):
    """Real processes: four sessions edit four images of one dataset, one edits another dataset,
    two fight over the same image, and a reader reads all the time."""
    store = DatasetStore(tmp_path / "datasets")
    store.create("herd")
    store.create("other")
    ids = store.add_images("herd", [(f"{i}.png", png(i, 64, 48)) for i in range(5)])
    (other_id,) = store.add_images("other", [("o.png", png(9, 64, 48))])
    count = 25
    stop = tmp_path / "stop"
    reader = spawn(READER, store.root, stop)
    writers = [spawn(WRITER, store.root, "herd", image_id, 0, count) for image_id in ids[:4]]
    writers.append(spawn(WRITER, store.root, "other", other_id, 0, count))
    rivals = [spawn(WRITER, store.root, "herd", ids[4], extra, count) for extra in (1, 2)]
    for process in writers + rivals:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and out.strip() == "ok", err
    stop.touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out) > 0
    last = (count - 1) % 20
    herd = store.get("herd")
    for image_id in ids[:4]:
        assert store.boxes("herd", image_id) == [("cow", [last, 1, last + 10, 20])]
    assert store.boxes("other", other_id) == [("cow", [last, 1, last + 10, 20])]
    # the contested image ends with one of the two last saves, whole
    assert store.boxes("herd", ids[4]) in ([("cow", [last, 1, last + 11, 20])],
                                           [("cow", [last, 1, last + 12, 20])])
    annotation_ids = [a["id"] for a in herd.coco["annotations"]]
    assert len(annotation_ids) == len(set(annotation_ids)) == 5


LOOPER = """
import sys
from cowdemo.datasets.store import DatasetStore
store = DatasetStore(sys.argv[1])
i = 0
while True:
    i += 1
    store.set_boxes("herd", 1, [("cow", [1, 1, 2 + i % 50, 10])] * (1 + i % 7))
    if i == 5:
        print("writing", flush=True)
"""


def test_a_process_killed_mid_save_leaves_a_valid_dataset(herd):
    store, _ = herd
    looper = spawn(LOOPER, store.root)
    assert looper.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    looper.send_signal(signal.SIGKILL)
    looper.wait(timeout=30)
    dataset = CocoDataset.load(store.root / "herd")  # whole, whatever the moment of death
    assert dataset.num_boxes() >= 1
    # the lock died with the process; the next save works and sweeps any temp file
    store.set_boxes("herd", 1, [("cow", [3, 3, 9, 9])])
    assert store.boxes("herd", 1) == [("cow", [3.0, 3.0, 9.0, 9.0])]
    assert list((store.root / "herd").glob(".annotations.json.*")) == []


def test_a_new_store_object_sees_everything(herd):
    """What a server restart does: a fresh store on the same folder."""
    store, ids = herd
    store.set_boxes("herd", ids[2], [("calf", [4, 4, 8, 8])])
    again = DatasetStore(store.root)
    assert again.boxes("herd", ids[2]) == [("calf", [4.0, 4.0, 8.0, 8.0])]


def test_rejected_import_changes_nothing(herd, tmp_path):
    store, _ = herd
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 10,
                                           "height": 10}],
                               "annotations": [{"id": 1, "image_id": 2, "category_id": 1,
                                                "bbox": [0, 0, 5, 5]}],
                               "categories": [{"id": 1, "name": "cow"}]}))
    before = snapshot(store.root)
    for name, replace in (("new", False), ("herd", True)):
        with pytest.raises(formats.ImportRejected) as info:
            store.import_path(name, bad, replace=replace)
        assert "unknown image id 2" in info.value.report.errors[0]
        assert snapshot(store.root) == before
    with pytest.raises(CowdemoError, match="already exists"):
        store.import_path("herd", bad)


def test_import_dedups_images_with_the_same_content(tmp_path, store):
    folder = tmp_path / "twins"
    (folder / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        (folder / "images" / name).write_bytes(png(3))
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48},
                       {"id": 2, "file_name": "b.png", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]},
                            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [9, 9, 5, 5]}],
            "categories": [{"id": 1, "name": "cow"}]}
    (folder / "annotations.json").write_text(json.dumps(coco))
    dataset, report = store.import_path("twins", folder)
    assert len(dataset.images) == 1 and dataset.num_boxes() == 2
    assert any("same content" in w for w in report.warnings)


def test_a_full_disk_is_one_clear_error(store, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", full)
    with pytest.raises(CowdemoError, match=r"No space left on device.*COWDEMO_DATA"):
        store.create("herd")
