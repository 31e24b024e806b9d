"""The tracking pipeline end to end: detection cache, rendering, exports, stats without ground
truth, real models (YOLOX-Nano from ../shared, the small torchvision checkpoints of conftest),
and the `cowdemo track` command."""

from __future__ import annotations

import csv
import hashlib
import io
import os

import numpy as np
import pytest
from tracking_support import (
    SyntheticGroundTruthDetector,
    synthetic_detections,
    write_lossless,
)

from cowdemo.cli import main
from cowdemo.datasets.synthetic import make_video_frames, write_mot_gt, write_video
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.tracking import read_mot
from cowdemo.tracking import (
    DetectionCache,
    TrackerSettings,
    VideoSettings,
    detect_video,
    model_identity,
    render_video,
    run_tracking,
    track,
    tracking_report,
)
from cowdemo.video import VideoReader, VideoWriter, probe

ALL_CLASSES = {"classes": None, "score_threshold": 0.0}


@pytest.fixture(autouse=True)
def data_folder(tmp_path, monkeypatch):
    """Caches (detections, renders) go to a temporary data folder, never the repository's."""
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(scope="module")
def clip():
    return make_video_frames(seed=0, n_frames=30)


@pytest.fixture(scope="module")
def lossless(clip, tmp_path_factory):
    return write_lossless(tmp_path_factory.mktemp("clip") / "clip.mkv", clip)


def test_detections_are_cached_per_video_model_and_settings(clip, lossless, tmp_path):
    detector = SyntheticGroundTruthDetector(clip)
    cache = DetectionCache(tmp_path / "cache")
    settings = VideoSettings(max_side=None)
    fresh = detect_video(lossless, detector, settings, cache=cache)
    assert not fresh.cached and detector.frames_seen == 30 and len(fresh) == 30
    again = detect_video(lossless, detector, settings, cache=cache)
    assert again.cached and detector.frames_seen == 30, "the model did not run again"
    assert again.key == fresh.key and all(a == b for a, b in zip(again.detections,
                                                                   fresh.detections))
    assert all((a == b).all() for a, b in zip(again.signatures, fresh.signatures))
    # the same tracks from the cache as from a fresh pass
    for settings_b in (TrackerSettings(**ALL_CLASSES), TrackerSettings(distance="iou",
                                                                       **ALL_CLASSES)):
        assert track(again, settings_b).to_mot().tlwh.tolist() == (
            track(fresh, settings_b).to_mot().tlwh.tolist()
        )
    strided = detect_video(lossless, detector, VideoSettings(stride=2, max_side=None),
                           cache=cache)  # fmt: skip
    assert not strided.cached and strided.key != fresh.key
    assert strided.frame_numbers.tolist() == list(range(1, 31, 2))
    # a damaged entry counts as missing, and is replaced
    cache.path(fresh.key).write_bytes(b"garbage")
    assert not detect_video(lossless, detector, settings, cache=cache).cached


def test_downscaled_detection_keeps_boxes_in_source_pixels(clip, tmp_path):
    path = write_video(tmp_path / "clip.avi", clip)
    boxes = {}
    for side in (None, 160):

        class Centre(SyntheticGroundTruthDetector):
            """One fixed box in the middle of whatever image it gets (exercises scaling)."""

            def predict_batch(self, images):
                from cowdemo.detections import Detections

                out = []
                for image in images:
                    h, w = image.shape[:2]
                    out.append(Detections.from_class_ids([[w / 4, h / 4, w * 3 / 4, h * 3 / 4]],
                                                         [1.0], [0], ["cow"]))  # fmt: skip
                return out

        found = detect_video(path, Centre(clip), VideoSettings(max_side=side, max_frames=2))
        assert found.meta.size == (320, 240)
        boxes[side] = found.detections[0].xyxy
    assert found.meta.processed_width == 160
    assert np.allclose(boxes[None], boxes[160])
    assert np.allclose(boxes[160], [[80, 60, 240, 180]])


