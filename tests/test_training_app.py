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
    assert base.options == ["frcnn-mobilenet-v3-coco", "cows-finetuned"]
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
