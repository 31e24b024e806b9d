"""The Evaluate page in Chromium: two models on the synthetic dataset, every chart for both, the
A-vs-B sentence, error types filtering the gallery, calibration, and label-error suspects that
open on the Annotate page."""

from __future__ import annotations

import contextlib

import pytest
from browser_support import choose, click_until, screenshot, settled_box, wait_for_app
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.store import DatasetStore
from cowdemo.datasets.synthetic import make_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ALL_CAPTIONS_END = """end => {
    const captions = [...document.querySelectorAll('[data-testid="stImageCaption"]')];
    return captions.length > 0 && captions.every(c => c.innerText.endsWith(end));
}"""


def test_two_models_on_the_synthetic_dataset(page, server_factory, demo_checkpoints, tmp_path):
    # a small synthetic dataset keeps the test quick on 2 CPU cores
    make_dataset(tmp_path / "small", n_images=3, width=320, height=240, seed=7)
    DatasetStore(tmp_path / "data" / "datasets").save("small", CocoDataset.load(tmp_path / "small"))
    server = server_factory(COWDEMO_CHECKPOINTS=str(demo_checkpoints),
                            COWDEMO_DATA=str(tmp_path / "data"))
    page.goto(f"{server.url}/evaluate")
    wait_for_app(page)
    page.get_by_text("Press Evaluate").wait_for()
    choose(page, "Dataset", "small")
    click_until(page, page.get_by_role("button", name="Evaluate"),
                page.get_by_role("heading", name="Gallery"), timeout=240_000)
    wait_for_app(page)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot')"
        ".length === 6"
    )
    charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    titles = []
    for i in range(6):
        legend = charts.nth(i).locator(".legendtext").evaluate_all(
            "nodes => nodes.map(n => n.textContent)")
        text = " ".join(legend)
        titles.append(charts.nth(i).locator(".gtitle").text_content())
        if "Calibration" in titles[-1]:  # the COCO model has no cow box: no point to draw
            assert "cows-finetuned (ECE " in text, text
            continue
        assert "frcnn-mobilenet-v3-coco" in text and "cows-finetuned" in text, text
    assert any("TIDE" in t for t in titles) and any("Calibration" in t for t in titles), titles
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    assert any("frcnn-mobilenet-v3-coco AP" in m for m in metrics)
    assert any("cows-finetuned AP" in m and "vs frcnn-mobilenet-v3-coco" in m for m in metrics)
    ece = [m for m in metrics if "calibration error (ECE)" in m]
    assert len(ece) == 2 and "n/a" in ece[0] and "n/a" not in ece[1], ece
    # the A-vs-B sentence with its interval, in plain words
    sentence = page.get_by_text("cows-finetuned's AP50 is", exact=False).first.inner_text()
    assert "frcnn-mobilenet-v3-coco's, 95% interval " in sentence, sentence
    assert sentence.rstrip().endswith(("better", "worse", "too few images to tell")), sentence
    # label-error suspects with thumbnails and a way to the image
    page.get_by_role("heading", name="Boxes to check in the dataset").wait_for()
    assert page.get_by_role("button", name="Open in Annotate").count() >= 1
    assert page.locator('[data-testid="stImage"]').count() >= 2, "gallery, both models"
    page.set_viewport_size({"width": 1400, "height": 7000})  # the whole page in one picture
    screenshot(page, "evaluate")
    # clicking a bar of the error-type chart filters the gallery to that type
    tide = charts.nth(next(i for i, t in enumerate(titles) if "TIDE" in t))
    bar = tide.locator(".trace.bars").nth(1).locator(".point path").nth(1)  # B's poor boxes
    where = settled_box(page, bar)  # plotly takes clicks on its drag layer, by position
    page.mouse.click(where["x"] + where["width"] / 2, where["y"] + where["height"] / 2)
    wait_for_app(page)
    page.get_by_text("image(s) with poor box (right class) boxes").wait_for()
    wait_for_app(page)
    with contextlib.suppress(PlaywrightTimeout):  # stale captions of the last run linger a moment
        page.wait_for_function(ALL_CAPTIONS_END, arg=" poor box (right class)", timeout=30_000)
    captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
    assert captions and all(c.endswith(" poor box (right class)") for c in captions), captions
    # choosing an error type filters the gallery to those boxes
    try:
        choose(page, "Error type", "missed (Miss)")
    finally:
        screenshot(page, "evaluate-choose-type")
    page.get_by_text("image(s) with missed boxes").wait_for()
    wait_for_app(page)
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(ALL_CAPTIONS_END, arg=" missed", timeout=30_000)
    captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
    assert captions and all(c.endswith(" missed") for c in captions), captions
    screenshot(page, "evaluate-missed")
    # a suspect opens its image on the Annotate page
    first = page.locator('[data-testid="stMarkdownContainer"]').filter(
        has_text="no model finds it").or_(page.locator('[data-testid="stMarkdownContainer"]')
                                          .filter(has_text="seen by")).first.inner_text()
    file_name = first.split("·")[1].split()[0]
    page.get_by_role("button", name="Open in Annotate").first.click()
    page.get_by_role("heading", name="Annotate").wait_for()
    wait_for_app(page)
    assert "dataset=small" in page.url and "image=" in page.url, page.url
    page.get_by_text(file_name).first.wait_for()
    screenshot(page, "evaluate-to-annotate")
    page.goto(f"{server.url}/evaluate")
    wait_for_app(page)
    # the same inputs again: stored results come back without predicting
    page.reload()
    wait_for_app(page)
    choose(page, "Dataset", "small")
    click_until(page, page.get_by_role("button", name="Evaluate"),
                page.get_by_text("stored result"), timeout=60_000)
    # one model: no "difference between models" sort, and no A-vs-B section
    page.locator('[data-testid="stMultiSelect"] [role="button"][aria-label*="frcnn"]').or_(
        page.locator('[data-testid="stMultiSelect"] span').filter(
            has_text="frcnn-mobilenet-v3-coco").locator("xpath=..").get_by_role("button")
    ).first.click()
    wait_for_app(page)
    click_until(page, page.get_by_role("button", name="Evaluate"),
                page.get_by_role("heading", name="Gallery"), timeout=60_000)
    wait_for_app(page)
    sort = page.locator('[data-testid="stSelectbox"]').filter(has_text="Sort images by")
    script = ("el => el.innerText + ' ' + Array.from(el.querySelectorAll('input'))"
              ".map(i => i.value + ' ' + (i.getAttribute('aria-label') || '')).join(' ')")
    # the page may still be re-running with one model: wait for its sort box to say so
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stSelectbox"]')]
            .filter(e => e.innerText.includes('Sort images by'))
            .some(e => (e.innerText + ' ' + [...e.querySelectorAll('input')]
                .map(i => i.value + ' ' + (i.getAttribute('aria-label') || '')).join(' '))
                .includes('errors of cows-finetuned'))""", timeout=60_000)
    wait_for_app(page)  # the rerun ends: the previous run's elements are gone
    chosen = sort.last.evaluate(script)
    assert "errors of cows-finetuned" in chosen and "difference" not in chosen, chosen
    assert page.get_by_text("Better than", exact=False).count() == 0
    screenshot(page, "evaluate-one-model")
