"""Frames of a video into a dataset (cowdemo.datasets.video_frames, `cowdemo datasets
add-frames`): around the tracker's switches on a synthetic crossing with a real model (YOLOX-Nano
from ../shared), every n-th, listed frames, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from cowdemo.cli import main
from cowdemo.datasets import formats
from cowdemo.datasets.store import DatasetStore
from cowdemo.datasets.synthetic import make_video_frames, write_video
from cowdemo.datasets.video_frames import parse_frames
from cowdemo.detections import box_iou
from cowdemo.errors import CowdemoError


@pytest.fixture(autouse=True)
def data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(scope="module")
def crossing(tmp_path_factory):
    """60 frames; cows 1 and 2 walk past each other (2 hides part of 1)."""
    video = make_video_frames(seed=0, n_frames=60)
    return video, write_video(tmp_path_factory.mktemp("video") / "crossing.mp4", video)


def crossing_span(video) -> tuple[int, int]:
    """First and last frame (1-based) in which the boxes of cows 1 and 2 overlap."""
    frames = [i + 1 for i, rows in enumerate(video.tracks)
              if box_iou(np.array([dict(rows)[1]]), np.array([dict(rows)[2]]))[0, 0] > 0]
    return frames[0], frames[-1]


@pytest.mark.slow
def test_at_switches_adds_the_frames_around_the_crossing(crossing, yolox_nano_path, capsys):
    from cowdemo.models.yolox_onnx import YoloxOnnxDetector

    video, path = crossing
    code = main(["datasets", "add-frames", str(path), "--dataset", "crossing", "--at-switches",
                 "--model", str(yolox_nano_path), "--score-threshold", "0.3", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    dataset = DatasetStore().get("crossing")
    frames = [im["video"]["frame"] for im in dataset.images]
    first, last = crossing_span(video)
    assert frames, printed
    assert all(first <= f <= last for f in frames), (frames, (first, last))
    assert all(not formats.is_done(im) for im in dataset.images)
    assert all(im["video"]["nearest_break"]["distance"] <= 2 for im in dataset.images)
    # pre-annotated: each image holds YOLOX's cows at 0.3 on exactly that frame
    detector = YoloxOnnxDetector(yolox_nano_path)
    total = 0
    for image in dataset.images:
        expected = detector.predict(dataset.read_image(image["id"])).filter(0.3, ["cow"])
        stored = dataset.ground_truth(image["id"])
        assert len(stored) == len(expected)
        np.testing.assert_allclose(np.sort(stored.xyxy, axis=0), np.sort(expected.xyxy, axis=0),
                                   atol=1e-3)
        total += len(stored)
    assert total > 0
    assert f"Added {len(frames)} frame(s) of the video to crossing" in printed
    assert "track" in printed and "frame" in printed


def test_every_and_listed_frames_without_boxes(crossing, capsys):
    _, path = crossing
    assert main(["datasets", "add-frames", str(path), "--dataset", "every", "--every", "20"]) == 0
    dataset = DatasetStore().get("every")
    assert [im["video"]["frame"] for im in dataset.images] == [1, 21, 41]
    assert dataset.num_boxes() == 0 and not any(formats.is_done(im) for im in dataset.images)
    assert main(["datasets", "add-frames", str(path), "--dataset", "every", "--frames",
                 "21,59-60"]) == 0
    assert "Added 2 frame(s) of the video to every as images not done (1 already in it)" in \
        capsys.readouterr().out
    assert [im["video"]["frame"] for im in DatasetStore().get("every").images] == [1, 21, 41,
                                                                                    59, 60]


def test_bad_input_is_one_line(crossing, capsys):
    _, path = crossing
    assert main(["datasets", "add-frames", str(path), "--dataset", "x", "--frames", "61"]) == 2
    assert "Frame 61 is not in the video: frames go from 1 to 60." in capsys.readouterr().err
    assert main(["datasets", "add-frames", str(path), "--dataset", "x", "--at-switches"]) == 2
    assert "give --model" in capsys.readouterr().err
    assert not DatasetStore().exists("x")
    with pytest.raises(CowdemoError, match="frame numbers like"):
        parse_frames("12,a")
    assert parse_frames("3, 5-7") == [3, 5, 6, 7]
