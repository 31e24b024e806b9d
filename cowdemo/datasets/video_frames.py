"""Frames of a video into a dataset, to label: every n-th frame, listed frames, or the frames
around the places a tracker broke (id switches against ground truth, suspected switches, track
breaks), optionally pre-annotated with a model's or the tracker's boxes, and marked not done::

    report = run_tracking("cows.mp4", "frcnn-r50-fpn-coco").report
    plan = frames_at_switches(report)               # switch frames and their neighbours first
    result = add_frames(DatasetStore(), "herd", "cows.mp4", plan, boxes=tracker_boxes(report))
    result.image_ids, result.boxes

Each image added this way remembers where it came from (``image["video"]``: the video's name,
the frame, and the nearest switch or break with its distance in frames), so the "annotate
next" queue (:mod:`cowdemo.annotation_queue`) can put frames near a switch first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cowdemo import images as image_io
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError

if TYPE_CHECKING:
    from cowdemo.datasets.store import DatasetStore
    from cowdemo.tracking.stats import TrackingReport

Box = tuple[str, list[float]]
#: Frames either side of a switch that are offered with it (in processed frames).
AROUND = 2
#: At most this many frames are added in one go (a dataset of a whole video helps nobody).
MAX_FRAMES = 500


@dataclass(frozen=True)
class BreakPoint:
    """A place where the tracker broke: an id switch, a suspected one, or a track break."""

    frame: int
    kind: str  # "switch" | "suspected" | "break"
    text: str


@dataclass
class FramePlan:
    """Frames to add, in the order they are offered, each with why it was chosen."""

    frames: list[int]
    reasons: dict[int, str] = field(default_factory=dict)
    nearest: dict[int, tuple[int, BreakPoint]] = field(default_factory=dict)  # distance, where

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class AddFramesResult:
    dataset: str
    frames: list[int]
    image_ids: list[int]
    added: int  # new images (the others were already in the dataset)
    boxes: int  # boxes pre-annotated

    def message(self) -> str:
        known = len(self.image_ids) - self.added
        text = (f"Added {self.added} frame(s) of the video to {self.dataset} as images not done"
                + (f" ({known} already in it)" if known else ""))
        return text + (f", with {self.boxes} box(es) to correct." if self.boxes else
                       ", without boxes.")


# --- which frames -------------------------------------------------------------------------------
def break_points(report: TrackingReport) -> list[BreakPoint]:
    """Id switches (with ground truth) or suspected switches, and track breaks: a track that
    ends before the last processed frame (the cow was lost; often a switch's other half)."""
    points = [BreakPoint(e.frame, e.kind, e.text) for e in report.events()]
    tracks = report.tracks
    if len(tracks):
        last = int(tracks.frame_numbers[-1])
        taken = {p.frame for p in points}
        for row in report.lifetimes():
            end = row["last frame"]
            if end < last and end not in taken:
                points.append(BreakPoint(end, "break", f"frame {end}: track {row['track']} is "
                                                       "lost (its last box)"))
    return sorted(points, key=lambda p: (p.frame, p.kind))


def frames_at_switches(report: TrackingReport, around: int = AROUND,
                       include_breaks: bool = True) -> FramePlan:
    """The processed frames at and around each switch (``around`` processed frames either side),
    switches first (real ones, then suspected), then track breaks; each frame once."""
    points = break_points(report)
    if not include_breaks:
        points = [p for p in points if p.kind != "break"]
    order = {"switch": 0, "suspected": 1, "break": 2}
    numbers = [int(n) for n in report.tracks.frame_numbers]
    plan = FramePlan([])
    for point in sorted(points, key=lambda p: (order[p.kind], p.frame)):
        if not numbers:
            break
        centre = min(range(len(numbers)), key=lambda i: abs(numbers[i] - point.frame))
        for index in sorted(range(max(0, centre - around), min(len(numbers), centre + around + 1)),
                            key=lambda i: abs(i - centre)):
            frame = numbers[index]
            if frame not in plan.reasons:
                plan.frames.append(frame)
                plan.reasons[frame] = point.text
    _add_nearest(plan, points, numbers)
    return plan


def every_nth(frame_numbers: Sequence[int], every: int,
              points: Sequence[BreakPoint] = ()) -> FramePlan:
    """Every ``every``-th of ``frame_numbers`` (the first one included)."""
    if not isinstance(every, int) or every < 1:
        raise CowdemoError(f"--every must be a whole number of frames, 1 or more, got {every!r}.")
    frames = [int(n) for n in frame_numbers][::every]
    plan = FramePlan(frames, {f: f"every {every} frames" for f in frames})
    _add_nearest(plan, points, list(frame_numbers))
    return plan


def listed(frames: Sequence[int], count: int, points: Sequence[BreakPoint] = (),
           frame_numbers: Sequence[int] | None = None) -> FramePlan:
    """The frames asked for by number (1-based, as the Track page and MOT files count them)."""
    wanted = list(dict.fromkeys(int(f) for f in frames))
    bad = [f for f in wanted if f < 1 or (count and f > count)]
    if bad:
        raise CowdemoError(f"Frame {bad[0]} is not in the video: frames go from 1 to {count}.")
    plan = FramePlan(wanted, {f: "asked for" for f in wanted})
    _add_nearest(plan, points, list(frame_numbers or wanted))
    return plan


def parse_frames(text: str) -> list[int]:
    """``"12,48,60-62"`` → [12, 48, 60, 61, 62]."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        first, dash, last = part.partition("-")
        try:
            if dash:
                out += list(range(int(first), int(last) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise CowdemoError(f"--frames takes frame numbers like 12,48,60-62; got {part!r}.") \
                from None
    if not out:
        raise CowdemoError("--frames needs at least one frame number, e.g. --frames 12,48.")
    return out


def _add_nearest(plan: FramePlan, points: Sequence[BreakPoint], numbers: list[int]) -> None:
    """For each planned frame, the nearest break point and its distance in processed frames."""
    if not points:
        return
    index = {n: i for i, n in enumerate(numbers)}
    for frame in plan.frames:
        def distance(point: BreakPoint, frame: int = frame) -> int:
            if frame in index and point.frame in index:
                return abs(index[frame] - index[point.frame])
            stride = max(1, numbers[1] - numbers[0]) if len(numbers) > 1 else 1
            return abs(frame - point.frame) // stride
        best = min(points, key=distance)
        plan.nearest[frame] = (distance(best), best)


# --- which boxes --------------------------------------------------------------------------------
def tracker_boxes(tracks_or_report: Any, label_as: str | None = None) -> dict[int, list[Box]]:
    """The tracker's boxes per frame number (what the Track page draws), as (class, xyxy)."""
    tracks = getattr(tracks_or_report, "tracks", tracks_or_report)
    return {int(n): _as_boxes(d, label_as) for n, d in zip(tracks.frame_numbers, tracks.detections)}


def detection_boxes(found: Any, score_threshold: float, classes: Sequence[str] | None,
                    label_as: str | None = None) -> dict[int, list[Box]]:
    """A detection pass's boxes per frame number (cached: the model does not run again), at the
    score threshold, in the class filter (None: all)."""
    return {int(n): _as_boxes(d.filter(score_threshold, classes=classes), label_as)
            for n, d in zip(found.frame_numbers, found.detections)}


def model_boxes(detector: Any, score_threshold: float, classes: Sequence[str] | None,
                label_as: str | None = None) -> Callable[[int, np.ndarray], list[Box]]:
    """A function giving a loaded detector's boxes on a frame."""
    def boxes(frame: int, image: np.ndarray) -> list[Box]:
        return _as_boxes(detector.predict(image).filter(score_threshold, classes=classes),
                         label_as)
    return boxes


def _as_boxes(dets: Detections, label_as: str | None) -> list[Box]:
    return [(label_as or str(c), [round(float(v), 3) for v in xyxy])
            for c, xyxy in zip(dets.class_names, dets.xyxy)]


# --- adding -------------------------------------------------------------------------------------
def read_frames(video: str | os.PathLike, frames: Sequence[int],
                name: str | None = None) -> dict[int, np.ndarray]:
    """The frames (1-based numbers) of a video at its full size, decoded in one pass."""
    from cowdemo.video import VideoReader

    wanted = set(int(f) for f in frames)
    out: dict[int, np.ndarray] = {}
    last = max(wanted, default=0)
    reader = VideoReader(video, 1, None, last or None, name)
    for frame in reader:
        if frame.number in wanted:
            out[frame.number] = frame.image
        if frame.number >= last:
            break
    missing = sorted(wanted - set(out))
    if missing:
        raise CowdemoError(f"Frame {missing[0]} is not in {name or Path(video).name}: it has "
                           f"{reader.decoded} frames.")
    return out


def add_frames(store: DatasetStore, dataset: str, video: str | os.PathLike, plan: FramePlan,
               boxes: Mapping[int, list[Box]] | Callable[[int, np.ndarray], list[Box]] | None
               = None, *, video_name: str | None = None, create_classes: Sequence[str] = ("cow",),
               progress: Callable[[int, int], None] | None = None) -> AddFramesResult:
    """Add the planned frames of ``video`` to ``dataset`` (created with ``create_classes`` when
    it does not exist) as PNG images, not done, with ``boxes`` (per frame number, or a function
    of the frame) merged into what they have; boxes of classes the dataset lacks are an error
    before anything is added."""
    from cowdemo.annotation import clip_to_image, merge_boxes

    if not len(plan):
        raise CowdemoError("No frames to add: none was chosen, or the tracker found no switch "
                           "or track break; choose every n-th frame (--every N) or list frames "
                           "(--frames 12,48).")
    if len(plan) > MAX_FRAMES:
        raise CowdemoError(f"{len(plan)} frames is too many to label at once (at most "
                           f"{MAX_FRAMES}): use a larger --every or fewer --frames.")
    label = video_name or Path(video).name
    stem = Path(label).stem
    decoded = read_frames(video, plan.frames, label)
    per_frame = {}
    for done, frame in enumerate(plan.frames, start=1):
        image = decoded[frame]
        found = boxes(frame, image) if callable(boxes) else list((boxes or {}).get(frame, []))
        per_frame[frame] = clip_to_image(found, image.shape[1], image.shape[0])
        if progress is not None:
            progress(done, len(plan))
    if not store.exists(dataset):
        store.create(dataset, create_classes)
    classes = store.get(dataset).classes
    unknown = sorted({c for found in per_frame.values() for c, _ in found} - set(classes))
    if unknown:
        raise CowdemoError(
            f"The boxes have class {', '.join(repr(u) for u in unknown)}, which dataset {dataset} "
            f"does not have ({', '.join(classes)}): label them as one of its classes "
            "(--label-as), or add the class.")
    files, infos = [], []
    for frame in plan.frames:
        files.append((f"{stem}-frame{frame:06d}.png", image_io.encode_png(decoded[frame])))
        info: dict[str, Any] = {"name": label, "frame": frame, "reason": plan.reasons.get(frame)}
        if frame in plan.nearest:
            distance, point = plan.nearest[frame]
            info["nearest_break"] = {"frame": point.frame, "kind": point.kind,
                                     "distance": distance, "text": point.text}
        infos.append({"video": info})
    before = set(store.get(dataset).image_ids)
    ids = store.add_images(dataset, files, extra=infos)
    total = 0
    for frame, image_id in zip(plan.frames, ids):
        if not per_frame[frame]:
            continue
        merged, added = merge_boxes(store.boxes(dataset, image_id), per_frame[frame])
        if added:
            store.set_boxes(dataset, image_id, merged)
            total += added
    return AddFramesResult(dataset, list(plan.frames), ids,
                           len([i for i in dict.fromkeys(ids) if i not in before]), total)
