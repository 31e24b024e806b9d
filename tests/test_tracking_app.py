"""The Track page through streamlit.testing's AppTest: real models (the small checkpoints of
conftest), the synthetic sample video, cached detections, bad uploads."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import open_page

from cowdemo.datasets.synthetic import make_video_frames, write_video

pytestmark = pytest.mark.slow



@pytest.fixture
def track_page(demo_env, tmp_path, monkeypatch):
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    at = open_page("views/track.py", timeout=300)
    # 3 frames keep the test quick; delay 0 shows tracks from the first frame
    at.number_input(key="track_max_frames").set_value(3)
    at.slider(key="track_a_delay_15").set_value(0)
    return at.run()


def detection_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "data" / "cache" / "detections").glob("*.npz"))


def test_sample_video_tracked_by_both_models_and_retuned_without_detecting(track_page, tmp_path):
    at = track_page
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert [h.value for h in at.subheader][:2] == ["frcnn-mobilenet-v3-coco", "cows-finetuned"]
    # videos are rendered on demand: stats and timeline first
    assert len(at.get("video")) == 0
    assert len(at.get("plotly_chart")) == 1
    # the COCO model calls every cow "dog": the page says what it saw, not "0 tracks" alone
    warned = [w.value for w in at.warning if "Nothing was tracked" in w.value]
    assert len(warned) == 1 and "dog and no cow at score >= 0.5" in warned[0], warned
    at.button(key="track_render").click().run()
    assert len(at.get("video")) == 2 and not at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == ["metric", "frcnn-mobilenet-v3-coco", "cows-finetuned",
                                   "meaning"]  # fmt: skip
    assert {"MOTA", "IDF1", "HOTA", "ID switches"} <= set(table["metric"])
    # the COCO model calls cows "dog": with the class filter on cow it tracks nothing
    metrics = {m.label: m.value for m in at.metric}
    assert "Tracks" in metrics
    files = detection_files(tmp_path)
    assert len(files) == 2
    stamps = [f.stat().st_mtime_ns for f in files]

    at.number_input(key="track_a_threshold_euclidean").set_value(60.0).run()
    assert not at.exception
    assert len(at.get("video")) == 0, "new settings: re-tracked, the video waits for a click"
    assert detection_files(tmp_path) == files, "re-tracking ran no detection pass"
    assert [f.stat().st_mtime_ns for f in files] == stamps

    at.radio(key="track_compare").set_value("Two tracker settings").run()
    assert not at.exception
    labels = [h.value for h in at.subheader][:2]
    assert labels == [f"frcnn-mobilenet-v3-coco · settings {n}" for n in (1, 2)]
    assert detection_files(tmp_path) == files, "model A's detections are reused"
    # ByteTrack as settings 2: Norfair and ByteTrack side by side on the same detections
    at.radio(key="track_s2_family").set_value("bytetrack").run()
    assert not at.exception and not at.error
    captions = [c.value for c in at.caption]
    assert any(c.startswith("ByteTrack: activation 0.25") for c in captions)
    assert any(c.startswith("euclidean < 60 pixels") or c.startswith("euclidean < 20 pixels")
               for c in captions)
    table = at.dataframe[0].value
    assert list(table.columns)[1:3] == [f"frcnn-mobilenet-v3-coco · settings {n}" for n in (1, 2)]
    assert detection_files(tmp_path) == files


def test_bad_uploads_show_one_error_and_the_page_keeps_serving(track_page, tmp_path):
    at = track_page
    at.file_uploader(key="track_upload").set_value(
        ("holiday.mp4", b"definitely not a video" * 100, "video/mp4")
    ).run()
    at.button[0].click().run()
    assert not at.exception
    assert any("holiday.mp4 is not a video" in e.value for e in at.error)

    good = write_video(tmp_path / "cows.avi", make_video_frames(seed=1, n_frames=3))
    at.file_uploader(key="track_upload").set_value(
        ("cows.avi", good.read_bytes(), "video/x-msvideo")
    ).run()
    at.file_uploader(key="track_gt").set_value(("gt.txt", b"1,2,3\n", "text/plain")).run()
    assert not at.exception
    assert any("gt.txt line 1: expected 6 to 10 values" in e.value for e in at.error)


def test_auto_tune_panel_finds_and_applies_settings(demo_env, tmp_path, monkeypatch):
    """A small tune (4 trials) on 12 frames of the sample with its ground truth: the held-out
    table and top trials show, and "Apply" fills the tracker form with the best settings."""
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    at = open_page("views/track.py", timeout=300)
    at.number_input(key="track_max_frames").set_value(12)
    at.run()
    at.button[0].click().run()
    at.number_input(key="tune_trials").set_value(4).run()
    at.button(key="tune_run").click().run()
    assert not at.exception and not at.error
    assert any("Best of 4 trials (HOTA)" in s.value for s in at.success)
    tables = [d.value for d in at.dataframe]
    held_out = next(t for t in tables if "settings in use" in t.columns)
    assert list(held_out.columns) == ["metric", "settings in use", "best found"]
    top = next(t for t in tables if "trial" in t.columns)
    assert len(top) == 4 and top["trial"].tolist()[0] >= 1
    assert "HOTA" in set(held_out["metric"])
    best = at.session_state["_tune_result"][1].best
    at.button(key="tune_apply").click().run()
    assert not at.exception
    assert at.radio(key="track_a_family").value == best.family
    if best.family == "norfair":
        assert at.selectbox(key="track_a_distance").value == best.distance
        assert at.slider(key="track_a_hits").value == best.hit_counter_max


def test_runs_page_tells_tracking_runs_with_other_settings_apart(tmp_path, monkeypatch):
    """Two tracking runs of one model on one video with different tracker settings: the Runs
    page's table has a "tracker settings" column that tells them apart."""
    from cowdemo.runs import RunStore
    from cowdemo.tracking import TrackerSettings

    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    store = RunStore()
    for settings in (TrackerSettings(), TrackerSettings(family="bytetrack")):
        store.record("tracking", "yolox-nano", {"Tracks": 3.0}, dataset="cows.mp4",
                     settings={"tracker": settings.to_dict()})  # fmt: skip
    at = open_page("views/runs.py", timeout=120)
    at.selectbox[0].set_value("tracking").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "tracker settings" in d.value.columns)
    assert set(table["model"]) == {"yolox-nano"}
    shown = sorted(table["tracker settings"])
    assert shown[0].startswith("ByteTrack: activation 0.25") and shown[1].startswith("euclidean")
