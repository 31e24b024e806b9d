"""End to end in headless Chromium: the "annotate next" queue. With the shared YOLOX-Nano as
model A, a dataset of scenes (one a video frame at a suspected id switch) opens the queue's
first image, a box drawn with the mouse is saved, and "Done, next to do" opens the image the
queue ranks next (the same order the library computes with the same model)."""

from __future__ import annotations

import re

import pytest
from browser_support import click_until, copy_model, screenshot, settled_box, wait_for_app
from helpers import shared_path
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from cowdemo import images, label_review
from cowdemo.annotation_queue import rank_images
from cowdemo.datasets import formats
from cowdemo.datasets.store import DatasetStore
from cowdemo.datasets.synthetic import make_scene

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def drag(page, start, end, steps: int = 8) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(start[0] + (end[0] - start[0]) * i / steps,
                        start[1] + (end[1] - start[1]) * i / steps)
    page.mouse.up()


def test_queue_opens_labels_and_moves_to_the_queues_next(page, server_factory, tmp_path):
    from cowdemo.models.yolox_onnx import YoloxOnnxDetector

    model = copy_model(shared_path("models/yolox-nano/yolox_nano.onnx"), tmp_path / "ck")
    store = DatasetStore(tmp_path / "data" / "datasets")
    store.create("herd")
    files = [(f"scene-{s}.png", images.encode_png(make_scene(seed=s).image)) for s in (1, 2, 3)]
    files.append(("clip-frame000031.png", images.encode_png(make_scene(seed=4).image)))
    at_switch = {"video": {"name": "clip.mp4", "frame": 31, "nearest_break": {
        "frame": 31, "kind": "suspected", "distance": 0, "text": "frame 31: track 4 starts"}}}
    ids = store.add_images("herd", files, extra=[{}, {}, {}, at_switch])
    dataset = store.get("herd")
    detector = YoloxOnnxDetector(model)
    found = {i: detector.predict(dataset.read_image(i)) for i in ids}
    expected = rank_images(dataset, {"yolox_nano": found}, 0.5, ("cow",))
    order = [q.image_id for q in expected]
    assert order[0] != ids[0], "the queue must differ from the dataset's order to show anything"
    name_of = {i: dataset.image_info(i)["file_name"] for i in ids}

    server = server_factory(COWDEMO_CHECKPOINTS=str(model.parent))
    page.goto(f"{server.url}/annotate?dataset=herd")
    wait_for_app(page)
    page.get_by_text(f"{name_of[ids[0]]} · 640×480 px · not done yet").wait_for()
    page.get_by_text("Annotate next: follow the queue (yolox_nano)").click()
    page.get_by_text(f"Queue 1 of {len(ids)}").wait_for()
    wait_for_app(page)
    page.get_by_text(f"{name_of[order[0]]} · 640×480 px · not done yet").wait_for()
    expect(page.get_by_text(expected[0].reasons[0])).to_be_visible()
    page.get_by_text(f"The queue: {len(ids)} images not done").click()
    page.locator('[data-testid="stExpander"]').filter(has_text="The queue:") \
        .locator('[data-testid="stDataFrame"]').wait_for()
    screenshot(page, "annotate-queue-first")
    page.get_by_text(f"The queue: {len(ids)} images not done").click()

    # label the queue's first image: one box drawn with the mouse, then done
    canvas = page.locator(f"[class*='st-key-canvas-herd-{order[0]}-'] canvas.upper-canvas")
    box = settled_box(page, canvas)
    drag(page, (box["x"] + 100, box["y"] + 100), (box["x"] + 300, box["y"] + 220))
    page.get_by_text("Saved 1 box at").wait_for()
    wait_for_app(page)
    click_until(page, page.get_by_role("button", name="Done, next to do"),
                page.get_by_text(f"{name_of[order[1]]} · 640×480 px · not done yet"))
    page.get_by_text(f"Queue 1 of {len(ids) - 1}").wait_for()
    wait_for_app(page)
    labelled = store.get("herd")
    assert formats.is_done(labelled.image_info(order[0]))
    assert len(labelled.annotations(order[0])) == 1
    assert page.evaluate("() => new URL(location.href).searchParams.get('image')") == \
        str(order[1])
    expect(page.get_by_text(expected[1].reasons[0]).first).to_be_visible()
    screenshot(page, "annotate-queue-next")

    # previous / next follow the queue too
    click_until(page, page.get_by_role("button", name="Next ▶"),
                page.get_by_text(f"{name_of[order[2]]} · 640×480 px"))
    wait_for_app(page)
    click_until(page, page.get_by_role("button", name="◀ Previous"),
                page.get_by_text(f"{name_of[order[1]]} · 640×480 px"))
    wait_for_app(page)

    # label-error review: scene 2 (a cow YOLOX-Nano finds at 0.77) marked done without boxes
    cow_scene = ids[1]
    store.mark_done("herd", cow_scene)
    done = store.get("herd")
    results = {"yolox_nano": label_review.model_results(
        done, {i: found[i] for i in (order[0], cow_scene)}, ("cow",), None)}
    suspects = label_review.review_list(done, results)
    number, missing = next((n, s) for n, s in enumerate(suspects, start=1)
                           if s.kind == "missing" and s.image_id == cow_scene)
    page.get_by_text("Review likely label errors").click()
    click_until(page, page.get_by_role("button", name="Find likely label errors"),
                page.get_by_text(f"{len(suspects)} to review"), timeout=120_000)
    wait_for_app(page)
    for suspect in suspects:
        expect(page.get_by_text(label_review.suspect_text(suspect))).to_be_visible()
    screenshot(page, "annotate-review")
    fix = page.locator(f".st-key-review_fix_{number}_{cow_scene} button")
    added = page.get_by_text(f"Added the cow box on {name_of[cow_scene]}.")
    for _ in range(3):  # a click during one of the canvas's reruns can be lost: click again
        wait_for_app(page)
        if added.count() or not fix.count():
            break
        fix.click()
        try:
            added.wait_for(timeout=30_000)
        except PlaywrightTimeout:
            continue
        break
    added.wait_for()
    wait_for_app(page)
    assert store.boxes("herd", cow_scene) == [("cow", label_review.xyxy(missing))]
    assert server.alive()


