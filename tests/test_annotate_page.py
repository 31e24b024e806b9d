"""The Annotate page through streamlit.testing's AppTest: the sample dataset, progress and
navigation, pre-annotation with real (small) models, import and bad input. The canvas itself
needs a browser (tests/browser/test_annotate_browser.py); here it returns its initial drawing."""

from __future__ import annotations

import json
import os

import pytest
from browser_support import copy_model
from helpers import cow_photo_path, open_page
from streamlit.testing.v1 import AppTest

from cowdemo import images
from cowdemo.datasets import formats
from cowdemo.datasets.store import SAMPLE_DONE, SAMPLE_IMAGES, SAMPLE_NAME, DatasetStore
from cowdemo.datasets.synthetic import make_scene
from cowdemo.samples import COW_PHOTO_NAME, cow_photo

pytestmark = pytest.mark.slow


@pytest.fixture
def store(demo_env, tmp_path, monkeypatch) -> DatasetStore:
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    return DatasetStore()


def annotate_page() -> AppTest:
    at = open_page("views/annotate.py", timeout=120)
    return at


def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def add_herd(store: DatasetStore, n: int = 3) -> list[int]:
    store.create("herd", ["cow", "calf"])
    return store.add_images("herd", [(f"{i}.png", images.encode_png(make_scene(seed=i).image))
                                     for i in range(n)])


def sample_total() -> int:
    return SAMPLE_IMAGES + (cow_photo() is not None)


def test_sample_dataset_is_ready_with_work_left(store):
    """The sample has done images (ground truth) and images left to label; the page opens the
    first one not done: the real cow photo when the machine has it."""
    at = annotate_page()
    assert at.selectbox(key="annotate_dataset").value == SAMPLE_NAME
    assert progress_text(at) == f"{SAMPLE_DONE} of {sample_total()} images done"
    first_todo = COW_PHOTO_NAME if cow_photo() else "synthetic_000008.png"
    assert any(m.value.startswith(f"**{first_todo}**") and "not done yet" in m.value
               for m in at.markdown)
    assert "No boxes on this image yet." in texts(at, "caption")
    assert any("all saved" in c for c in texts(at, "caption"))
    assert store.summary(SAMPLE_NAME).num_boxes == len(store.annotated(SAMPLE_NAME)
                                                      .coco["annotations"])
    assert not at.error


def test_done_and_navigation(store):
    ids = add_herd(store)
    at = annotate_page()
    at.selectbox(key="annotate_dataset").set_value("herd").run()
    assert progress_text(at) == "0 of 3 images done"
    assert at.query_params["dataset"] == "herd" and at.query_params["image"] == str(ids[0])
    at.button(key="nav_done_next").click().run()
    assert progress_text(at) == "1 of 3 images done"
    assert store.summary("herd").num_annotated_images == 1
    assert at.query_params["image"] == str(ids[1])
    # "done" with zero boxes, by the toggle, then moving back and forth
    at.toggle(key=f"done_herd_{ids[1]}_False").set_value(True).run()
    assert progress_text(at) == "2 of 3 images done"
    at.button(key="nav_next").click().run()
    assert at.query_params["image"] == str(ids[2])
    at.button(key="nav_previous").click().run()
    assert at.query_params["image"] == str(ids[1])
    at.button(key="nav_done_next").click().run()  # opens the one left to do
    assert at.query_params["image"] == str(ids[2])
    at.button(key="nav_done_next").click().run()
    assert progress_text(at) == "3 of 3 images done"
    assert any("All 3 images of herd are done" in s for s in texts(at, "success"))
    assert not at.exception and not at.error


