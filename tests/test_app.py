"""App logic through streamlit.testing's AppTest: real pages, real models, no browser."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cowdemo.datasets.synthetic import make_scene

pytestmark = pytest.mark.slow


REPO = Path(__file__).resolve().parents[1]


def app() -> AppTest:
    return AppTest.from_file(str(REPO / "app.py"), default_timeout=120)


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_home_lists_models_and_device(demo_env):
    at = app().run()
    assert not at.exception
    assert at.title[0].value.startswith("🐄 cowdemo")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Models ready"].startswith("2 of")
    assert metrics["Device"].startswith("cpu")
    table = at.dataframe[0].value
    assert {"frcnn-mobilenet-v3-coco", "cows-finetuned"} <= set(table["model"])
    assert at.sidebar.selectbox(key="model_a").value == "frcnn-mobilenet-v3-coco"
    assert at.sidebar.selectbox(key="model_b").value == "cows-finetuned"


def test_home_offline_without_weights_says_what_is_needed(monkeypatch, tmp_path):
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    at = app().run()
    assert not at.exception
    assert any("No model is ready yet" in w.value for w in at.warning)
    reasons = " ".join(at.dataframe[0].value["how to get it"])
    assert "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth" in reasons
    for page in ("views/predict.py", "views/evaluate.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert any("No model is ready:" in w.value for w in at.main.warning), page
    at.switch_page("views/runs.py").run()
    assert not at.exception and "No runs yet" in at.main.info[0].value


def test_predict_samples_show_dog_vs_cow_side_by_side(demo_env):
    at = app().run()
    at.switch_page("views/predict.py").run()
    assert not at.exception
    images = at.get("image")
    assert len(images) == 6, "3 samples x 2 models"
    captions = [c.value for c in at.caption]
    # the class filter defaults to cow: model A's dogs are hidden and explained
    assert any(re.search(r"also sees \d+ dog \(best 1.00\)", i.value) for i in at.info)
    tables = [t.value for t in at.dataframe]
    assert tables and all(set(t["class"]) == {"cow"} for t in tables)
    at.toggle(key="all_classes").set_value(True).run()
    tables = [set(t.value["class"]) for t in at.dataframe]
    assert {"dog"} in tables and {"cow"} in tables
    assert any("Score ≥ 0.50" in c for c in captions)


def test_predict_upload_and_corrupt_upload(demo_env):
    at = app().run()
    at.switch_page("views/predict.py").run()
    uploader = at.file_uploader[0]
    uploader.set_value(
        [
            ("cows.png", png_bytes(make_scene(seed=5).image), "image/png"),
            ("broken.jpg", b"\xff\xd8\xff\xe0 this is not really a jpeg", "image/jpeg"),
        ]
    ).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "broken.jpg" in errors[0] and "\n" not in errors[0]
    assert [s.value for s in at.main.subheader] == ["cows.png"]
    assert len(at.get("image")) == 2
