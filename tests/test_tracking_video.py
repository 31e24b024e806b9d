"""cowdemo.video: real files written by OpenCV and PyAV, decoded back; every kind of bad input
gives one clear CowdemoError (or a note, where the frames are still usable)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from cowdemo import images
from cowdemo.datasets.synthetic import make_video_frames, write_video
from cowdemo.errors import CowdemoError
from cowdemo.video import (
    VideoReader,
    available_encoders,
    frame_at,
    probe,
    scaled_size,
)
from cowdemo.video import (
    write_video as encode,
)


@pytest.fixture(scope="module")
def clip():
    return make_video_frames(seed=2, n_frames=12)


@pytest.fixture(scope="module")
def clip_mp4(clip, tmp_path_factory) -> Path:
    """An OpenCV mp4v file, as a notebook would have written it."""
    return write_video(tmp_path_factory.mktemp("video") / "cows.mp4", clip)


def test_probe_and_read_every_frame(clip, clip_mp4):
    info = probe(clip_mp4)
    assert (info.width, info.height, info.fps, info.frame_count) == (320, 240, 10.0, 12)
    assert info.codec == "mpeg4"
    frames = list(VideoReader(clip_mp4))
    assert [f.number for f in frames] == list(range(1, 13))
    assert np.allclose([f.time_s for f in frames], np.arange(12) / 10)
    # lossy, but the same picture: cows are where the generator drew them
    error = np.abs(frames[5].image.astype(int) - clip.frames[5]).mean()
    assert error < 8


def test_stride_max_side_and_max_frames(clip_mp4):
    reader = VideoReader(clip_mp4, stride=3, max_side=160, max_frames=3)
    frames = list(reader)
    assert [f.number for f in frames] == [1, 4, 7]
    assert frames[0].image.shape == (120, 160, 3)
    assert reader.output_fps == pytest.approx(10 / 3)
    assert reader.expected_frames() == 3
    assert not reader.notes
    assert scaled_size(1920, 1080, 1280) == (1280, 720)
    assert scaled_size(640, 480, 1280) == (640, 480)


def test_h264_output_is_browser_playable_and_frames_come_back(clip, tmp_path):
    assert "h264" in available_encoders(), "PyAV's wheel ships libx264"
    odd = [f[:239, :319] for f in clip.frames]  # odd sizes are padded for yuv420p
    path = encode(tmp_path / "out.anything", odd, fps=10)
    assert path.suffix == ".mp4" and path.is_file()
    assert not list(tmp_path.glob(".*")), "no temp file left behind"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"  # what browsers decode
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        assert stream.frames == 12
    back = list(VideoReader(path))
    assert np.abs(back[3].image[:239, :319].astype(int) - odd[3]).mean() < 6


def test_vp9_fallback_writes_webm(clip, tmp_path):
    path = encode(tmp_path / "out.mp4", clip.frames[:3], fps=10, codec="vp9")
    assert path.suffix == ".webm" and probe(path).codec == "vp9"


def test_frame_at_seeks_to_the_frame_shown_at_a_time(clip_mp4):
    frames = list(VideoReader(clip_mp4))
    for index in (0, 7, 11):
        assert np.array_equal(frame_at(clip_mp4, frames[index].time_s), frames[index].image)


# --- bad input ---------------------------------------------------------------------------------
def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "holiday.mp4"
    path.write_text("this is not a video, just text with an .mp4 name\n" * 50)
    with pytest.raises(CowdemoError, match=r"^holiday\.mp4 is not a video that can be read"):
        probe(path)


def test_empty_file_and_empty_upload(tmp_path):
    (tmp_path / "empty.mov").write_bytes(b"")
    with pytest.raises(CowdemoError, match="empty"):
        probe(tmp_path / "empty.mov")
    with pytest.raises(CowdemoError, match="empty"):
        probe(b"", name="upload.mp4")


def test_image_named_mp4(tmp_path, clip):
    path = tmp_path / "photo.mp4"
    path.write_bytes(images.encode_png(clip.frames[0]))
    with pytest.raises(CowdemoError, match=r"photo\.mp4 is an image .*not a video"):
        probe(path)


def test_truncated_mp4_has_no_index(clip_mp4, tmp_path):
    data = clip_mp4.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # the moov index sits at the end: it is gone
    with pytest.raises(CowdemoError, match=r"cut\.mp4 is not a video .*truncated"):
        VideoReader(path)


def test_truncated_mkv_keeps_the_frames_before_the_break(clip, tmp_path):
    whole = encode(tmp_path / "whole.mp4", clip.frames, fps=10, codec="vp9")  # WebM/Matroska
    data = whole.read_bytes()
    path = tmp_path / "cut.webm"
    path.write_bytes(data[: int(len(data) * 0.6)])
    reader = VideoReader(path)
    frames = list(reader)
    assert 0 < len(frames) < 12
    assert reader.truncated
    assert any("truncated" in note for note in reader.notes)


@pytest.mark.parametrize(("suffix", "fourcc"), [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_zero_frames(tmp_path, suffix, fourcc):
    """A writer opened and closed without a frame: a real failure of recording scripts."""
    path = tmp_path / f"nothing{suffix}"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 48)).release()
    assert path.stat().st_size > 0
    with pytest.raises(CowdemoError, match=rf"nothing\{suffix} has no video frames"):
        probe(path)


def test_audio_only(tmp_path):
    path = tmp_path / "moo.mkv"
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("flac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16",
                                           layout="mono")  # fmt: skip
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(CowdemoError, match=r"moo\.mkv has no video frames \(audio only\)"):
        probe(path)


def test_huge_resolution_is_refused_before_decoding(clip_mp4, monkeypatch):
    monkeypatch.setenv("COWDEMO_MAX_VIDEO_PIXELS", str(320 * 240 - 1))
    with pytest.raises(CowdemoError, match=r"320x240 frames .* over the limit .*downscale"):
        VideoReader(clip_mp4)


def test_variable_frame_rate_is_noted_and_frames_kept(clip, tmp_path):
    path = tmp_path / "phone.mkv"
    stamps = [0, 100, 200, 250, 300, 500, 533, 700, 900, 1000]  # ms: irregular
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "bgr0"
        stream.codec_context.time_base = Fraction(1, 1000)
        for ms, image in zip(stamps, clip.frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    reader = VideoReader(path)
    frames = list(reader)
    assert len(frames) == len(stamps)
    assert [round(f.time_s, 3) for f in frames] == [ms / 1000 for ms in stamps]
    assert any("variable frame rate" in note for note in reader.notes)


def test_bad_settings():
    with pytest.raises(CowdemoError, match="stride"):
        VideoReader(b"x", stride=0)
    with pytest.raises(CowdemoError, match="Maximum resolution"):
        VideoReader(b"x", max_side=8)