def test_track_sends_the_switch_frames_to_a_dataset_and_the_queue_starts_there(
        page, server_factory, tmp_path):
    """The loop from a tracker's switches back to annotation: track the synthetic sample with
    YOLOX-Nano, send the frames around its switches to a new dataset (the panel stays open and
    says what it added), then Annotate's queue opens a frame at a switch."""
    model = copy_model(shared_path("models/yolox-nano/yolox_nano.onnx"), tmp_path / "ck")
    store = DatasetStore(tmp_path / "data" / "datasets")
    server = server_factory(COWDEMO_CHECKPOINTS=str(model.parent))
    page.goto(f"{server.url}/track")
    wait_for_app(page)
    click_until(page, page.get_by_role("button", name="Track", exact=True),
                page.get_by_text("synthetic-sample-seed0.mp4: 320x240"), timeout=120_000)
    wait_for_app(page)
    page.get_by_text("Send frames to a dataset, to label").click()
    panel = page.locator('[data-testid="stExpander"]').filter(has_text="Send frames")
    plan = panel.get_by_text(re.compile(r"^\d+ frame\(s\), in this order"))
    plan.wait_for()
    count = int(plan.inner_text().split(" ")[0])
    result = panel.get_by_text(f"Added {count} frame(s) of the video to "
                               "synthetic-sample-seed0-frames as images not done")
    click_until(page, panel.get_by_role(
        "button", name=f"Add {count} frame(s) to synthetic-sample-seed0-frames"), result,
        timeout=120_000)
    wait_for_app(page)
    expect(result).to_be_visible()  # the panel stayed open through the rerun
    panel.screenshot(path=str(screenshot(page, "track-send-frames").with_name(
        "track-send-frames-panel.png")))
    dataset = store.get("synthetic-sample-seed0-frames")
    assert len(dataset.images) == count
    assert not any(formats.is_done(im) for im in dataset.images)
    assert dataset.num_boxes() > 0

    page.goto(f"{server.url}/annotate?dataset=synthetic-sample-seed0-frames")
    wait_for_app(page)
    page.get_by_text("Annotate next: follow the queue (yolox_nano)").click()
    page.get_by_text(f"Queue 1 of {count}").wait_for()
    wait_for_app(page)
    first = page.locator('[data-testid="stAlert"]').filter(has_text=f"Queue 1 of {count}")
    assert re.search(r": at (an|a suspected) id switch|: at a track break", first.inner_text())
    screenshot(page, "annotate-queue-video-frames")
    assert server.alive()