def test_render_and_exports(clip, lossless, tmp_path):
    found = synthetic_detections(clip)
    found.meta.name = "clip.mkv"
    tracks = track(found, TrackerSettings(**ALL_CLASSES))
    video = render_video(lossless, tracks, tmp_path / "tracks.mp4")
    info = probe(video)
    assert (info.codec, info.width, info.height, info.frame_count) == ("h264", 320, 240, 30)
    drawn = list(VideoReader(video))[20].image
    # the id label boxes are drawn in each track's colour: the frame differs from the source
    assert np.abs(drawn.astype(int) - clip.frames[20]).mean() > 1
    mot = read_mot(tracks.write_mot(tmp_path / "tracks.txt"))
    assert np.allclose(mot.tlwh, tracks.to_mot().tlwh) and (mot.ids == tracks.to_mot().ids).all()
    rows = list(csv.DictReader(io.StringIO(tracks.write_csv(tmp_path / "t.csv").read_text())))
    assert len(rows) == len(mot) and rows[0]["frame"] == "1" and rows[0]["class"] == "cow"
    assert tracks.mot_text() == (tmp_path / "tracks.txt").read_text()


def test_render_refuses_a_different_video(clip, tmp_path):
    found = synthetic_detections(clip)
    tracks = track(found, TrackerSettings(**ALL_CLASSES))
    other = write_video(tmp_path / "short.avi", make_video_frames(seed=1, n_frames=5))
    path = render_video(other, tracks, tmp_path / "out.mp4")  # fewer frames: what there is
    assert probe(path).frame_count == 5
    tracks.frame_numbers = tracks.frame_numbers + 1
    with pytest.raises(CowdemoError, match="does not line up with the tracks"):
        render_video(other, tracks, tmp_path / "out2.mp4")


def test_without_ground_truth_suspected_switches_name_their_frame(clip):
    """Cow 3 hidden for 8 frames: its track closes (hit counter 6) and a new one starts where
    it reappears: a suspected switch at the new track's first frame."""
    found = synthetic_detections(clip, hidden={3: range(10, 18)})
    tracks = track(found, TrackerSettings(hit_counter_max=6, **ALL_CLASSES))
    report = tracking_report(tracks)
    assert not report.has_ground_truth
    metrics = report.metrics()
    counts = metrics["Tracks"], metrics["Most cows in a frame"], metrics["Extra tracks"]
    assert counts == (4, 3, 1)
    (event,) = report.events()
    lifetimes = {row["track"]: row for row in report.lifetimes()}
    assert event.kind == "suspected" and event.new_id == 4
    assert lifetimes[event.old_id]["last frame"] == 10, "the hidden cow's track, last seen at 10"
    assert event.frame == lifetimes[4]["first frame"]
    assert event.text.startswith(f"frame {event.frame}: track 4 starts")


def test_ground_truth_of_another_video_is_refused(clip, tmp_path):
    tracks = track(synthetic_detections(clip), TrackerSettings(**ALL_CLASSES))
    far = read_mot("500,1,10,10,50,50,1,-1,-1,-1\n")
    with pytest.raises(CowdemoError, match="starts at frame 500 but the video has 30 frames"):
        tracking_report(tracks, far)
    outside = read_mot("1,1,900,900,50,50,1,-1,-1,-1\n")
    with pytest.raises(CowdemoError, match="outside the 320x240 video"):
        tracking_report(tracks, outside)
    ignored = read_mot("1,1,10,10,50,50,0,-1,-1,-1\n2,1,10,10,50,50,1,-1,-1,-1\n")
    assert "ignore" in tracking_report(tracks, ignored).notes[0]


def test_model_identity_changes_when_the_checkpoint_changes(demo_env):
    before = model_identity("cows-finetuned")
    checkpoint = demo_env / "cows-finetuned.pt"
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert model_identity("cows-finetuned") != before
    finally:
        os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.slow
def test_yolox_nano_tracks_synthetic_cows(yolox_nano_path, tmp_path):
    """A real detector on a real (lossy mp4v) video: batched, two passes at once, same boxes
    as one frame at a time; cows found and tracked; stats against the generator's truth."""
    from cowdemo.models.yolox_onnx import YoloxOnnxDetector

    video = make_video_frames(seed=0, n_frames=24)
    path = write_video(tmp_path / "cows.mp4", video)
    gt = read_mot(write_mot_gt(tmp_path / "gt.txt", video))
    detector = YoloxOnnxDetector(yolox_nano_path)
    one = detect_video(path, detector, VideoSettings(), batch_size=1, workers=1)
    many = detect_video(path, detector, VideoSettings(), batch_size=3, workers=2)
    assert all(a == b for a, b in zip(one.detections, many.detections))
    outcome = run_tracking(path, detector, tracker_settings=TrackerSettings(score_threshold=0.3),
                           gt=gt, render_to=tmp_path / "out.mp4")  # fmt: skip
    assert outcome.tracks.num_tracks >= 2
    metrics = outcome.report.metrics()
    assert metrics["True cows"] == 3 and 0 < metrics["Recall"] <= 1
    assert probe(outcome.video).frame_count == 24


