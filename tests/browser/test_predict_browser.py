"""End to end in headless Chromium: a real `streamlit run app.py`, real uploads through the file
input, real models."""

from __future__ import annotations

import re

import pytest
from browser_support import choose, copy_model, screenshot, wait_for_app
from helpers import cow_photo_path, shared_path
from playwright.sync_api import expect

from cowdemo import images
from cowdemo.datasets.synthetic import make_scene

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_predict(page, server) -> None:
    page.goto(f"{server.url}/predict")
    wait_for_app(page)
    page.get_by_text("Use the sample images").click()  # off: only our uploads
    wait_for_app(page)


#: Elements whose text the browser cuts off (an ellipsis or a clipped overflow).
CUT_OFF = """sel => [...document.querySelectorAll(sel)]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""


def test_home_page_shows_status(page, server_factory, demo_checkpoints):
    server = server_factory(COWDEMO_CHECKPOINTS=str(demo_checkpoints))
    page.goto(server.url)
    page.get_by_text("Models ready").wait_for()
    page.locator('[data-testid="stTable"] td').first.wait_for()
    wait_for_app(page)
    assert "2 of" in page.locator('[data-testid="stMetric"]').first.inner_text()
    # the loop is a list of six steps, one per line
    steps = page.locator('[data-testid="stMarkdownContainer"] ol > li').all_inner_texts()
    assert [s.split()[0] for s in steps] == ["Predict:", "Annotate", "Evaluate", "Fine-tune",
                                             "Track", "Compare"], steps
    # nothing cut off: the metrics and every cell of the models table are shown whole
    assert page.evaluate(CUT_OFF, '[data-testid="stMetricValue"] *') == []
    assert page.locator('[data-testid="stMetricValue"]').nth(1).inner_text() == "CPU"
    cells = page.locator('[data-testid="stTable"] td')
    assert cells.count() >= 3 * 4 and page.evaluate(CUT_OFF, '[data-testid="stTable"] td') == []
    page.get_by_text("Model A: frcnn-mobilenet-v3-coco").wait_for()
    screenshot(page, "home")


def test_fresh_install_with_yolox_only(page, server_factory, tmp_path):
    """The shared YOLOX-Nano alone, as on a fresh offline install: Home says what YOLOX does;
    Predict's samples start with the real photo, where YOLOX boxes the cow; a broken model B gets
    one error and no download of its (absent) results."""
    photo = cow_photo_path()
    folder = tmp_path / "checkpoints"
    copy_model(shared_path("models/yolox-nano/yolox_nano.onnx"), folder)
    (folder / "zz-broken.onnx").write_bytes(b"not an onnx model")
    server = server_factory(COWDEMO_CHECKPOINTS=str(folder), COWDEMO_COW_PHOTO=str(photo))
    page.goto(server.url)
    page.get_by_text("What the pages use").wait_for()
    wait_for_app(page)
    uses = page.locator('[data-testid="stMarkdownContainer"]').filter(
        has_text="What the pages use").inner_text()
    assert "Model A: yolox_nano, a YOLOX detector" in uses and "Faster R-CNN" not in uses
    assert "dog" not in page.locator('[data-testid="stMain"]').inner_text().split("Models")[0]
    screenshot(page, "home-yolox-only")

    page.get_by_role("link", name="Predict").first.click()
    page.get_by_role("heading", name="cow-photo.jpg").wait_for()
    wait_for_app(page)
    expect(page.locator('[data-testid="stImage"] img')).to_have_count(4, timeout=120_000)
    first = page.locator('[data-testid="stImage"]').first.inner_text()
    assert re.search(r"yolox_nano: 1 cow \(best 0\.9\d\)", first), first
    page.get_by_text("A real photo: Photo by freestocks.org from Pexels").wait_for()
    screenshot(page, "predict-samples-yolox")

    choose(page, "Model B", "zz-broken", within=page.locator('[data-testid="stSidebar"]'))
    alerts = page.locator('[data-testid="stAlert"]').filter(has_text="zz-broken")
    expect(alerts).to_have_count(1)
    page.get_by_role("button", name="COCO results JSON (yolox_nano)").wait_for()
    assert page.get_by_role("button", name=re.compile("COCO results JSON")).count() == 1
    expect(page.locator('[data-testid="stImage"] img')).to_have_count(4)
    screenshot(page, "predict-broken-model-b")


def test_upload_shows_annotated_images_and_table(page, server_factory, demo_checkpoints, tmp_path):
    server = server_factory(COWDEMO_CHECKPOINTS=str(demo_checkpoints))
    open_predict(page, server)
    upload = tmp_path / "pasture.png"
    images.write_png(upload, make_scene(seed=3).image)
    page.locator('input[type="file"]').set_input_files(str(upload))
    page.get_by_role("heading", name="pasture.png").wait_for()
    wait_for_app(page)
    shown = page.locator('[data-testid="stImage"] img')
    # The heading is drawn before the models run; the status widget can be absent for a moment
    # in between, so wait for the images themselves: model A and model B side by side.
    expect(shown).to_have_count(2, timeout=120_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
        ".every(img => img.complete && img.naturalWidth === 640)"
    )
    captions = page.locator('[data-testid="stImage"]').all_inner_texts()
    assert any("frcnn-mobilenet-v3-coco" in c for c in captions)
    assert any(re.search(r"cows-finetuned: \d+ cow \(best 1\.00\)", c) for c in captions)
    page.locator('[data-testid="stDataFrame"]').first.wait_for()  # the detections table
    page.get_by_text(re.compile(r"also sees \d+ dog")).first.wait_for()
    path = screenshot(page, "predict-upload")
    assert path.stat().st_size > 10_000


def test_corrupt_upload_shows_error_and_app_keeps_serving(
    page, server_factory, demo_checkpoints, tmp_path
):
    server = server_factory(COWDEMO_CHECKPOINTS=str(demo_checkpoints))
    open_predict(page, server)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated nonsense")
    good = tmp_path / "ok.png"
    images.write_png(good, make_scene(seed=1).image)
    page.locator('input[type="file"]').set_input_files([str(bad), str(good)])
    page.locator('[data-testid="stAlert"]').filter(has_text="broken.jpg").wait_for()
    page.get_by_role("heading", name="ok.png").wait_for()
    wait_for_app(page)
    screenshot(page, "predict-corrupt-upload")
    assert server.alive()
    page.reload()
    wait_for_app(page)
    page.get_by_role("heading", name="🔍 Predict").wait_for()


def test_real_cow_photo_with_yolox_nano_shows_a_cow_box(page, server_factory, tmp_path):
    model = shared_path("models/yolox-nano/yolox_nano.onnx")
    photo = cow_photo_path()
    folder = tmp_path / "checkpoints"
    copy_model(model, folder)
    server = server_factory(COWDEMO_CHECKPOINTS=str(folder))
    open_predict(page, server)
    page.locator('input[type="file"]').set_input_files(str(photo))
    page.get_by_role("heading", name=photo.name).wait_for()
    wait_for_app(page)
    caption = page.locator('[data-testid="stImage"]').first.inner_text()
    match = re.search(r"yolox_nano: \d+ cow \(best (\d\.\d\d)\)", caption)
    assert match and float(match.group(1)) >= 0.5, caption
    screenshot(page, "predict-real-cow-yolox")