def test_pre_annotation_starts_from_the_models_boxes(store):
    """The demo "COCO" model calls every cow a dog (the notebook's moment); labelled as cow, its
    boxes become a starting point. The fine-tuned model's boxes are cows already."""
    ids = add_herd(store, 1)
    at = annotate_page()
    at.selectbox(key="annotate_dataset").set_value("herd").run()
    assert at.selectbox(key="prefill_model").value == "frcnn-mobilenet-v3-coco"  # model A
    at.button(key="prefill").click().run()
    assert store.boxes("herd", ids[0]) == []  # dogs, hidden by the sidebar's class filter (cow)
    assert any("hidden by the class filter" in w and "dog" in w for w in texts(at, "warning"))
    at.sidebar.toggle(key="all_classes").set_value(True).run()
    at.button(key="prefill").click().run()
    assert any("'dog' is not a class of this dataset" in e for e in texts(at, "error"))
    at.selectbox(key="prefill_label_herd").set_value("cow").run()
    at.button(key="prefill").click().run()
    boxes = store.boxes("herd", ids[0])
    assert boxes and all(c == "cow" for c, _ in boxes)
    assert any("added" in s for s in texts(at, "success"))
    # again: nothing new (the model's boxes overlap what is there), nothing removed
    at.button(key="prefill").click().run()
    assert store.boxes("herd", ids[0]) == boxes
    caption = next(c for c in texts(at, "caption") if c.startswith("Boxes in image pixels"))
    assert caption.count("cow  [x1") == len(boxes)
    assert not at.exception


def test_import_rejects_bad_files_and_takes_good_ones(store, tmp_path):
    at = annotate_page()
    before = store.names()
    bad = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 1]},
                           {"id": 1, "image_id": 3, "category_id": 1, "bbox": [0, 0, 1, 1]}],
           "categories": [{"id": 1, "name": "cow"}]}
    at.file_uploader(key="import_upload").set_value(
        [("bad.json", json.dumps(bad).encode(), "application/json")]).run()
    at.button(key="import_button").click().run()
    assert any("import rejected, 3 problems" in e for e in texts(at, "error"))
    report = at.code[0].value
    assert "outside the 10x10 image" in report and "unknown image id 3" in report
    assert "annotation id 1 is used 2 times" in report
    assert store.names() == before
    # a good zip becomes a dataset and is opened
    sample = store.get("synthetic-sample")
    at.file_uploader(key="import_upload").set_value(
        [("cows-yolo.zip", formats.zip_bytes(sample, "yolo"), "application/zip")]).run()
    at.button(key="import_button").click().run()
    imported = store.get("cows-yolo")
    assert "cows-yolo" in store.names() and imported.num_boxes() == sample.num_boxes()
    assert at.selectbox(key="annotate_dataset").value == "cows-yolo"
    done = sum(1 for im in imported.images if formats.is_done(im))
    assert progress_text(at) == f"{done} of {len(sample.images)} images done"
    assert not at.exception


def test_adding_images_reports_one_result(store):
    """Good files are added, a bad one is named, and one message says both (never "Added 2"
    beside "none was added")."""
    add_herd(store, 1)
    at = annotate_page()
    at.selectbox(key="annotate_dataset").set_value("herd").run()
    key = next(u.key for u in at.file_uploader if u.key.startswith("add_images_"))
    at.file_uploader(key=key).set_value([
        ("new.png", images.encode_png(make_scene(seed=9).image), "image/png"),
        ("again.png", images.encode_png(make_scene(seed=0).image), "image/png"),  # a duplicate
        ("broken.jpg", b"\xff\xd8\xff\xe0 nope", "image/jpeg"),
    ]).run()
    at.button(key="add_images_button").click().run()
    assert not at.success and not at.error
    [message] = texts(at, "warning")
    head, *lines = message.splitlines()
    assert head == "Added 1 image to **herd** (1 already in it); 1 of 3 files not added:"
    assert len(lines) == 1 and lines[0].startswith("- broken.jpg")
    assert "none was" not in message
    assert len(store.get("herd").images) == 2
    assert progress_text(at) == "0 of 2 images done"
    # only bad files: one error, nothing added
    key = next(u.key for u in at.file_uploader if u.key.startswith("add_images_"))
    at.file_uploader(key=key).set_value([("broken.jpg", b"\xff\xd8 nope", "image/jpeg")]).run()
    at.button(key="add_images_button").click().run()
    assert not at.success and not at.warning
    [message] = texts(at, "error")
    assert message.startswith("Nothing added to **herd**: the file could not be added:\n- ")
    # only good files: one success
    key = next(u.key for u in at.file_uploader if u.key.startswith("add_images_"))
    at.file_uploader(key=key).set_value(
        [("more.png", images.encode_png(make_scene(seed=11).image), "image/png")]).run()
    at.button(key="add_images_button").click().run()
    assert texts(at, "success") == ["Added 1 image to **herd**."] and not at.error
    assert len(store.get("herd").images) == 3
    assert not at.exception


