"""Adding model weights from the browser: on a fresh install with no model ready, Home takes a
wrong file (refused, nothing added) and then the real YOLOX-Nano export, which becomes model A
and is offered as a base on the Fine-tune page."""

from __future__ import annotations

import pytest
from browser_support import click_until, screenshot, wait_for_app
from helpers import shared_path
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_home_adds_weights_and_refuses_a_wrong_file(page, server_factory, tmp_path):
    onnx = shared_path("models/yolox-nano/yolox_nano.onnx")
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx model")
    server = server_factory(COWDEMO_CHECKPOINTS=str(folder))
    page.goto(server.url)
    page.get_by_text("No model is ready yet").wait_for()
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    page.get_by_text("Add model weights (.pth, .pt, .onnx)").click()
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')

    uploader.set_input_files(str(bad))
    wait_for_app(page)
    error = page.locator('[data-testid="stAlert"]').filter(has_text="broken.onnx")
    click_until(page, page.get_by_role("button", name="Add to checkpoints"), error)
    assert "is not a readable ONNX model" in error.inner_text()
    assert sorted(p.name for p in folder.iterdir()) == [], "nothing added, no temporary file"
    screenshot(page, "home-weights-refused")

    page.reload()  # a new session: the uploader is empty, the refused file is not there
    page.get_by_text("No model is ready yet").wait_for()
    wait_for_app(page)
    page.get_by_text("Add model weights (.pth, .pt, .onnx)").click()
    uploader.set_input_files(str(onnx))
    wait_for_app(page)
    click_until(page, page.get_by_role("button", name="Add to checkpoints"),
                page.get_by_text("Added yolox_nano.onnx: a YOLOX ONNX export"))
    assert (folder / "yolox_nano.onnx").read_bytes() == onnx.read_bytes()
    page.reload()
    page.get_by_text("What the pages use").wait_for()
    wait_for_app(page)
    text = main.inner_text()
    assert "No model is ready yet" not in text and "Model A: yolox_nano" in text
    screenshot(page, "home-weights-added")

    page.get_by_role("link", name="Fine-tune").first.click()
    wait_for_app(page)
    expect(page.get_by_role("combobox", name="Base model")).to_have_value(
        "yolox_nano · YOLOX · ready", timeout=60_000)
    screenshot(page, "finetune-uploaded-base")
