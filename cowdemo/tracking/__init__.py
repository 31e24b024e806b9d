"""Tracking cows through a video: a cached, batched detection pass, Norfair (settings by name)
or ByteTrack, auto-tuning of the tracker settings on cached detections, MOT statistics with
and without ground truth, and a browser-playable rendered video.

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
from cowdemo.tracking.settings import (
    DISTANCES,
    FAMILIES,
    HELP,
    TrackerSettings,
    VideoSettings,
)
from cowdemo.tracking.stats import (
    METRIC_HELP,
    SwitchMark,
    TrackingReport,
    nothing_tracked_reason,
    tracking_report,
)
from cowdemo.tracking.tracker import Tracks, make_tracker, track
from cowdemo.tracking.tune import OBJECTIVES, TuneProgress, TuneResult, tune_tracker

__all__ = [
    "DISTANCES",
    "FAMILIES",
    "HELP",
    "METRIC_HELP",
    "OBJECTIVES",
    "DetectionCache",
    "Progress",
    "SwitchMark",
    "TrackerSettings",
    "TrackingOutcome",
    "TrackingReport",
    "Tracks",
    "TuneProgress",
    "TuneResult",
    "VideoDetections",
    "VideoMeta",
    "VideoSettings",
    "detect_video",
    "draw_tracked",
    "make_tracker",
    "model_identity",
    "nothing_tracked_reason",
    "render_video",
    "rendered_video",
    "run_tracking",
    "track",
    "tracking_report",
    "tune_tracker",
]