def test_a_new_session_never_adds_to_the_sample_by_default(store):
    """A fresh tab opens the user's own dataset (the one changed last), not the sample; on the
    sample, adding images needs an explicit tick."""
    at = annotate_page()
    assert at.selectbox(key="annotate_dataset").value == SAMPLE_NAME  # nothing else yet
    key = next(u.key for u in at.file_uploader if u.key.startswith("add_images_"))
    at.file_uploader(key=key).set_value(
        [("mine.png", images.encode_png(make_scene(seed=4).image), "image/png")]).run()
    assert any("is the app's sample dataset" in i for i in texts(at, "info"))
    assert at.button(key="add_images_button").disabled
    at.checkbox(key="add_to_sample").check().run()
    assert not at.button(key="add_images_button").disabled
    add_herd(store, 1)
    store.create("older")
    os.utime(store.path("older") / "annotations.json", (1, 1))
    fresh = annotate_page()
    assert fresh.selectbox(key="annotate_dataset").value == "herd"
    assert not [i for i in texts(fresh, "info") if "is the app's sample dataset" in i]
    assert not fresh.exception


def test_pre_annotation_on_a_fresh_install(store, monkeypatch, tmp_path, yolox_nano_path):
    """The shared YOLOX-Nano alone: on the sample's real photo pre-annotation adds the cow; on a
    cartoon scene where it finds nothing above the threshold, the message says why."""
    monkeypatch.setenv("COWDEMO_COW_PHOTO", str(cow_photo_path()))
    copy_model(yolox_nano_path, tmp_path / "checkpoints")
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(tmp_path / "checkpoints"))
    at = annotate_page()
    photo_id = SAMPLE_DONE + 1
    assert at.query_params["image"] == str(photo_id)
    at.button(key="prefill").click().run()
    assert [c for c, _ in store.boxes(SAMPLE_NAME, photo_id)] == ["cow"]
    assert any(s.startswith("yolox_nano: added 1 box with score ≥ 0.50")
               for s in texts(at, "success"))
    ids = add_herd(store, 2)
    at.run()  # the new dataset appears in the list
    at.selectbox(key="annotate_dataset").set_value("herd").run()
    at.selectbox(key="nav_pick_herd_" + str(ids[0])).set_value(ids[1]).run()
    at.button(key="prefill").click().run()
    assert store.boxes("herd", ids[1]) == []
    [warning] = [w for w in texts(at, "warning") if "added no box" in w]
    assert warning.lstrip("⚠ ").startswith(
        "yolox_nano added no box: it finds nothing with score ≥ 0.50 here (its best, cow, "
        "scores 0.")
    assert "lower the score threshold" in warning
    assert not at.exception


def test_an_idle_session_never_overwrites_another_sessions_save(store):
    """Session A shows an image; session B saves boxes on it; A reruns with its canvas untouched
    and must not write its stale boxes back (only a change on A's canvas saves)."""
    ids = add_herd(store, 1)
    store.set_boxes("herd", ids[0], [("cow", [10, 10, 50, 50])])
    at = annotate_page()
    at.selectbox(key="annotate_dataset").set_value("herd").run()
    store.set_boxes("herd", ids[0], [("calf", [1, 2, 3, 4])])  # session B
    at.run()
    at.toggle(key="prefill_auto").set_value(False).run()
    assert store.boxes("herd", ids[0]) == [("calf", [1.0, 2.0, 3.0, 4.0])]
    assert not at.exception
