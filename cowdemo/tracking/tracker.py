"""Norfair, driven by :class:`TrackerSettings`, turning cached detections into :class:`Tracks`.

Each processed frame's boxes (filtered by score and class) become Norfair ``Detection`` points,
the box centre or its two corners depending on the distance, and ``Tracker.update`` links them
to tracked objects. A frame's output is the boxes that were linked to a confirmed track in that
frame, with the track's id: boxes the detector really found, never the tracker's guesses for
hidden cows, so MOT metrics score what the detector and tracker saw::

    tracks = track(found, TrackerSettings(distance_threshold=30))
    tracks.detections[0].track_ids, tracks.num_tracks
    tracks.write_mot("out/tracks.txt"); tracks.write_csv("out/tracks.csv")
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from norfair import Detection, Tracker
from norfair.distances import create_normalized_mean_euclidean_distance

from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.tracking import MotSequence, write_mot
from cowdemo.files import atomic_write_bytes
from cowdemo.tracking.appearance import signature_distance
from cowdemo.tracking.detection import VideoDetections, VideoMeta
from cowdemo.tracking.settings import TrackerSettings

CSV_COLUMNS = ("frame", "time_s", "track_id", "class", "score", "x1", "y1", "x2", "y2",
               "width", "height")  # fmt: skip


@dataclass
class Tracks:
    """Tracked boxes of every processed frame.

    Attributes:
        frame_numbers: (n,) 1-based source frame numbers, as in :class:`VideoDetections`.
        times: (n,) seconds.
        detections: per processed frame, the tracked boxes (``track_ids`` set), source pixels.
        settings: the tracker settings used.
        meta: the video's facts; ``model`` the detector's name.
    """

    frame_numbers: np.ndarray
    times: np.ndarray
    detections: list[Detections]
    settings: TrackerSettings
    meta: VideoMeta
    model: str

    def __len__(self) -> int:
        return len(self.frame_numbers)

    @property
    def track_ids(self) -> np.ndarray:
        ids = [d.track_ids for d in self.detections if len(d)]
        return np.unique(np.concatenate(ids)) if ids else np.zeros(0, np.int64)

    @property
    def num_tracks(self) -> int:
        return len(self.track_ids)

    @property
    def label(self) -> str:
        return self.settings.label or self.model

    def to_mot(self, name: str = "") -> MotSequence:
        """The tracks as a :class:`MotSequence` (source frame numbers, source pixels)."""
        return MotSequence.from_detections(
            zip(self.frame_numbers.tolist(), self.detections), name=name or self.label
        )

    def write_mot(self, path: str | os.PathLike) -> Path:
        """MOTChallenge text ``frame,id,left,top,width,height,score,-1,-1,-1``, atomically."""
        return write_mot(path, self.to_mot())

    def mot_text(self) -> str:
        """The MOTChallenge text :meth:`write_mot` writes."""
        with tempfile.TemporaryDirectory() as folder:
            return self.write_mot(Path(folder) / "tracks.txt").read_text(encoding="utf-8")

    def csv_text(self) -> str:
        """One row per tracked box: frame, time, track id, class, score, corners, size."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for frame, time_s, dets in zip(self.frame_numbers, self.times, self.detections):
            for i in np.argsort(dets.track_ids, kind="stable") if len(dets) else []:
                x1, y1, x2, y2 = (round(float(v), 2) for v in dets.xyxy[i])
                writer.writerow([int(frame), round(float(time_s), 4), int(dets.track_ids[i]),
                                 str(dets.class_names[i]), round(float(dets.scores[i]), 4),
                                 x1, y1, x2, y2, round(x2 - x1, 2), round(y2 - y1, 2)])
        return buffer.getvalue()

    def write_csv(self, path: str | os.PathLike) -> Path:
        return atomic_write_bytes(path, self.csv_text().encode("utf-8"))


