"""The Track page in headless Chromium: a real `streamlit run app.py`, a synthetic video uploaded
through the file input, real models; the rendered videos must play in the browser and the
timeline must be there, and clicking it must jump to a frame."""

from __future__ import annotations

import re

import pytest
from browser_support import (
    click_until,
    copy_model,
    fill_field,
    screenshot,
    settled_box,
    wait_for_app,
)
from helpers import shared_path
from playwright.sync_api import expect

from cowdemo.datasets.synthetic import make_video_frames, write_video

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLAYS = """v => new Promise(resolve => {
    v.muted = true;
    const done = () => resolve({duration: v.duration, readyState: v.readyState,
                                time: v.currentTime, error: v.error && v.error.code,
                                width: v.videoWidth});
    v.play().then(() => setTimeout(done, 600), done);
})"""


def test_uploaded_video_is_tracked_and_the_result_plays(page, server_factory, demo_checkpoints,
                                                        tmp_path):  # fmt: skip
    server = server_factory(COWDEMO_CHECKPOINTS=str(demo_checkpoints))
    # OpenCV mp4v, as a notebook writes it: browsers cannot play it, the app's output they can
    upload = write_video(tmp_path / "pasture.mp4", make_video_frames(seed=5, n_frames=8))
    page.goto(f"{server.url}/track")
    wait_for_app(page)
    page.locator('input[type="file"]').first.set_input_files(str(upload))
    page.get_by_text("Use the synthetic sample video").wait_for()
    wait_for_app(page)
    # delay 0: tracks show from the first frame of this short clip
    delay = page.get_by_role("slider", name="Initialization delay (frames)")
    delay.focus()
    page.keyboard.press("Home")
    expect(delay).to_have_value("0")
    # the slider's rerun may start after wait_for_app looked: a click during it is lost
    click_until(page, page.get_by_role("button", name="Track", exact=True),
                page.get_by_text("pasture.mp4: 320x240"), timeout=60_000)
    wait_for_app(page)
    # videos are rendered on demand: stats and timeline come first
    assert page.locator("video").count() == 0
    screenshot(page, "track-before-render")
    videos = page.locator("video")
    click_until(page, page.get_by_role("button", name="Render the tracked videos"),
                videos.nth(1), timeout=60_000)
    wait_for_app(page)
    assert videos.count() == 2, "model A and model B side by side"
    assert page.get_by_role("button", name="Render the tracked videos").count() == 0
    for i in range(2):
        state = videos.nth(i).evaluate(PLAYS)
        assert state["error"] is None, state
        assert state["duration"] > 0 and state["readyState"] >= 2, state
        assert state["width"] == 320, state

    chart = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    chart.wait_for()
    assert "frame" in chart.inner_text()
    screenshot(page, "track-result")

    # click a track's point on the timeline (Plotly listens on its drag layer, so a real
    # mouse click at the point): the frame viewer jumps to that frame
    points = chart.locator(".scatterlayer .trace").first.locator(".points path")
    point = points.nth(points.count() - 2)  # a late frame of the first track
    box = settled_box(page, point)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text(re.compile(r"frame [2-8], \d+ tracked boxes")).first.wait_for()
    wait_for_app(page)
    assert server.alive()


def test_a_small_tune_on_the_track_page_is_applied_and_changes_the_stats(page, server_factory,
                                                                         tmp_path):  # fmt: skip
    """YOLOX-Nano on the synthetic sample (20 frames, its exact ground truth), from a poor
    start (a 2-pixel threshold links almost nothing): run 5 trials, see the result, the
    held-out table and the top trials, apply the best settings, and see the tracker form, the
    settings line and the statistics change."""
    folder = tmp_path / "checkpoints"
    copy_model(shared_path("models/yolox-nano/yolox_nano.onnx"), folder)
    server = server_factory(COWDEMO_CHECKPOINTS=str(folder))
    page.goto(f"{server.url}/track")
    wait_for_app(page)
    page.get_by_text("Video: frame stride, maximum resolution").click()
    frames = page.get_by_role("spinbutton", name="Maximum frames (0 = all)")
    fill_field(page, frames, "20")
    fill_field(page, page.get_by_role("spinbutton", name="Distance threshold (pixels)"), "2.00")
    click_until(page, page.get_by_role("button", name="Track", exact=True),
                page.get_by_text("synthetic-sample-seed0.mp4: 320x240"), timeout=60_000)
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    assert "euclidean < 2 pixels" in main.inner_text()
    before = [m.inner_text() for m in page.locator('[data-testid="stMetricValue"]').all()]
    page.get_by_text("Find the best settings (auto-tune").click()
    trials = page.get_by_role("spinbutton", name="Trials")
    fill_field(page, trials, "5")
    screenshot(page, "track-tune-panel")
    click_until(page, page.get_by_role("button", name="Find the best settings", exact=True),
                page.get_by_text("Best of 5 trials (HOTA)"), timeout=120_000)
    wait_for_app(page)
    assert page.get_by_text("On the 8 held-out frames").count() == 1
    assert page.get_by_text("Top trials").count() == 1
    screenshot(page, "track-tuned")
    click_until(page, page.get_by_role("button", name="Apply these settings"),
                "() => !document.querySelector('[data-testid=\"stMain\"]').innerText"
                ".includes('euclidean < 2 pixels')", timeout=60_000)
    wait_for_app(page)
    after = [m.inner_text() for m in page.locator('[data-testid="stMetricValue"]').all()]
    assert after != before, (before, after)
    screenshot(page, "track-applied")
    assert server.alive()
