"""The "Download report" buttons in Chromium: Evaluate (HTML and PDF), the Runs page's Report
section for two runs, and Track; each downloaded file is the report of the page's runs."""

from __future__ import annotations

import json
import re

import pytest
from browser_support import choose, click_until, screenshot, wait_for_app

from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.store import DatasetStore
from cowdemo.datasets.synthetic import make_dataset, make_video_frames, write_video

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def report_data(path) -> dict:
    html = path.read_text()
    match = re.search(r"<script type='application/json' id='report-data'>(.*?)</script>", html,
                      re.S)
    return json.loads(match.group(1).replace("<\\/", "</"))


def download(page, name: str, target):
    with page.expect_download(timeout=240_000) as info:
        page.get_by_role("button", name=name, exact=True).click()
    info.value.save_as(target)
    return target


def test_report_buttons_on_evaluate_runs_and_track(page, server_factory, demo_checkpoints,
                                                   tmp_path):  # fmt: skip
    make_dataset(tmp_path / "small", n_images=2, width=320, height=240, seed=7)
    DatasetStore(tmp_path / "data" / "datasets").save("small", CocoDataset.load(tmp_path / "small"))
    server = server_factory(COWDEMO_CHECKPOINTS=str(demo_checkpoints),
                            COWDEMO_DATA=str(tmp_path / "data"))
    page.goto(f"{server.url}/evaluate")
    wait_for_app(page)
    choose(page, "Dataset", "small")
    click_until(page, page.get_by_role("button", name="Evaluate"),
                page.get_by_role("heading", name="Gallery"), timeout=240_000)
    wait_for_app(page)
    html = download(page, "Download report", tmp_path / "evaluate.html")
    data = report_data(html)
    assert list(data["evaluation"]) == ["frcnn-mobilenet-v3-coco", "cows-finetuned"]
    assert "Where the models differ" in html.read_text()
    pdf = download(page, "Download report (PDF)", tmp_path / "evaluate.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
    page.get_by_text(re.compile(r"From runs \d+, \d+")).wait_for()
    screenshot(page, "evaluate-report-buttons")

    page.goto(f"{server.url}/runs")
    wait_for_app(page)
    page.get_by_role("heading", name="Report").wait_for()
    runs_html = download(page, "Download report", tmp_path / "runs.html")
    assert sorted(report_data(runs_html)["runs"]) == sorted(
        v["run"] for v in data["evaluation"].values())
    screenshot(page, "runs-report")

    upload = write_video(tmp_path / "pasture.mp4", make_video_frames(seed=5, n_frames=6))
    page.goto(f"{server.url}/track")
    wait_for_app(page)
    page.locator('input[type="file"]').first.set_input_files(str(upload))
    page.get_by_text("Use the synthetic sample video").wait_for()
    wait_for_app(page)
    click_until(page, page.get_by_role("button", name="Track", exact=True),
                page.get_by_role("heading", name="Statistics"), timeout=240_000)
    wait_for_app(page)
    track_html = download(page, "Download report", tmp_path / "track.html")
    tracked = report_data(track_html)
    assert list(tracked["tracking"]) == ["frcnn-mobilenet-v3-coco", "cows-finetuned"]
    assert not tracked["evaluation"]
    assert "track id" in track_html.read_text()  # the timeline chart's axis
    screenshot(page, "track-report-buttons")
    assert server.alive()
