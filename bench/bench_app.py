"""The app in a real browser: cold start to first rendered page, and upload-to-boxes, each as a
ratio against a baseline measured in the same run.

- cold start: `streamlit run app.py` launched → Home title rendered in Chromium, against the
  same for a one-line Streamlit app (what Streamlit itself costs).
- upload-to-boxes: file input set on the Predict page → annotated image shown, against
  `DetectorBox.predict` on the same image in-process (what the model itself costs). The model is
  the notebook's architecture (Faster R-CNN R50-FPN, random weights with a fixed head: the same
  compute as the COCO weights, which cannot be downloaded here), 640x480 image, CPU.

    .venv/bin/python bench/bench_app.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

import torch  # noqa: E402
from browser_support import CHROMIUM, CHROMIUM_ARGS, StreamlitServer  # noqa: E402
from machine import describe  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from table import HEADER, row  # noqa: E402

from cowdemo import images  # noqa: E402
from cowdemo.box import DetectorBox  # noqa: E402
from cowdemo.datasets.synthetic import make_scene  # noqa: E402
from cowdemo.models.torchvision_frcnn import get_architecture  # noqa: E402

R50_FILE = "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"


def r50_checkpoints(folder: Path) -> Path:
    torch.manual_seed(0)
    model = get_architecture("frcnn-r50-fpn").build(91)
    head = model.roi_heads.box_predictor.cls_score
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-10.0)
        head.bias[21] = 10.0
    torch.save(model.state_dict(), folder / R50_FILE)
    return folder


def cold_start(browser, app: Path, env: dict[str, str], log: Path) -> float:
    start = time.perf_counter()
    server = StreamlitServer(env, log, script=app)
    try:
        page = browser.new_page()
        page.goto(server.url)
        page.locator("h1").first.wait_for(timeout=120_000)
        elapsed = time.perf_counter() - start
        page.close()
        return elapsed
    finally:
        server.stop()


def upload_to_boxes(browser, server: StreamlitServer, first: Path, second: Path) -> tuple:
    """Seconds from setting the file input to the annotated image, for a first upload on a
    fresh server (page open, models loading in the background) and a second, different one."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server.url}/predict")
    page.get_by_text("Use the synthetic sample images").wait_for(timeout=120_000)
    page.get_by_text("Use the synthetic sample images").click()
    page.get_by_text("Upload an image").wait_for(timeout=120_000)
    times = []
    for path in (first, second):
        start = time.perf_counter()
        page.locator('input[type="file"]').set_input_files(str(path))
        page.get_by_role("heading", name=path.name).wait_for(timeout=300_000)
        page.locator('[data-testid="stImage"] img').first.wait_for(timeout=300_000)
        times.append(time.perf_counter() - start)
    page.close()
    return tuple(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is absent: run scripts/setup.sh --test first")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        checkpoints = tmp / "checkpoints"
        checkpoints.mkdir()
        r50_checkpoints(checkpoints)
        env = {"COWDEMO_CHECKPOINTS": str(checkpoints), "COWDEMO_OFFLINE": "1",
               "TORCH_HOME": str(tmp / "torch")}
        hello = tmp / "hello.py"
        hello.write_text("import streamlit as st\nst.title('hello')\n")
        scene = make_scene(seed=3).image
        photo = images.write_png(tmp / "pasture.png", scene)
        other = images.write_png(tmp / "meadow.png", make_scene(seed=4).image)

        torch.set_num_threads(torch.get_num_threads())
        box = DetectorBox("frcnn-r50-fpn-coco", device="cpu", folder=checkpoints)
        box.predict(scene)  # warm-up
        library = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            box.predict(scene)
            library.append(time.perf_counter() - start)
        del box

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=CHROMIUM_ARGS)
            base_cold = [cold_start(browser, hello, env, tmp / "h.log")
                         for _ in range(args.repeats)]
            app_cold = [cold_start(browser, REPO / "app.py", env, tmp / "a.log")
                        for _ in range(args.repeats)]
            uploads, warm = [], []
            for i in range(args.repeats):
                server = StreamlitServer(env, tmp / f"u{i}.log")  # fresh: no prediction cache
                try:
                    first, second = upload_to_boxes(browser, server, photo, other)
                    uploads.append(first)
                    warm.append(second)
                finally:
                    server.stop()
            browser.close()

    med = statistics.median
    print(f"machine: {describe()}")
    print(HEADER)
    print(row("app cold start → first page in Chromium", med(app_cold), med(base_cold),
              "one-line Streamlit app"))
    print(row("upload → boxes, first upload on a fresh server, R50-FPN 640x480", med(uploads),
              med(library), "DetectorBox.predict in-process"))
    print(row("upload → boxes, next upload", med(warm), med(library),
              "DetectorBox.predict in-process"))


if __name__ == "__main__":
    main()
