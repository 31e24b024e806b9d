"""The Annotate page through streamlit.testing's AppTest: the sample dataset, progress and
navigation, pre-annotation with real (small) models, import and bad input. The canvas itself
needs a browser (tests/browser/test_annotate_browser.py); here it returns its initial drawing."""

from __future__ import annotations

import json

import pytest
from helpers import open_page
from streamlit.testing.v1 import AppTest

from cowdemo import images
from cowdemo.datasets import formats
from cowdemo.datasets.store import DatasetStore
from cowdemo.datasets.synthetic import make_scene

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


def test_sample_dataset_is_ready(store):
    at = annotate_page()
    assert at.selectbox(key="annotate_dataset").value == "synthetic-sample"
    assert progress_text(at) == "12 of 12 images done"
    boxes = next(c for c in texts(at, "caption") if c.startswith("Boxes in image pixels"))
    assert boxes.count("cow  [x1, y1, x2, y2]") == len(store.boxes("synthetic-sample", 1))
    assert any("all saved" in c for c in texts(at, "caption"))
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
    assert "cows-yolo" in store.names() and store.get("cows-yolo").num_boxes() == 31
    assert at.selectbox(key="annotate_dataset").value == "cows-yolo"
    assert progress_text(at) == "12 of 12 images done"
    assert not at.exception


def test_adding_images_reports_bad_files_and_keeps_good_ones(store):
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
    assert any("Added 1 image(s) to herd (1 already in the dataset)" in s
               for s in texts(at, "success"))
    assert any("broken.jpg" in e for e in texts(at, "error"))
    assert len(store.get("herd").images) == 2
    assert progress_text(at) == "0 of 2 images done"
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