class _QuietScalarNotice(logging.Filter):
    """Norfair logs a notice on the root logger when a pair-by-pair distance is chosen; the
    settings already say so in plain words, so it is dropped while the tracker is built."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "scalar distance function" not in record.getMessage()


@contextmanager
def _quiet_norfair() -> Iterator[None]:
    root = logging.getLogger()
    notice = _QuietScalarNotice()
    root.addFilter(notice)
    try:
        yield
    finally:
        root.removeFilter(notice)


def _reid_distance(new_object, lost_object) -> float:
    a = new_object.last_detection.embedding
    b = lost_object.last_detection.embedding
    if a is None or b is None:
        return 1.0
    return signature_distance(a, b)


def make_tracker(settings: TrackerSettings, frame_size: tuple[int, int]) -> Tracker:
    """A Norfair ``Tracker`` for ``settings`` (``frame_size`` = (width, height) in pixels, used
    by the frame-relative distance)."""
    spec = settings.spec
    if spec.name == "normalized_mean_euclidean":
        width, height = frame_size
        distance = create_normalized_mean_euclidean_distance(height, width)
    else:
        distance = spec.name
    reid = {}
    if settings.reid:
        reid = {
            "reid_distance_function": _reid_distance,
            "reid_distance_threshold": settings.reid_distance_threshold,
            "reid_hit_counter_max": settings.reid_hit_counter_max,
        }
    with _quiet_norfair():
        return Tracker(
            distance_function=distance,
            distance_threshold=settings.distance_threshold,
            hit_counter_max=settings.hit_counter_max,
            initialization_delay=settings.delay,
            **reid,
        )


def _points(dets: Detections, kind: str) -> np.ndarray:
    if kind == "centroid":
        return dets.centers[:, None, :]  # (k, 1, 2)
    return dets.xyxy.reshape(-1, 2, 2)  # (k, 2, 2): top-left, bottom-right


class OnlineTracker:
    """Norfair one frame at a time: :meth:`step` takes a frame's raw detections and returns
    its tracked boxes. Tracking is causal, so it can run while frames are still being
    detected (the pipeline renders the video in the same pass); :func:`track` runs it over a
    whole cached pass. Both give the same tracks."""

    def __init__(self, settings: TrackerSettings, frame_size: tuple[int, int]):
        self.settings = settings
        self.tracker = make_tracker(settings, frame_size)
        self.serial = 0

    def step(self, dets: Detections, signatures: np.ndarray, frame_number: int = 0) -> Detections:
        settings = self.settings
        serial = self.serial
        self.serial += 1
        keep = trackable_mask(dets, settings)
        frame_dets = dets[keep]
        sigs = signatures[keep] if settings.reid else None
        points = _points(frame_dets, settings.spec.points)
        labels = frame_dets.class_names if settings.class_aware else None
        candidates = [
            Detection(
                points[i],
                data=(serial, i),
                label=None if labels is None else str(labels[i]),
                embedding=None if sigs is None else sigs[i],
            )
            for i in range(len(frame_dets))
        ]
        try:
            active = self.tracker.update(candidates)
        except ValueError as exc:  # Norfair refuses NaN distances
            raise CowdemoError(
                f"Norfair could not link the boxes of frame {frame_number or serial + 1} "
                f"({str(exc).strip().splitlines()[0][:100]}): try another distance."
            ) from None
        rows, ids = [], []
        for obj in active:
            data = obj.last_detection.data
            if data is not None and data[0] == serial:
                rows.append(data[1])
                ids.append(obj.id)
        order = np.argsort(ids, kind="stable")
        chosen = frame_dets[np.asarray(rows, np.int64)[order]]
        return Detections(chosen.xyxy, chosen.scores, chosen.class_ids, chosen.class_names,
                          np.asarray(ids, np.int64)[order])  # fmt: skip


def track(found: VideoDetections, settings: TrackerSettings | None = None) -> Tracks:
    """Link the boxes of every processed frame into tracks with Norfair (ids from 1)."""
    settings = settings or TrackerSettings()
    online = OnlineTracker(settings, found.meta.size)
    out = [
        online.step(dets, signatures, int(number))
        for dets, signatures, number in zip(found.detections, found.signatures,
                                            found.frame_numbers)
    ]  # fmt: skip
    return Tracks(
        frame_numbers=found.frame_numbers,
        times=found.times,
        detections=out,
        settings=settings,
        meta=found.meta,
        model=found.model,
    )


def trackable_mask(dets: Detections, settings: TrackerSettings) -> np.ndarray:
    """The boxes the tracker sees: score >= threshold, class kept, a box of non-zero size."""
    keep = dets.scores >= settings.score_threshold
    if settings.classes is not None:
        keep &= np.isin(dets.class_names, settings.classes)
    return keep & (dets.xyxy[:, 2] > dets.xyxy[:, 0]) & (dets.xyxy[:, 3] > dets.xyxy[:, 1])
