"""App logic through streamlit.testing's AppTest: real pages, real models, no browser."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
from browser_support import copy_model
from helpers import cow_photo_path
from PIL import Image
from streamlit.testing.v1 import AppTest

from cowdemo.datasets.synthetic import make_scene
from cowdemo.samples import COW_PHOTO_NAME, sample_images

pytestmark = pytest.mark.slow


REPO = Path(__file__).resolve().parents[1]


def app() -> AppTest:
    return AppTest.from_file(str(REPO / "app.py"), default_timeout=120)


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def loop_steps(at: AppTest) -> list[str]:
    """The Home page's numbered steps, one per Markdown line (as the browser lists them)."""
    text = next(m.value for m in at.markdown if "The loop" in m.value)
    return [line for line in text.splitlines() if re.match(r"\d\. ", line)]


def test_home_lists_models_and_device(demo_env):
    at = app().run()
    assert not at.exception
    assert at.title[0].value.startswith("🐄 cowdemo")
    assert [step[:3] for step in loop_steps(at)] == ["1. ", "2. ", "3. ", "4. ", "5. ", "6. "]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Models ready"].startswith("2 of")
    assert metrics["Device"] == "CPU", "short, so the metric is never cut off"
    assert any(re.fullmatch(r"cpu \(\d+ threads?\)", c.value) for c in at.caption)
    table = at.table[0].value
    assert {"frcnn-mobilenet-v3-coco", "cows-finetuned"} <= set(table["model"])
    assert at.sidebar.selectbox(key="model_a").value == "frcnn-mobilenet-v3-coco"
    assert at.sidebar.selectbox(key="model_b").value == "cows-finetuned"
    uses = next(m.value for m in at.markdown if "What the pages use" in m.value)
    assert "Model A: frcnn-mobilenet-v3-coco**, a Faster R-CNN pretrained on COCO" in uses
    assert "Model B: cows-finetuned**, fine-tuned by cowdemo from frcnn-mobilenet-v3-coco" in uses


def test_home_with_only_yolox_says_what_yolox_does(monkeypatch, tmp_path, yolox_nano_path):
    """A fresh offline install with the shared YOLOX-Nano alone: Home describes that model, not
    a Faster R-CNN that calls cows dog; the missing models say how to get them."""
    copy_model(yolox_nano_path, tmp_path / "checkpoints")
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    at = app().run()
    assert not at.exception
    uses = next(m.value for m in at.markdown if "What the pages use" in m.value)
    assert "Model A: yolox_nano**, a YOLOX detector" in uses and "Faster R-CNN" not in uses
    assert "dog" not in " ".join(m.value for m in at.markdown if "The loop" in m.value)
    assert {m.label: m.value for m in at.metric}["Models ready"].startswith("1 of")
    how = at.expander[0]
    assert how.label.startswith("How to get the") and "not ready" in how.label
    assert "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth" in how.markdown[0].value
    assert not at.warning, "a model is ready"


def test_home_offline_without_weights_says_what_is_needed(monkeypatch, tmp_path):
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    at = app().run()
    assert not at.exception
    assert any("No model is ready yet" in w.value for w in at.warning)
    assert not [m for m in at.markdown if "What the pages use" in m.value]
    reasons = at.expander[0].markdown[0].value
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
    assert len(images) == 2 * len(sample_images()), "every sample, model A and model B"
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


def test_predict_samples_start_with_the_real_photo(monkeypatch, tmp_path, yolox_nano_path):
    """With the real cow photo on the machine, the samples start with it: the YOLOX model that
    sees no cow in most cartoon scenes boxes the real cow."""
    monkeypatch.setenv("COWDEMO_COW_PHOTO", str(cow_photo_path()))
    copy_model(yolox_nano_path, tmp_path / "checkpoints")
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    at = app().run()
    at.switch_page("views/predict.py").run()
    assert not at.exception and not at.error
    headings = [s.value for s in at.main.subheader]
    assert headings == [COW_PHOTO_NAME, "sample-1.png", "sample-2.png", "sample-3.png"]
    assert any("A real photo: Photo by freestocks.org" in c.value for c in at.caption)
    photo_caption = at.get("image")[0].proto.imgs[0].caption
    assert re.fullmatch(r"yolox_nano: 1 cow \(best 0\.9\d\)", photo_caption), photo_caption
    # without the photo the samples are the synthetic scenes alone
    monkeypatch.setenv("COWDEMO_COW_PHOTO", str(tmp_path / "no-photo.jpg"))
    assert [name for name, _ in sample_images()] == ["sample-1.png", "sample-2.png",
                                                     "sample-3.png"]


def test_predict_with_a_model_that_fails_to_load(monkeypatch, tmp_path, yolox_nano_path):
    """Model B's file is broken: one error line for it, model A's boxes, and downloads only for
    model A (no COCO results button for a model that produced nothing)."""
    folder = tmp_path / "checkpoints"
    copy_model(yolox_nano_path, folder)
    (folder / "zz-broken.onnx").write_bytes(b"not an onnx model")
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(folder))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    at = app().run()
    at.sidebar.selectbox(key="model_b").set_value("zz-broken").run()
    at.switch_page("views/predict.py").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("zz-broken: ") and "\n" not in errors[0]
    downloads = [b.proto.label for b in at.get("download_button")]
    assert "COCO results JSON (yolox_nano)" in downloads
    assert not [d for d in downloads if "zz-broken" in d], downloads
    assert len(at.get("image")) == len(sample_images()), "model A only"
    # the same model as A and B is shown once, without duplicate widgets
    at.sidebar.selectbox(key="model_b").set_value("yolox_nano").run()
    assert not at.exception and len(at.get("image")) == len(sample_images())
