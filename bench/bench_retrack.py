"""Re-tracking on the Track page in Chromium: a tracker setting changed on a video whose
detections are cached, until the page shows the new settings, statistics and timeline, against
the same work in-process (cached detections → tracks → stats and timeline figure), measured in
the same run. The clip: 200 synthetic 640x480 frames, YOLOX-Nano (../shared), CPU.

    .venv/bin/python bench/bench_retrack.py [--frames 200] [--changes 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from browser_support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    StreamlitServer,
    click_until,
    copy_model,
    fill_field,
    screenshot,
    wait_for_app,
)
from machine import describe  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from table import HEADER, row  # noqa: E402

from cowdemo.datasets.synthetic import make_video_frames, write_video  # noqa: E402

SHARED = Path(os.environ.get("COWDEMO_SHARED", REPO.parent / "shared"))
ONNX = SHARED / "models/yolox-nano/yolox_nano.onnx"
SETTINGS_LINE = "euclidean < {} pixels"


def in_process(video: Path, thresholds: list[int]) -> list[float]:
    """The page's work without the page: cached detections to tracks, stats and timeline."""
    from cowdemo.tracking.detection import DetectionCache, detect_video
    from cowdemo.tracking.settings import TrackerSettings
    from cowdemo.tracking.stats import tracking_report
    from cowdemo.tracking.timeline import timeline_figure
    from cowdemo.tracking.tracker import track

    cache = DetectionCache(video.parent / "cache")
    found = detect_video(video, str(ONNX), cache=cache, device="cpu")
    times = []
    for threshold in thresholds:
        start = time.perf_counter()
        tracks = track(cache.load(found.key), TrackerSettings(distance_threshold=threshold))
        report = tracking_report(tracks)
        timeline_figure([report]).to_json()
        times.append(time.perf_counter() - start)
    return times


def in_browser(browser, server: StreamlitServer, video: Path, thresholds: list[int],
               frames: int) -> list[float]:  # fmt: skip
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(300_000)
    page.goto(f"{server.url}/track")
    wait_for_app(page)
    page.get_by_text("Video: frame stride, maximum resolution").click()
    fill_field(page, page.get_by_role("spinbutton", name="Maximum frames (0 = all)"),
               str(frames))
    page.locator('input[type="file"]').first.set_input_files(str(video))
    wait_for_app(page)
    click_until(page, page.get_by_role("button", name="Track", exact=True),
                page.get_by_text(f"{video.name}: 640x480"), timeout=300_000)
    wait_for_app(page)
    field = page.get_by_role("spinbutton", name="Distance threshold (pixels)")
    times = []
    for threshold in thresholds:
        field.fill(str(threshold))
        start = time.perf_counter()
        field.press("Enter")
        page.wait_for_function(
            "t => document.querySelector('[data-testid=\"stMain\"]').innerText.includes(t)",
            arg=SETTINGS_LINE.format(threshold))
        wait_for_app(page)
        page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for()
        times.append(time.perf_counter() - start)
    screenshot(page, "bench-retrack")  # artifacts/screenshots/, as the browser tests' are
    page.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--changes", type=int, default=5)
    args = parser.parse_args()
    if not CHROMIUM.exists() or not ONNX.is_file():
        print(f"skipped: needs {CHROMIUM} (scripts/setup.sh --test) and {ONNX} (../shared)")
        return
    thresholds = [40 + 7 * i for i in range(args.changes)]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        video = write_video(tmp / "herd.mp4", make_video_frames(seed=1, n_frames=args.frames,
                                                               width=640, height=480))
        copy_model(ONNX, tmp / "checkpoints")
        env = {"COWDEMO_CHECKPOINTS": str(tmp / "checkpoints"), "COWDEMO_DATA": str(tmp / "d"),
               "COWDEMO_OFFLINE": "1"}  # fmt: skip
        library = in_process(video, thresholds)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=CHROMIUM_ARGS)  # fmt: skip
            server = StreamlitServer(env, tmp / "server.log")
            try:
                page_times = in_browser(browser, server, video, thresholds, args.frames)
            finally:
                server.stop()
                browser.close()
    med = statistics.median
    load = os.getloadavg()[0]
    print(f"machine: {describe()}; load average (1 min) at the end: {load:.2f}")
    print("each change, page s: " + ", ".join(f"{t:.2f}" for t in page_times))
    print(HEADER)
    goal = "within" if med(page_times) <= 2 else "OVER"
    print(row(f"re-track on the Track page, {args.frames} frames, YOLOX-Nano detections cached "
              f"(median of {args.changes} changes; {goal} the 2 s goal)", med(page_times),
              med(library), "cached detections to tracks, stats and timeline in-process"))


if __name__ == "__main__":
    main()
