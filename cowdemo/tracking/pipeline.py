"""The whole run in one call, as the Track page and `cowdemo track` use it: detect (cached),
track, score, render::

    outcome = run_tracking("cows.mp4", "frcnn-r50-fpn-coco", gt=read_mot("gt.txt"),
                           render_to="out/tracks.mp4")
    outcome.report.metrics()["IDF1"], outcome.video

Re-running with other tracker settings reuses the cached detections (``outcome.found.cached``)
and, in the app, the rendered video of settings already seen (:func:`rendered_video`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from cowdemo.evaluation.tracking import MotSequence
from cowdemo.models.base import Detector
from cowdemo.tracking.detection import DetectionCache, VideoDetections, data_dir, detect_video
from cowdemo.tracking.progress import ProgressCallback
from cowdemo.tracking.render import TRAIL_LENGTH, TrackRenderer, render_video
from cowdemo.tracking.settings import TrackerSettings, VideoSettings
from cowdemo.tracking.stats import TrackingReport, tracking_report
from cowdemo.tracking.tracker import Tracks, online_tracker, track
from cowdemo.video import VideoSource, output_suffix


@dataclass
class TrackingOutcome:
    """Everything one run produced."""

    found: VideoDetections
    tracks: Tracks
    report: TrackingReport
    video: Path | None = None


def run_tracking(
    source: VideoSource,
    model: str | Detector,
    video_settings: VideoSettings | None = None,
    tracker_settings: TrackerSettings | None = None,
    *,
    gt: MotSequence | None = None,
    iou_threshold: float = 0.5,
    cache: DetectionCache | None = None,
    device: str = "auto",
    render_to: str | os.PathLike | None = None,
    codec: str | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
) -> TrackingOutcome:
    """Detect (or reuse the cached detections), track, score against ``gt`` when given, and
    render the tracked video to ``render_to`` when given.

    When the detector runs, tracking and rendering happen in the same pass, as detections come
    in (the trackers are causal; with backfill a frame is drawn once no later frame can give
    its boxes an id, a few frames behind): the video is decoded once and encoding overlaps
    detection. From
    cached detections, the tracks are made at once and the video decoded again to draw them.
    """
    tracker_settings = tracker_settings or TrackerSettings()
    fused: dict[str, object] = {}
    waiting: deque = deque()  # frames drawn only once backfill can no longer change them

    def on_frame(frame, dets, signatures, meta) -> None:
        if "online" not in fused:
            fused["online"] = online_tracker(tracker_settings, meta.size)
            scale = meta.processed_width / meta.width, meta.processed_height / meta.height
            fused["renderer"] = TrackRenderer(render_to, meta.output_fps, scale, codec)
        online = fused["online"]
        online.step(dets, signatures, frame.number)
        waiting.append((frame.image, len(online.outputs) - 1))
        while len(waiting) > online.lag:
            image, index = waiting.popleft()
            fused["renderer"].add(image, online.outputs[index])

    try:
        found = detect_video(
            source, model, video_settings, cache=cache, device=device, progress=progress,
            name=name, batch_size=batch_size, workers=workers,
            on_frame=on_frame if render_to is not None else None,
        )  # fmt: skip
        if "renderer" in fused:
            while waiting:
                image, index = waiting.popleft()
                fused["renderer"].add(image, fused["online"].outputs[index])
    except BaseException as exc:
        if "renderer" in fused:
            fused["renderer"].__exit__(type(exc), exc, None)
        raise
    video = None
    if "renderer" in fused:
        renderer = fused["renderer"]
        renderer.__exit__(None, None, None)
        video = renderer.path
        tracks = Tracks(found.frame_numbers, found.times, fused["online"].outputs,
                        tracker_settings, found.meta, found.model)  # fmt: skip
    else:
        tracks = track(found, tracker_settings)
        if render_to is not None:
            video = render_video(source, tracks, render_to, codec=codec, progress=progress,
                                 name=name)  # fmt: skip
    report = tracking_report(tracks, gt, iou_threshold)
    return TrackingOutcome(found, tracks, report, video)


def render_key(found: VideoDetections, settings: TrackerSettings, codec: str | None = None) -> str:
    """Identity of a rendered video: the detections, the tracker settings and the drawing."""
    payload = {"detections": found.key, "tracker": settings.to_dict(), "trail": TRAIL_LENGTH,
               "codec": codec, "format": 1}  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def rendered_video(
    source: VideoSource,
    found: VideoDetections,
    tracks: Tracks,
    folder: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
) -> Path:
    """The tracked video for these detections and settings, rendered once and kept in
    ``folder`` (default ``$COWDEMO_DATA/cache/renders``)."""
    folder = Path(folder) if folder else data_dir() / "cache" / "renders"
    path = folder / f"{render_key(found, tracks.settings)}{output_suffix()}"
    if path.is_file():
        os.utime(path)
        return path
    return render_video(source, tracks, path, progress=progress, name=name)
