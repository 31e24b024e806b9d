"""The Evaluate page in Chromium: two models on the synthetic dataset, every chart for both."""

from __future__ import annotations

import pytest
from browser_support import screenshot, wait_for_app

from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.store import DatasetStore
from cowdemo.datasets.synthetic import make_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_two_models_on_the_synthetic_dataset(page, server_factory, demo_checkpoints, tmp_path):
    # a small synthetic dataset keeps the test quick on 2 CPU cores
    make_dataset(tmp_path / "small", n_images=3, width=320, height=240, seed=7)
    DatasetStore(tmp_path / "data" / "datasets").save("small", CocoDataset.load(tmp_path / "small"))
    server = server_factory(COWDEMO_CHECKPOINTS=str(demo_checkpoints),
                            COWDEMO_DATA=str(tmp_path / "data"))
    page.goto(f"{server.url}/evaluate")
    wait_for_app(page)
    page.get_by_text("Press Evaluate").wait_for()
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").click()
    page.get_by_role("option", name="small").click()
    wait_for_app(page)
    page.get_by_role("button", name="Evaluate").click()
    page.get_by_role("heading", name="Gallery").wait_for(timeout=240_000)
    wait_for_app(page)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot')"
        ".length === 4"
    )
    charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    for i in range(4):
        legend = charts.nth(i).locator(".legendtext").evaluate_all(
            "nodes => nodes.map(n => n.textContent)")
        text = " ".join(legend)
        assert "frcnn-mobilenet-v3-coco" in text and "cows-finetuned" in text, text
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    assert any("frcnn-mobilenet-v3-coco AP" in m for m in metrics)
    assert any("cows-finetuned AP" in m and "vs frcnn-mobilenet-v3-coco" in m for m in metrics)
    assert page.locator('[data-testid="stImage"]').count() >= 2, "gallery, both models"
    screenshot(page, "evaluate")
    # the same inputs again: stored results come back without predicting
    page.reload()
    wait_for_app(page)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").click()
    page.get_by_role("option", name="small").click()
    wait_for_app(page)
    page.get_by_role("button", name="Evaluate").click()
    page.get_by_text("stored result").first.wait_for(timeout=60_000)
