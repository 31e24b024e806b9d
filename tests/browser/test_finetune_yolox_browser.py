"""End to end in headless Chromium, as a new user with only the YOLOX-Nano ONNX export: the
Fine-tune page offers it (tagged ready), a tiny YOLOX fine-tune runs with progress and the loss
chart, the new model is then in the model pickers; a job that fails leaves Start enabled."""

from __future__ import annotations

import re

import pytest
from browser_support import (
    choose,
    click_until,
    copy_model,
    fill_field,
    screenshot,
    wait_for_app,
)
from helpers import shared_path
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _set(page, label: str, value: str) -> None:
    fill_field(page, page.get_by_label(label, exact=True), value)


def test_a_tiny_yolox_fine_tune_from_the_onnx_export_then_a_failed_job(page, server_factory,
                                                                        tmp_path):
    checkpoints = tmp_path / "checkpoints"
    copy_model(shared_path("models/yolox-nano/yolox_nano.onnx"), checkpoints)
    data = tmp_path / "data"
    server = server_factory(COWDEMO_CHECKPOINTS=str(checkpoints), COWDEMO_DATA=str(data),
                            COWDEMO_RUNS_DB=f"sqlite:///{data / 'runs.sqlite'}")
    page.goto(f"{server.url}/fine-tune")
    wait_for_app(page)
    page.get_by_role("heading", name="🎯 Fine-tune").wait_for()
    expect(page.get_by_role("combobox", name="Base model")).to_have_value(
        "yolox_nano · YOLOX · ready")
    page.get_by_text(re.compile("YOLOX on a CPU starts with 300 steps")).wait_for()
    screenshot(page, "finetune-yolox-form")
    for label, value in (("Iterations", "3"), ("Image size", "128"), ("Batch size", "2")):
        _set(page, label, value)
    _set(page, "New model name", "browser-nano")
    click_until(page, page.get_by_role("button", name="Start fine-tuning"),
                page.get_by_text(re.compile(r"browser-nano · ")), timeout=60_000)
    page.get_by_text(re.compile(r"browser-nano · completed")).wait_for(timeout=600_000)
    wait_for_app(page)
    expect(page.locator('[data-testid="stPlotlyChart"]').filter(
        has_text=re.compile(r"Loss \(iteration 3\)"))).to_have_count(1)
    page.get_by_text(re.compile("browser-nano is ready and listed in every model picker")) \
        .wait_for()
    screenshot(page, "finetune-yolox-completed")
    assert (checkpoints / "browser-nano.pt").is_file()
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar.get_by_role("combobox", name="Model A", exact=True)).to_have_value(
        "yolox_nano")  # a new fine-tune does not push the pretrained model out of A
    assert choose(page, "Model B", "browser-nano", within=sidebar) == 1, "listed once"

    # A job that fails inside its process (YOLOX needs sides that are multiples of 32).
    if not page.get_by_label("Image size", exact=True).is_visible():
        page.get_by_text("New fine-tune").click()
    _set(page, "Image size", "140")
    _set(page, "New model name", "browser-bad")
    click_until(page, page.get_by_role("button", name="Start fine-tuning"),
                page.get_by_text(re.compile(r"browser-bad · ")), timeout=60_000)
    page.get_by_text(re.compile(r"browser-bad · failed · ")).first.wait_for(timeout=300_000)
    wait_for_app(page)
    page.get_by_text(re.compile("multiple of 32")).first.wait_for()
    expect(page.get_by_text(re.compile("is busy with another training job"))).to_have_count(0)
    if not page.get_by_role("button", name="Start fine-tuning").is_visible():
        page.get_by_text("New fine-tune").click()
    expect(page.get_by_role("button", name="Start fine-tuning")).to_be_enabled()
    screenshot(page, "finetune-yolox-failed")
