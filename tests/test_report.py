"""The shareable report end to end: `cowdemo report` on real (small) models, a synthetic
dataset and video, a real SQLite run history; the numbers read back from the HTML equal the
stored runs', the PDF printed by Chromium has pages that are not blank."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from report_support import html_tables, make_inputs

from cowdemo.cli import main
from cowdemo.evaluation.detection import STAT_NAMES
from cowdemo.report.sections import RATE_METRICS
from cowdemo.runs import RunStore

pytestmark = pytest.mark.slow
MODELS = ("frcnn-mobilenet-v3-coco", "cows-finetuned")


@pytest.fixture(scope="session")
def written(demo_checkpoints, tmp_path_factory):
    """`cowdemo report` with two models, a dataset and a video with ground truth, HTML + PDF."""
    folder = tmp_path_factory.mktemp("report")
    inputs = make_inputs(folder, n_images=3, n_frames=10)
    db = f"sqlite:///{folder / 'runs.sqlite'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COWDEMO_CHECKPOINTS", str(demo_checkpoints))
        mp.setenv("COWDEMO_OFFLINE", "1")
        mp.setenv("COWDEMO_DATA", str(folder / "data"))
        argv = ["report", "--dataset", str(inputs["dataset"]), "--video", str(inputs["video"]),
                "--gt", str(inputs["gt"]), "--device", "cpu", "--db", db]
        for model in MODELS:
            argv += ["--model", model]
        html, pdf, again = folder / "report.html", folder / "report.pdf", folder / "again.html"
        assert main([*argv, "--out", str(html), "--pdf", str(pdf)]) == 0
        assert main([*argv, "--out", str(again)]) == 0
    html = (folder / "report.html").read_text()
    return {"folder": folder, "html": html, "store": RunStore(db), "inputs": inputs,
            "again": again.read_text()}


def embedded(html: str) -> dict:
    match = re.search(r"<script type='application/json' id='report-data'>(.*?)</script>", html,
                      re.S)
    return json.loads(match.group(1).replace("<\\/", "</"))


def shown(value: float) -> str:
    return "n/a" if value == -1 else f"{value:.4f}"


def test_report_numbers_equal_the_stored_runs(written):
    html, store = written["html"], written["store"]
    data = embedded(html)
    tables = html_tables(html)
    assert list(data["evaluation"]) == list(MODELS) and list(data["tracking"]) == list(MODELS)
    header, *rows = tables["headline"]
    assert header[1:3] == list(MODELS)
    by_stat = {row[0]: row for row in rows}
    assert list(by_stat) == list(STAT_NAMES)
    for column, model in enumerate(MODELS, start=1):
        run = store.get(data["evaluation"][model]["run"])
        assert run.kind == "evaluation" and run.model == model
        assert data["evaluation"][model]["metrics"] == run.metrics
        for stat in STAT_NAMES:
            assert by_stat[stat][column] == shown(run.metrics[stat]), (model, stat)
    a, b = (store.get(data["evaluation"][m]["run"]).metrics["AP"] for m in MODELS)
    if a >= 0 and b >= 0:
        assert by_stat["AP"][3] == f"{b - a:.4f}"
    # tracking: every stored metric, for both models, against ground truth
    header, *rows = tables["tracking_metrics"]
    assert header[1:3] == list(MODELS)
    for column, model in enumerate(MODELS, start=1):
        run = store.get(data["tracking"][model]["run"])
        assert run.kind == "tracking" and run.settings["gt"] is True
        assert data["tracking"][model]["metrics"] == run.metrics
        cells = {row[0]: row[column] for row in rows}
        assert set(cells) == set(run.metrics)
        for name, value in run.metrics.items():
            if value != value:
                expected = "n/a"
            elif name in RATE_METRICS or not float(value).is_integer():
                expected = f"{value:.4f}"
            else:
                expected = str(int(value))  # counts are shown as whole numbers
            assert cells[name] == expected, (model, name, cells[name], value)
    # the run ids listed with the command that shows them
    listed = {int(row[0]): row[-1] for row in tables["runs"][1:]}
    assert set(listed) == set(data["runs"])
    assert all(cmd == f"cowdemo runs show {i}" for i, cmd in listed.items())


def test_report_says_what_was_compared(written):
    tables = html_tables(written["html"])
    models = {row[0]: row for row in tables["models"][1:]}
    assert set(models) == set(MODELS)
    assert models["cows-finetuned"][3] == "frcnn-mobilenet-v3-coco"  # base model
    assert "iterations 100" in models["cows-finetuned"][4]  # fine-tune settings from metadata
    facts = {row[0]: row[1] for row in tables["facts"]}  # no header row
    assert facts["dataset"].startswith("cows: 3 images, ")
    assert "10 frames processed" in facts["video"] and "ground truth" in facts["video"]
    assert "tracker Norfair: euclidean < 20 pixels" in facts["video"]
    assert [row[1] for row in tables["tracking_summary"][1:]] == [
        "Norfair: euclidean < 20 pixels, hit counter 15, delay 7"] * 2
    assert facts["device"] == "cpu" and facts["code version"] not in ("", "?")


def test_report_is_self_contained_and_reuses_runs(written):
    html = written["html"]
    assert html.count("window.PlotlyConfig") == 1  # plotly.js inlined once
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)  # plotly.js has URLs
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", markup)
    assert not re.search(r"<script[^>]+src=", html)
    images = re.findall(r"<img src='data:image/jpeg;base64,", html)
    assert len(images) >= 3 * 2  # the gallery: every image, both models
    stat = (written["folder"] / "report.html").stat()
    assert stat.st_mode & 0o044 == 0o044 or os.umask(os.umask(0)) & 0o044  # shareable
    size = stat.st_size
    assert size < 15e6, size
    # a second report with unchanged inputs reuses the stored evaluations
    first, again = embedded(html), embedded(written["again"])
    for kind in ("evaluation", "tracking"):
        assert [v["run"] for v in again[kind].values()] == [
            v["run"] for v in first[kind].values()], kind


@pytest.mark.skipif(shutil.which("pdftoppm") is None,
                    reason="pdftoppm is absent: scripts/setup.sh --test installs poppler-utils")
def test_pdf_pages_are_not_blank(written):
    pdf = written["folder"] / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    out = written["folder"] / "pages"
    out.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(out / "page")], check=True)
    pages = sorted(out.glob("page*.png"))
    assert len(pages) >= 1
    coloured = 0
    for path in pages:
        image = cv2.imread(str(path))
        ink = (image < 235).any(axis=2).mean()
        assert ink > 0.01, f"{path.name} is blank ({ink:.4f} of it has ink)"
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        coloured += int(((hsv[..., 1] > 80) & (hsv[..., 2] > 60)).sum())
    assert coloured > 500, "no chart colours on any page"
    shutil.copytree(out, "/tmp/i16-shots/pdf-pages", dirs_exist_ok=True)


def test_report_from_stored_runs_only(written, tmp_path):
    """`cowdemo report --runs`: what the Runs page offers for any two runs."""
    data = embedded(written["html"])
    ids = [v["run"] for v in data["tracking"].values()]
    db = written["store"].url
    out = tmp_path / "runs.html"
    assert main(["report", "--runs", *map(str, ids), "--out", str(out), "--db", db]) == 0
    tables = html_tables(out.read_text())
    assert "tracking_metrics" in tables and "headline" not in tables
    assert np.array_equal(sorted(int(r[0]) for r in tables["runs"][1:]), sorted(ids))


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    assert main(["report", "--runs", "999", "--out", str(tmp_path / "r.html"),
                 "--db", db]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: There is no run 999") and "\n" not in err
    assert main(["report", "--model", "x", "--out", str(tmp_path / "r.html"), "--db", db]) == 2
    assert "Give a dataset" in capsys.readouterr().err
    assert main(["report", "--model", "x", "--dataset", "d", "--gt", "gt.txt", "--out",
                 str(tmp_path / "r.html"), "--db", db]) == 2
    assert "--gt is the ground truth of a video" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.browser
def test_html_opens_offline_with_every_chart_and_image(written):
    """Chromium opens the file from disk with every request outside it refused: every chart
    draws, every image decodes, no console error, no request leaves the file."""
    from browser_support import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: `scripts/setup.sh --test` installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    path = written["folder"] / "report.html"
    left, errors = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def route(r):
                if r.request.url.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    left.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri(), wait_until="load")
            charts = page.locator(".chart")
            assert charts.count() >= 5  # metrics, PR, threshold, per class, timeline
            page.wait_for_function(
                "() => [...document.querySelectorAll('.chart')].every("
                "c => c.querySelector('.js-plotly-plot .main-svg'))")
            drawn = page.evaluate(
                "() => [...document.querySelectorAll('.chart')].map("
                "c => c.querySelectorAll('.main-svg .trace, .main-svg .point').length)")
            assert all(n > 0 for n in drawn), drawn
            images = page.evaluate(
                "() => [...document.images].map(i => [i.complete, i.naturalWidth])")
            assert images and all(done and width > 0 for done, width in images), images
            page.screenshot(path="/tmp/i16-shots/report.png", full_page=True)
        finally:
            browser.close()
    assert not left, left
    assert not errors, errors


def test_frames_at_switches_show_the_tracked_boxes(tmp_path):
    """The report's switch thumbnails: one frame per switch, at the switch, boxes drawn. The
    boxes are the generator's (a tracker-level test: tracking_support), one cow hidden long
    enough to come back with a new id."""
    from tracking_support import synthetic_detections

    from cowdemo.datasets.synthetic import make_video_frames, mot_rows
    from cowdemo.evaluation.tracking import MotSequence
    from cowdemo.report.document import Gallery
    from cowdemo.report.sections import switch_thumbnails, tracking_section
    from cowdemo.tracking import TrackerSettings, track, tracking_report
    from cowdemo.video import write_video

    clip = make_video_frames(seed=0, n_frames=40, width=320, height=240)
    video = write_video(tmp_path / "clip.mp4", clip.frames, clip.fps)
    tracks = track(synthetic_detections(clip, hidden={1: range(8, 30)}), TrackerSettings())
    rows = np.asarray(mot_rows(clip), np.float64)
    report = tracking_report(tracks, MotSequence(rows[:, 0], rows[:, 1], rows[:, 2:6]))
    events = report.events()
    assert events, "cow 1 comes back after the hit counter ran out: a new id"
    thumbs = switch_thumbnails({"run": report}, video, per_run=2)
    assert len(thumbs) == min(2, len(events))
    plain = cv2.cvtColor(clip.frames[events[0].frame - 1], cv2.COLOR_RGB2BGR)
    drawn = cv2.imdecode(np.frombuffer(thumbs[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == plain.shape and thumbs[0].caption == f"run · {events[0].text}"
    # the boxes are drawn: the thumbnail differs from the plain frame beyond JPEG noise
    assert np.abs(drawn.astype(int) - plain.astype(int)).max() > 100
    from cowdemo.runs import Run

    stored = Run(1, "tracking", 0.0, "", "run", "", "clip", "", {"gt": True},
                 {k: float(v) for k, v in report.metrics().items()})
    section = tracking_section({"run": stored}, {"run": report}, video)
    from cowdemo.report.sections import tracker_text

    assert tracker_text(TrackerSettings().to_dict()).startswith("Norfair: euclidean < 20")
    assert tracker_text(TrackerSettings(family="bytetrack").to_dict()).count("ByteTrack") == 1
    assert any(isinstance(b, Gallery) and len(b.thumbnails) == len(thumbs)
               for b in section.blocks)


def test_suspects_section_draws_each_suspect(tmp_path):
    """The suspects section draws each label-error suspect of cowdemo.evaluation.suspects."""
    from cowdemo.datasets.coco import CocoDataset
    from cowdemo.datasets.synthetic import make_dataset
    from cowdemo.evaluation.suspects import Suspect
    from cowdemo.report.document import Gallery, Table
    from cowdemo.report.sections import suspects_section

    make_dataset(tmp_path / "cows", n_images=2, width=320, height=240, seed=3)
    dataset = CocoDataset.load(tmp_path / "cows")
    first = dataset.image_ids[0]
    name = dataset.image_info(first)["file_name"]
    suspects = [Suspect("missing", first, name, (10, 10, 60, 40), "cow", 0.93, ("B",), 2.0),
                Suspect("stray", first, name, (100, 80, 50, 50), "cow", None, ("A", "B"), 1.0)]
    section = suspects_section(dataset, suspects)
    gallery = next(b for b in section.blocks if isinstance(b, Gallery))
    assert [t.caption for t in gallery.thumbnails] == [
        f"{name}: cow 0.93 by B, no box drawn", f"{name}: cow box no model finds"]
    drawn = cv2.imdecode(np.frombuffer(gallery.thumbnails[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
    r, g, b = drawn[10, 40][::-1]  # the red box's top edge
    assert r > 180 and g < 110 and b < 110, (r, g, b)
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert [row[0] for row in table.rows] == ["missing", "stray"]
    assert "No suspect" in suspects_section(dataset, []).blocks[0].text


def test_report_lists_the_label_error_suspects_of_the_stored_runs(written):
    from cowdemo.datasets.coco import CocoDataset
    from cowdemo.evaluation.runner import load_evaluation
    from cowdemo.evaluation.suspects import find_suspects

    data, store = embedded(written["html"]), written["store"]
    dataset = CocoDataset.load(written["inputs"]["dataset"])
    results = {}
    for model, entry in data["evaluation"].items():
        e = load_evaluation(store, entry["run"])
        results[model] = [row for image_id, dets in e.predictions.items()
                          for row in dets.to_coco_results(image_id, dataset.category_ids)]
    expected = find_suspects(dataset.coco, results)[:8]
    rows = html_tables(written["html"]).get("suspects", [])[1:]
    assert rows, "the fine-tune's confident boxes off every cow are suspects"
    assert [(r[0], r[1], r[4]) for r in rows] == [
        (s.kind, s.file_name, ", ".join(s.models)) for s in expected]


def test_report_states_the_a_vs_b_interval_of_the_stored_runs(written):
    from cowdemo.datasets.coco import CocoDataset
    from cowdemo.evaluation.compare import compare_models
    from cowdemo.evaluation.runner import load_evaluation

    data, store = embedded(written["html"]), written["store"]
    dataset = CocoDataset.load(written["inputs"]["dataset"])
    results = []
    for entry in data["evaluation"].values():
        e = load_evaluation(store, entry["run"])
        results.append([row for image_id, dets in e.predictions.items()
                        for row in dets.to_coco_results(image_id, dataset.category_ids)])
    expected = compare_models(dataset.coco, *results, names=MODELS, seed=0).sentences()
    assert expected and data["interval"] == expected
    import html as html_lib

    for sentence in expected:
        assert html_lib.escape(sentence) in written["html"]


def test_report_shows_the_error_types_and_calibration_of_the_stored_runs(written):
    from cowdemo.datasets.coco import CocoDataset
    from cowdemo.evaluation.analysis import ERROR_LABELS, ERROR_TYPES
    from cowdemo.evaluation.insights import error_types, score_calibration
    from cowdemo.evaluation.runner import load_evaluation

    data, store = embedded(written["html"]), written["store"]
    dataset = CocoDataset.load(written["inputs"]["dataset"])
    tables = html_tables(written["html"])
    header, *rows = tables["error_types"]
    assert [r[0] for r in rows] == [ERROR_LABELS[t] for t in ERROR_TYPES]
    calibration = {r[0]: r for r in tables["calibration"][1:]}
    for i, (model, entry) in enumerate(data["evaluation"].items()):
        e = load_evaluation(store, entry["run"])
        tide, cal = error_types(e, dataset), score_calibration(e, dataset)
        assert header[1 + 2 * i] == f"{model}: AP50 gained if fixed"
        for row, t in zip(rows, ERROR_TYPES):
            assert row[1 + 2 * i] == f"{tide.delta_ap[t]:.4f}"
            assert row[2 + 2 * i] == str(int(tide.counts[t]))
        assert calibration[model][1] == f"{cal.ece:.3f}"
    assert sum(int(r[2]) + int(r[4]) for r in rows) > 0, "the small models make errors"
