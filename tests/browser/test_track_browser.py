"""The Track page in headless Chromium: a real `streamlit run app.py`, a synthetic video uploaded
through the file input, real models; the rendered videos must play in the browser and the
timeline must be there, and clicking it must jump to a frame."""

from __future__ import annotations

import re

import pytest
from browser_support import screenshot, wait_for_app

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
    wait_for_app(page)
    page.get_by_role("button", name="Track").click()
    page.get_by_text("pasture.mp4: 320x240").wait_for()
    videos = page.locator("video")
    videos.nth(1).wait_for()
    wait_for_app(page)
    assert videos.count() == 2, "model A and model B side by side"
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
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text(re.compile(r"frame [2-8], \d+ tracked boxes")).first.wait_for()
    wait_for_app(page)
    assert server.alive()