@pytest.mark.slow
def test_cli_track_writes_video_tracks_and_stats(demo_env, tmp_path, capsys):
    video = make_video_frames(seed=4, n_frames=6)
    path = write_video(tmp_path / "cows.avi", video)
    gt = write_mot_gt(tmp_path / "gt.txt", video)
    out = tmp_path / "out"
    code = main(["track", str(path), "--model", "cows-finetuned", "--gt", str(gt), "--out",
                 str(out), "--max-frames", "3", "--initialization-delay", "0",
                 "--compare", "distance=iou", "--device", "cpu"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    for name in ("cows-finetuned", "cows-finetuned-b"):
        assert probe(out / f"{name}.mp4").codec == "h264"
        assert (out / f"{name}.txt").is_file() and (out / f"{name}.csv").is_file()
    stats = list(csv.reader((out / "stats.csv").open()))
    assert stats[0][:3] == ["metric", "cows-finetuned", "cows-finetuned-b"]
    assert "IDF1" in {row[0] for row in stats}
    assert (out / "switches.csv").is_file() and (out / "summary.json").is_file()
    assert "cows-finetuned:" in printed and "MOTA" in printed
    # both runs are in the run history, with their stats and per-id switch counts
    from cowdemo.runs import RunStore

    runs = RunStore().list(kind="tracking")
    # named by the model's registry name; told apart by their tracker settings
    assert [r.model for r in runs[-2:]] == ["cows-finetuned", "cows-finetuned"]
    from cowdemo.tracking.history import settings_text

    assert [settings_text(r.settings).split(" <")[0] for r in runs[-2:]] == ["euclidean", "iou"]
    assert runs[-1].dataset == "cows.avi" and "IDF1" in runs[-1].metrics
    assert runs[-1].settings["tracker"]["distance"] == "iou"
    assert "switches_per_gt_id" in RunStore().details(runs[-1].id)
    # the second run finds the detections in the cache
    code = main(["track", str(path), "--model", "cows-finetuned", "--out", str(out),
                 "--max-frames", "3", "--no-video", "--device", "cpu"])  # fmt: skip
    assert code == 0 and "cached detections" in capsys.readouterr().out


def test_cli_track_bad_input_is_one_line_and_exit_2(demo_env, tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    assert main(["track", str(bad), "--model", "cows-finetuned", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: notes.mp4 is not a video") and "\n" not in err
    ok = write_video(tmp_path / "ok.avi", make_video_frames(seed=1, n_frames=2))
    assert main(["track", str(ok), "--model", "cows-finetuned", "--distance", "iou",
                 "--distance-threshold", "3"]) == 2  # fmt: skip
    assert "between 0 and 1" in capsys.readouterr().err
    assert main(["track", str(ok), "--model", "cows-finetuned", "--compare", "speed=9"]) == 2
    assert "--compare takes KEY=VALUE" in capsys.readouterr().err


def test_one_pass_and_cached_runs_give_the_same_tracks_and_video(clip, lossless, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    """Fresh: detect, track and render in one pass. Cached: track, then decode to render.
    Same tracks, and the same drawn frames handed to the encoder."""
    drawn: list[str] = []
    write = VideoWriter.write

    def recording_write(self, image):
        drawn.append(hashlib.sha1(image.tobytes()).hexdigest())
        return write(self, image)

    monkeypatch.setattr(VideoWriter, "write", recording_write)
    detector = SyntheticGroundTruthDetector(clip, jitter=0.5, min_visible=0.7)
    cache = DetectionCache(tmp_path / "cache")
    settings = TrackerSettings(hit_counter_max=6, **ALL_CLASSES)
    runs = [run_tracking(lossless, detector, VideoSettings(max_side=None), settings, cache=cache,
                         render_to=tmp_path / f"run{i}.mp4") for i in range(2)]  # fmt: skip
    assert [r.found.cached for r in runs] == [False, True]
    first, second = (r.tracks.to_mot() for r in runs)
    assert (first.ids == second.ids).all() and np.array_equal(first.tlwh, second.tlwh)
    assert first.tlwh.tolist() == track(runs[0].found, settings).to_mot().tlwh.tolist()
    assert len(drawn) == 60 and drawn[:30] == drawn[30:]
    assert [probe(r.video).frame_count for r in runs] == [30, 30]
