"""Tracking cows through a video: a cached, batched detection pass, Norfair with settings by
name, MOT statistics with and without ground truth, and a browser-playable rendered video.

    from cowdemo.tracking import TrackerSettings, VideoSettings, run_tracking
    outcome = run_tracking("cows.mp4", "frcnn-r50-fpn-coco", VideoSettings(stride=2),
                           TrackerSettings(distance="iou", distance_threshold=0.7),
                           render_to="out/tracks.mp4")
"""

from cowdemo.tracking.detection import (
    DetectionCache,
    VideoDetections,
    VideoMeta,
    detect_video,
    model_identity,
)
from cowdemo.tracking.pipeline import TrackingOutcome, rendered_video, run_tracking
from cowdemo.tracking.progress import Progress
from cowdemo.tracking.render import draw_tracked, render_video
from cowdemo.tracking.settings import DISTANCES, HELP, TrackerSettings, VideoSettings
from cowdemo.tracking.stats import METRIC_HELP, SwitchMark, TrackingReport, tracking_report
from cowdemo.tracking.tracker import Tracks, make_tracker, track

__all__ = [
    "DISTANCES",
    "HELP",
    "METRIC_HELP",
    "DetectionCache",
    "Progress",
    "SwitchMark",
    "TrackerSettings",
    "TrackingOutcome",
    "TrackingReport",
    "Tracks",
    "VideoDetections",
    "VideoMeta",
    "VideoSettings",
    "detect_video",
    "draw_tracked",
    "make_tracker",
    "model_identity",
    "render_video",
    "rendered_video",
    "run_tracking",
    "track",
    "tracking_report",
]
