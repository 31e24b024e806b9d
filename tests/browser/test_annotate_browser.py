"""End to end in headless Chromium: draw a box with real mouse events on the canvas, find it on
disk and again after a reload (image pixels within 1 px), export it as COCO JSON, then move,
resize and delete it with the canvas's own edit tools."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from browser_support import click_until, copy_model, screenshot, settled_box, wait_for_app
from helpers import cow_photo_path, shared_path
from PIL import Image
from playwright.sync_api import expect

from cowdemo import images
from cowdemo.datasets.store import SAMPLE_DONE, SAMPLE_IMAGES, DatasetStore
from cowdemo.datasets.synthetic import make_scene

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A 1000x700 image on the default "Medium" canvas (fits 800x600): 800x560, 0.8 canvas px per
# image px on both axes.
WIDTH, HEIGHT, SCALE = 1000, 700, 0.8
CANVAS = "[class*='st-key-canvas-field-1-'] canvas.upper-canvas"


def saved_boxes(store: DatasetStore) -> list[list[float]]:
    return [box for _, box in store.boxes("field", 1)]


def wait_for_save(page, store: DatasetStore, before: list[list[float]]) -> list[list[float]]:
    """The boxes on disk once they differ from ``before`` (the page saves after each change)."""
    for _ in range(300):
        now = saved_boxes(store)
        if now != before:
            wait_for_app(page)
            return now
        page.wait_for_timeout(100)
    raise AssertionError(f"nothing was saved: still {before}")


def caption_boxes(page) -> list[list[float]]:
    text = page.locator('[data-testid="stCaptionContainer"]').filter(
        has_text="Boxes in image pixels").inner_text()
    return [[float(v) for v in m.split(",")] for m in re.findall(r"= \[([^\]]+)\]", text)]


def drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 10) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(start[0] + (end[0] - start[0]) * i / steps,
                        start[1] + (end[1] - start[1]) * i / steps)
    page.mouse.up()


def canvas_origin(page) -> tuple[float, float]:
    canvas = page.locator(CANVAS)
    box = settled_box(page, canvas)
    assert (box["width"], box["height"]) == (WIDTH * SCALE, HEIGHT * SCALE)
    return box["x"], box["y"]


def toggle_on(page, button, attempts: int = 3) -> None:
    """Press a toolbar toggle (``aria-pressed``) and see it pressed; pressed again only while it
    still reads "false" (a click while the canvas is redrawn is lost)."""
    for _ in range(attempts):
        wait_for_app(page)
        if button.get_attribute("aria-pressed") == "true":
            return
        button.click()
        try:
            expect(button).to_have_attribute("aria-pressed", "true", timeout=5_000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the toggle stayed off after {attempts} clicks")


def select_box(page, box: list[float], attempts: int = 3) -> tuple[float, float]:
    """Turn on edit mode and click the middle of ``box`` (image pixels) until the canvas holds a
    selection ("Delete selected" enabled); the point clicked. Each attempt reads the canvas's
    place again: a rerun that redraws the canvas as the click lands loses the click and the
    edit mode."""
    delete = page.get_by_role("button", name="Delete selected")
    for _ in range(attempts):
        origin = canvas_origin(page)
        page.mouse.move(origin[0] + 400, origin[1] + 300)  # the toolbar shows on hover
        toggle_on(page, page.get_by_role("button", name="Edit"))
        point = (origin[0] + (box[0] + box[2]) / 2 * SCALE,
                 origin[1] + (box[1] + box[3]) / 2 * SCALE)
        page.mouse.click(*point)
        try:
            expect(delete).to_be_enabled(timeout=5_000)
            return point
        except AssertionError:
            continue
    screenshot(page, "annotate-nothing-selected")
    raise AssertionError(f"no box was selected at {point} after {attempts} clicks")


def to_image(origin, x: float, y: float) -> tuple[float, float]:
    """Where a mouse position lands in image pixels (the browser rounds mouse positions)."""
    return (round(origin[0] + x) - origin[0]) / SCALE, (round(origin[1] + y) - origin[1]) / SCALE


def test_draw_save_reload_export_edit(page, server_factory, tmp_path):
    store = DatasetStore(tmp_path / "data" / "datasets")  # what the server's COWDEMO_DATA holds
    store.create("field", ["cow", "calf"])
    scene = make_scene(seed=5, width=WIDTH, height=HEIGHT, n_animals=0)
    store.add_images("field", [("pasture.png", images.encode_png(scene.image))])
    server = server_factory(COWDEMO_CHECKPOINTS=str(tmp_path / "no-models"))

    page.goto(f"{server.url}/annotate?dataset=field&image=1")
    wait_for_app(page)
    page.locator(CANVAS).wait_for()
    origin = canvas_origin(page)

    # draw: mouse down at canvas (100, 80), drag to (300, 200)
    drag(page, (origin[0] + 100, origin[1] + 80), (origin[0] + 300, origin[1] + 200))
    page.get_by_text("Saved 1 box at").wait_for()
    expected = [*to_image(origin, 100, 80), *to_image(origin, 300, 200)]
    assert np.allclose(expected, [125, 100, 375, 250], atol=1.0)
    (drawn,) = saved_boxes(store)
    assert np.allclose(drawn, expected, atol=1.0), (drawn, expected)
    assert store.boxes("field", 1)[0][0] == "cow"
    screenshot(page, "annotate-drawn")

    # a reload (a new browser session) finds the box again, listed and drawn on the canvas
    page.reload()
    wait_for_app(page)
    page.locator(CANVAS).wait_for()
    page.get_by_text("1 box, all saved").wait_for()
    (listed,) = caption_boxes(page)
    assert np.allclose(listed, drawn, atol=0.06)  # the list shows one decimal
    origin = canvas_origin(page)
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(clip={
        "x": origin[0], "y": origin[1], "width": WIDTH * SCALE, "height": HEIGHT * SCALE}))))
    left = round(drawn[0] * SCALE)  # the 2 px outline, in the class colour #e6194b (cow)
    outline = shot[round(drawn[1] * SCALE) + 20:round(drawn[3] * SCALE) - 20, left:left + 2, :3]
    assert (outline[..., 0] > 200).all() and (outline[..., 1] < 60).all(), outline[:3]
    screenshot(page, "annotate-after-reload")

    # export as COCO JSON from the page
    page.get_by_text("Datasets: new, import, add images, classes, export").click()
    page.get_by_role("tab", name="Export").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download COCO JSON").click()
    coco = json.loads(info.value.path().read_text())
    (ann,) = coco["annotations"]
    x, y, w, h = ann["bbox"]
    assert np.allclose([x, y, x + w, y + h], drawn, atol=1e-9)
    assert coco["images"][0]["file_name"] == "pasture.png"
    assert [c["name"] for c in coco["categories"]] == ["cow", "calf"]
    page.get_by_text("Datasets: new, import, add images, classes, export").click()

    # edit mode (the canvas toolbar): select the box, move it by (50, 40) canvas px
    centre = select_box(page, drawn)
    drag(page, centre, (centre[0] + 50, centre[1] + 40))
    (moved,) = wait_for_save(page, store, [drawn])
    assert np.allclose(moved, np.add(drawn, [62.5, 50, 62.5, 50]), atol=1.0), moved

    # resize with the bottom-right handle: 40 x 24 canvas px bigger
    origin = canvas_origin(page)
    corner = (origin[0] + moved[2] * SCALE + 1, origin[1] + moved[3] * SCALE + 1)
    drag(page, corner, (corner[0] + 40, corner[1] + 24))
    (resized,) = wait_for_save(page, store, [moved])
    assert np.allclose(resized[:2], moved[:2], atol=1.0), (resized, moved)
    assert np.allclose(resized[2:], np.add(moved[2:], [50, 30]), atol=3.0), (resized, moved)
    screenshot(page, "annotate-edited")

    # delete the selected box with the toolbar
    page.get_by_role("button", name="Delete selected").click()
    assert wait_for_save(page, store, [resized]) == []
    page.get_by_text("Saved 0 boxes at").wait_for()
    assert server.alive()


def test_fresh_install_work_left_pre_annotation_and_adding_images(page, server_factory, tmp_path):
    """A fresh install with the shared YOLOX-Nano: the sample dataset opens on the real photo
    (not done), pre-annotation boxes its cow; adding images to a dataset of one's own says in one
    message what was added and what not; a new session opens that dataset, not the sample, and
    adding to the sample needs a tick."""
    photo = cow_photo_path()
    folder = tmp_path / "checkpoints"
    copy_model(shared_path("models/yolox-nano/yolox_nano.onnx"), folder)
    store = DatasetStore(tmp_path / "data" / "datasets")
    server = server_factory(COWDEMO_CHECKPOINTS=str(folder), COWDEMO_COW_PHOTO=str(photo))

    page.goto(f"{server.url}/annotate")
    page.get_by_text(f"{SAMPLE_DONE} of {SAMPLE_IMAGES + 1} images done").wait_for()
    wait_for_app(page)
    page.get_by_text("cow-photo.jpg · 1140×760 px · not done yet").wait_for()
    page.get_by_text("No boxes on this image yet.").wait_for()
    # the canvas's first render reruns the page: a click during that rerun is lost
    click_until(page, page.get_by_role("button", name="Start from model predictions"),
                page.get_by_text(re.compile(r"yolox_nano: added 1 box with score ≥ 0\.50")))
    wait_for_app(page)
    assert [c for c, _ in store.boxes("synthetic-sample", SAMPLE_DONE + 1)] == ["cow"]
    page.get_by_text("1 box, all saved").wait_for()
    wait_for_app(page)  # the reloaded canvas reruns the page: the message stays
    expect(page.get_by_text(re.compile(r"yolox_nano: added 1 box"))).to_be_visible()
    screenshot(page, "annotate-sample-prefill-photo")

    # the sample is the only dataset: adding images to it needs a tick
    page.get_by_text("Datasets: new, import, add images, classes, export").click()
    page.get_by_role("tab", name="Add images").click()
    good, bad = tmp_path / "good.png", tmp_path / "broken.jpg"
    images.write_png(good, make_scene(seed=21).image)
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    page.locator('[data-testid="stFileUploader"]').filter(has_text="Images to add to") \
        .locator('input[type="file"]').set_input_files([str(good), str(bad)])
    page.get_by_text("is the app's sample dataset").wait_for()
    expect(page.get_by_role("button", name="Add images")).to_be_disabled()

    # one's own dataset, in a new session: chosen by default, one message for the result
    store.create("herd")
    page.goto(f"{server.url}/annotate")
    page.get_by_text("herd has no images yet").wait_for()
    wait_for_app(page)
    page.get_by_role("tab", name="Add images").click()  # open: nothing to annotate yet
    page.locator('[data-testid="stFileUploader"]').filter(has_text="Images to add to herd") \
        .locator('input[type="file"]').set_input_files([str(good), str(bad)])
    result = page.locator('[data-testid="stAlert"]').filter(has_text="Added 1 image to herd")
    click_until(page, page.get_by_role("button", name="Add images"), result)
    wait_for_app(page)
    text = result.inner_text()
    assert "1 of 2 files not added" in text and "broken.jpg" in text, text
    alerts = page.locator('[data-testid="stAlert"]').all_inner_texts()
    assert not [a for a in alerts if "none was" in a]
    assert len([a for a in alerts if "broken.jpg" in a]) == 1, alerts
    assert len(store.get("herd").images) == 1
    screenshot(page, "annotate-add-images-result")
