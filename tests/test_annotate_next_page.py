"""The Annotate page's label-error review and the Track page's "send frames to a dataset" panel,
through streamlit.testing's AppTest with the shared YOLOX-Nano as the only model."""

from __future__ import annotations

import numpy as np
import pytest
from browser_support import copy_model
from helpers import open_page

from cowdemo import images
from cowdemo.datasets import formats
from cowdemo.datasets.store import DatasetStore
from cowdemo.datasets.synthetic import make_scene

pytestmark = pytest.mark.slow


@pytest.fixture
def store(monkeypatch, tmp_path, yolox_nano_path) -> DatasetStore:
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    copy_model(yolox_nano_path, tmp_path / "checkpoints")
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    return DatasetStore()


def test_review_adds_a_forgotten_box_and_deletes_a_stray_one(store, yolox_nano_path):
    """Scene 2 holds a cow YOLOX-Nano finds at 0.77, marked done without boxes (forgotten); a
    box drawn on empty grass in scene 5 is stray. One click fixes each."""
    from cowdemo.models.yolox_onnx import YoloxOnnxDetector

    store.create("herd")
    forgot, stray = store.add_images("herd", [
        ("cow.png", images.encode_png(make_scene(seed=2).image)),
        ("grass.png", images.encode_png(make_scene(seed=5, n_animals=0).image))])
    store.set_boxes("herd", stray, [("cow", [500, 400, 560, 450])])
    for image_id in (forgot, stray):
        store.mark_done("herd", image_id)
    cows = YoloxOnnxDetector(yolox_nano_path).predict(store.get("herd").read_image(forgot)) \
        .filter(0.7, ["cow"])
    assert len(cows) == 1

    at = open_page("views/annotate.py")
    at.button(key="review_find").click().run()
    lines = [m.value for m in at.markdown if m.value[:3] in ("1. ", "2. ")]
    assert lines[0].startswith("1. Stray cow box? No model finds anything at x 500, y 400 "
                               "(60×50 px) on grass.png"), lines
    assert lines[1].startswith(f"2. Missing cow? yolox_nano found one (score "
                               f"{cows.scores[0]:.2f})"), lines
    assert lines[1].endswith("on cow.png, with no box drawn there")
    at.button(key=f"review_fix_1_{stray}").click().run()
    assert store.boxes("herd", stray) == []
    assert "Deleted the stray cow box on grass.png." in [s.value for s in at.success]
    at.button(key=f"review_fix_1_{forgot}").click().run()
    ((name, box),) = store.boxes("herd", forgot)
    assert name == "cow" and np.allclose(box, cows.xyxy[0], atol=1e-3)
    assert any("No likely label error" in s.value for s in at.success)
    assert not at.exception


def test_track_page_sends_the_frames_around_switches_to_a_dataset(store):
    at = open_page("views/track.py", timeout=300)
    at.button[0].click().run()  # Track: YOLOX-Nano on the synthetic sample
    assert at.radio(key="frames_which").value == "Around the switches and track breaks"
    (plan,) = [c.value for c in at.caption if "frame(s), in this order" in c.value]
    count = int(plan.split(" ")[0])
    assert count > 0
    at.button(key="frames_add").click().run()
    assert not at.exception
    (note,) = [s.value for s in at.success if "frame(s) of the video" in s.value]
    dataset = store.get("synthetic-sample-seed0-frames")
    assert len(dataset.images) == count and note.startswith(f"Added {count} frame(s)")
    assert not any(formats.is_done(im) for im in dataset.images)
    assert dataset.num_boxes() > 0
    frames = [im["video"]["frame"] for im in dataset.images]
    assert plan.split("order: ")[1].startswith(", ".join(str(f) for f in frames[:3]))
