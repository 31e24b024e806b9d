"""Norfair or ByteTrack, driven by :class:`TrackerSettings`, turning cached detections into
:class:`Tracks`.

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
import warnings
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
    whole cached pass. Both give the same tracks.

    Backfill (``settings.backfill``, on by default): Norfair holds a new cow back until it has
    been seen ``initialization_delay`` times. Its boxes from those frames are kept, and once
    the track is confirmed they get its id in :attr:`outputs` (earlier frames change, so a
    caller drawing frames as they come must wait :attr:`lag` frames before drawing one)."""

    def __init__(self, settings: TrackerSettings, frame_size: tuple[int, int]):
        self.settings = settings
        self.tracker = make_tracker(settings, frame_size)
        self.serial = 0
        self.outputs: list[Detections] = []
        self._pending: dict[int, list[tuple[int, Detections]]] = {}

    @property
    def lag(self) -> int:
        """Frames a backfilled box can lie behind the frame that confirmed its track
        (initialisation can stretch over missed frames, so the hit counter is added)."""
        if not self.settings.backfill:
            return 0
        return self.settings.delay + self.settings.hit_counter_max + 1

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
        self.outputs.append(_with_ids(frame_dets, rows, ids))
        if settings.backfill:
            self._backfill(frame_dets, serial, active)
        return self.outputs[-1]

    def _backfill(self, frame_dets: Detections, serial: int, active) -> None:
        """Remember boxes of tracks still being confirmed; give a newly confirmed track's
        remembered boxes its id."""
        pending = self._pending
        for obj in self.tracker.tracked_objects:
            data = obj.last_detection.data
            if obj.is_initializing and data is not None and data[0] == serial:
                pending.setdefault(obj.initializing_id, []).append(
                    (serial, frame_dets[np.asarray([data[1]], np.int64)])
                )
        for obj in active:
            for earlier, box in pending.pop(obj.initializing_id, ()):
                before = self.outputs[earlier]
                merged = Detections.merge([before, Detections(
                    box.xyxy, box.scores, box.class_ids, box.class_names,
                    np.asarray([obj.id], np.int64))])  # fmt: skip
                order = np.argsort(merged.track_ids, kind="stable")
                self.outputs[earlier] = merged[order]
        alive = {obj.initializing_id for obj in self.tracker.tracked_objects}
        for gone in [k for k in pending if k not in alive]:  # died before confirmation
            del pending[gone]


class ByteTrackOnline:
    """ByteTrack (supervision's ``sv.ByteTrack``) one frame at a time, the same interface as
    :class:`OnlineTracker`. ByteTrack predicts each track's box with a Kalman filter and
    matches by overlap; a frame's output is the detector's boxes it linked (not its
    predictions), with ids from 1."""

    def __init__(self, settings: TrackerSettings, frame_size: tuple[int, int]):
        import supervision as sv

        self.settings = settings
        self.sv = sv
        # frame_rate 30 makes ByteTrack's buffer count processed frames, as Norfair's does
        with warnings.catch_warnings():  # "deprecated since 0.28": its successor, roboflow
            warnings.simplefilter("ignore", FutureWarning)  # `trackers`, needs numpy 2
            self.tracker = sv.ByteTrack(
                track_activation_threshold=settings.bytetrack_activation,
                lost_track_buffer=settings.bytetrack_lost_buffer,
                minimum_matching_threshold=settings.bytetrack_match,
                frame_rate=30,
                minimum_consecutive_frames=settings.bytetrack_min_frames,
            )
        self.outputs: list[Detections] = []
        self.lag = 0

    def step(self, dets: Detections, signatures: np.ndarray, frame_number: int = 0) -> Detections:
        frame_dets = dets[trackable_mask(dets, self.settings)]
        given = self.sv.Detections(
            xyxy=frame_dets.xyxy.astype(np.float32).reshape(-1, 4),
            confidence=frame_dets.scores.astype(np.float32),
            class_id=frame_dets.class_ids.astype(int),
            data={"row": np.arange(len(frame_dets))},
        )
        out = self.tracker.update_with_detections(given)
        rows = out.data["row"].tolist() if len(out) else []
        ids = out.tracker_id.tolist() if len(out) else []
        self.outputs.append(_with_ids(frame_dets, rows, ids))
        return self.outputs[-1]


def _with_ids(frame_dets: Detections, rows: list[int], ids: list[int]) -> Detections:
    """Boxes ``rows`` of the frame carrying track ``ids``, sorted by id."""
    order = np.argsort(ids, kind="stable")
    chosen = frame_dets[np.asarray(rows, np.int64)[order]]
    return Detections(chosen.xyxy, chosen.scores, chosen.class_ids, chosen.class_names,
                      np.asarray(ids, np.int64)[order])  # fmt: skip


def online_tracker(settings: TrackerSettings, frame_size: tuple[int, int]):
    """The frame-at-a-time tracker of ``settings.family``."""
    if settings.family == "bytetrack":
        return ByteTrackOnline(settings, frame_size)
    return OnlineTracker(settings, frame_size)


def track(found: VideoDetections, settings: TrackerSettings | None = None) -> Tracks:
    """Link the boxes of every processed frame into tracks (Norfair or ByteTrack, ids from 1)."""
    settings = settings or TrackerSettings()
    online = online_tracker(settings, found.meta.size)
    for dets, signatures, number in zip(found.detections, found.signatures, found.frame_numbers):
        online.step(dets, signatures, int(number))
    return Tracks(
        frame_numbers=found.frame_numbers,
        times=found.times,
        detections=online.outputs,
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
