"""The Fine-tune page through AppTest: the form, one job per device, bad input, and a
finished job read back from its folder."""

from __future__ import annotations

import pytest
from helpers import open_page

from cowdemo.training.locks import DeviceLock

pytestmark = pytest.mark.slow


@pytest.fixture
def finetune(demo_env, tmp_path, monkeypatch):
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    at = open_page("views/finetune.py", timeout=120)
    return at


def test_form_offers_trainable_models_and_the_app_datasets(finetune):
    at = finetune
    assert at.title[0].value == "🎯 Fine-tune"
    base = next(s for s in at.selectbox if s.label == "Base model")
    assert base.options == ["frcnn-mobilenet-v3-coco · Faster R-CNN · ready",
                            "cows-finetuned · Faster R-CNN · ready"]
    dataset = next(s for s in at.selectbox if s.label == "Dataset")
    assert dataset.value == "synthetic-sample", "the app's sample dataset is made on first use"
    assert any("synthetic cows" in o for o in dataset.options)
    assert next(m for m in at.multiselect if m.label == "Classes").value == ["cow"]
    assert any("No fine-tune yet" in i.value for i in at.info)


def test_busy_device_disables_start_with_a_clear_message(finetune):
    at = finetune
    with DeviceLock("cpu", {"job": "other-job", "out": "/x/herd.pt"}):
        at.run()
        assert any("cpu is busy with another training job" in i.value for i in at.info)
        assert next(b for b in at.button if b.label == "Start fine-tuning").disabled


def test_missing_path_is_one_error_line(finetune):
    at = finetune
    dataset = next(s for s in at.selectbox if s.label == "Dataset")
    dataset.set_value(dataset.options[-1]).run()
    next(t for t in at.text_input if t.label == "Path or URL").set_value("/no/such/folder")
    next(b for b in at.button if b.label == "Start fine-tuning").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Dataset /no/such/folder not found: give a dataset name, a folder with "
        "annotations.json, a COCO instances JSON or a Deep Lake path."]


def test_a_typed_model_name_survives_reruns_and_an_untouched_one_follows_the_dataset(finetune):
    at = finetune
    name = next(t for t in at.text_input if t.label == "New model name")
    assert name.value.startswith("cow-synthetic-sample-")
    dataset = next(s for s in at.selectbox if s.label == "Dataset")
    dataset.set_value(next(o for o in dataset.options if "synthetic cows" in o)).run()
    name = next(t for t in at.text_input if t.label == "New model name")
    assert name.value.startswith("cow-synthetic-"), name.value
    assert "sample" not in name.value
    name.set_value("my-herd").run()
    dataset = next(s for s in at.selectbox if s.label == "Dataset")
    dataset.set_value("synthetic-sample").run()
    next(n for n in at.number_input if n.label == "Iterations").set_value(7).run()
    assert next(t for t in at.text_input if t.label == "New model name").value == "my-herd"


def test_with_only_a_yolox_onnx_export_ready_it_is_the_base_with_yolox_cpu_defaults(
        tmp_path, monkeypatch):
    import shutil

    from helpers import shared_path

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shutil.copy(shared_path("models/yolox-nano/yolox_nano.onnx"), folder / "yolox_nano.onnx")
    for key, value in (("COWDEMO_CHECKPOINTS", folder), ("COWDEMO_DATA", tmp_path / "data"),
                       ("COWDEMO_OFFLINE", "1"), ("TORCH_HOME", tmp_path / "torch")):
        monkeypatch.setenv(key, str(value))
    at = open_page("views/finetune.py", timeout=120)
    base = next(s for s in at.selectbox if s.label == "Base model")
    assert base.options == ["yolox_nano · YOLOX · ready"], "only what can train is offered"
    numbers = {n.label: n.value for n in at.number_input}
    assert (numbers["Iterations"], numbers["Image size"], numbers["Batch size"]) == (300, 320, 8)
    assert any("YOLOX on a CPU starts with 300 steps" in c.value for c in at.caption)
    assert not next(b for b in at.button if b.label == "Start fine-tuning").disabled


def test_with_no_trainable_model_it_says_which_file_to_put_where(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for key, value in (("COWDEMO_CHECKPOINTS", folder), ("COWDEMO_DATA", tmp_path / "data"),
                       ("COWDEMO_OFFLINE", "1"), ("TORCH_HOME", tmp_path / "torch")):
        monkeypatch.setenv(key, str(value))
    at = open_page("views/finetune.py", timeout=120)
    assert [w.value for w in at.warning if "fine-tuned" in w.value] == [
        "No model that can be fine-tuned is ready. Put a YOLOX ONNX export (for example "
        "yolox_nano.onnx from the YOLOX releases) or Megvii's yolox_nano.pth, or torchvision's "
        f"fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth, in {folder}, then reload this page."]
