"""The tracks drawn on the video: boxes, id labels and trails, encoded so browsers play it.

A second decode of the video feeds the drawing (decoding is cheap next to detection, and it
keeps the detection pass free of rendering work that a settings change would redo anyway)::

    path = render_video("cows.mp4", tracks, "out/tracks.mp4")   # H.264 MP4 (VP9 WebM fallback)
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from cowdemo.detections import Detections
from cowdemo.draw import color_for, draw_detections
from cowdemo.errors import CowdemoError
from cowdemo.tracking.progress import Meter, ProgressCallback, frames_in_background
from cowdemo.tracking.tracker import Tracks
from cowdemo.video import VideoReader, VideoSource, VideoWriter

#: Processed frames of centre history drawn behind each cow.
TRAIL_LENGTH = 30

Trails = dict[int, deque]


def scaled(dets: Detections, sx: float, sy: float) -> Detections:
    """``dets`` with boxes scaled by (sx, sy): source pixels to rendered pixels."""
    if (sx, sy) == (1.0, 1.0):
        return dets
    return Detections(dets.xyxy * [sx, sy, sx, sy], dets.scores, dets.class_ids,
                      dets.class_names, dets.track_ids)  # fmt: skip


def draw_tracked(
    image: np.ndarray,
    dets: Detections,
    trails: Trails | None = None,
    serial: int = 0,
    trail_length: int = TRAIL_LENGTH,
) -> np.ndarray:
    """A copy of ``image`` with each tracked box and its "#id class" label; with ``trails``
    (updated here; ``serial`` is the processed frame's index), also the path each centre took
    over the last ``trail_length`` frames. Trails of cows gone longer than that disappear."""
    canvas = np.ascontiguousarray(image.copy())
    if trails is not None and dets.track_ids is not None:
        for track_id, centre in zip(dets.track_ids.tolist(), dets.centers):
            trail = trails.setdefault(track_id, deque(maxlen=max(trail_length, 1)))
            trail.append((serial, round(float(centre[0])), round(float(centre[1]))))
        thickness = max(1, round(min(image.shape[:2]) / 320))
        for track_id in list(trails):
            trail = trails[track_id]
            while trail and trail[0][0] <= serial - trail_length:
                trail.popleft()
            if not trail:
                del trails[track_id]
            elif len(trail) > 1:
                points = np.asarray([p[1:] for p in trail], np.int32).reshape(-1, 1, 2)
                cv2.polylines(canvas, [points], False, color_for(f"track-{track_id}"),
                              thickness, cv2.LINE_AA)  # fmt: skip
    return draw_detections(canvas, dets, show_scores=False, copy=False) if len(dets) else canvas


def reader_for(source: VideoSource, tracks: Tracks, name: str | None = None) -> VideoReader:
    """A reader giving the frames the tracks were made on (same stride, size and count)."""
    meta = tracks.meta
    scaled_down = (meta.processed_width, meta.processed_height) != (meta.width, meta.height)
    max_side = max(meta.processed_width, meta.processed_height) if scaled_down else None
    return VideoReader(source, meta.stride, max_side, max(len(tracks), 1), name or meta.name)


class TrackRenderer:
    """Draws tracked boxes, labels and trails on frames as they come and encodes them.

    ``scale`` is (rendered pixels per source pixel in x, in y): tracked boxes are in source
    pixels, frames at the size the detector saw. Use as a context manager; ``path`` is the
    finished file.
    """

    def __init__(self, out_path: str | os.PathLike, fps: float, scale: tuple[float, float],
                 codec: str | None = None, trail_length: int = TRAIL_LENGTH):  # fmt: skip
        self.writer = VideoWriter(out_path, fps, codec)
        self.scale = scale
        self.trail_length = trail_length
        self.trails: Trails = {}
        self.frames = 0

    @property
    def path(self) -> Path:
        return self.writer.path

    def add(self, image: np.ndarray, tracked: Detections) -> None:
        dets = scaled(tracked, *self.scale)
        self.writer.write(draw_tracked(image, dets, self.trails, self.frames, self.trail_length))
        self.frames += 1

    def __enter__(self) -> TrackRenderer:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.writer.__exit__(kind, value, traceback)


def render_video(
    source: VideoSource,
    tracks: Tracks,
    out_path: str | os.PathLike,
    *,
    trail_length: int = TRAIL_LENGTH,
    codec: str | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
) -> Path:
    """Draw ``tracks`` on the frames of ``source`` and encode them (H.264 MP4, or VP9 WebM
    where libx264 is missing) at the processed frames' rate. Returns the written path (its
    suffix is the container's)."""
    reader = reader_for(source, tracks, name)
    width, height = reader.output_size
    scale = width / tracks.meta.width, height / tracks.meta.height
    numbers = tracks.frame_numbers.tolist()
    meter = Meter("Rendering", len(tracks), progress)
    with TrackRenderer(out_path, tracks.meta.output_fps, scale, codec, trail_length) as out:
        for frame in frames_in_background(reader, depth=4):
            done = out.frames
            if done >= len(numbers):
                break
            if frame.number != numbers[done]:
                raise CowdemoError(
                    f"Frame {frame.number} of {reader.info.name} does not line up with the "
                    f"tracks (expected frame {numbers[done]}): was the video changed?"
                )
            out.add(frame.image, tracks.detections[done])
            meter.update(out.frames)
    meter.update(out.frames, final=True)
    return out.path
