"""Streamlit helpers for the Track page: the video source, settings widgets with plain-words
help, and the cached steps (detections per model on disk and in memory, tracks, renders)."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from cowdemo.datasets.synthetic import make_video_frames, mot_rows
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.tracking import MotSequence, read_mot
from cowdemo.files import atomic_write_bytes
from cowdemo.tracking import (
    DISTANCES,
    HELP,
    METRIC_HELP,
    DetectionCache,
    Progress,
    TrackerSettings,
    TrackingReport,
    Tracks,
    VideoDetections,
    VideoSettings,
    detect_video,
    draw_tracked,
    model_identity,
    rendered_video,
    track,
)
from cowdemo.tracking.detection import data_dir
from cowdemo.tracking.render import scaled
from cowdemo.video import frame_at, write_video

#: The synthetic sample: seed, frames, size. Cows 1 and 2 cross half way through.
SAMPLE = {"seed": 0, "n_frames": 60, "width": 320, "height": 240}
MAX_SIDES = (None, 1920, 1280, 960, 640, 480)


@dataclass(frozen=True)
class VideoChoice:
    """The video the page works on: a file on disk, its hash, and ground truth if any."""

    name: str
    path: Path
    sha256: str
    gt: MotSequence | None = None
    gt_source: str = ""


def videos_dir() -> Path:
    return data_dir() / "cache" / "videos"


@st.cache_resource(show_spinner="Making the synthetic sample video…")
def _sample(folder: str) -> tuple[Path, str, MotSequence]:
    video = make_video_frames(**SAMPLE)
    path = Path(folder) / "synthetic-sample-seed0.mp4"
    if not path.is_file():
        write_video(path, video.frames, video.fps)
    rows = np.asarray(mot_rows(video), dtype=np.float64)
    gt = MotSequence(rows[:, 0], rows[:, 1], rows[:, 2:6], name="synthetic sample")
    return path, _sha256(path.read_bytes()), gt


def sample_video() -> VideoChoice:
    """The synthetic clip (3 cows, two crossing) with the generator's exact tracks as truth."""
    path, digest, gt = _sample(str(videos_dir()))
    return VideoChoice(path.name, path, digest, gt, "the generator's exact tracks")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_upload(upload) -> VideoChoice:
    """An uploaded video saved once under its content hash (decoding needs a file and the
    render pass reads it again)."""
    remembered = st.session_state.get("_track_upload")
    if remembered and remembered[0] == upload.file_id:
        return remembered[1]
    data = upload.getvalue()
    if not data:
        raise CowdemoError(f"{upload.name} is empty (0 bytes): upload an MP4, MOV, AVI, MKV or "
                           "WebM video.")  # fmt: skip
    digest = _sha256(data)
    suffix = Path(upload.name).suffix.lower() or ".bin"
    path = videos_dir() / f"{digest}{suffix}"
    if not path.is_file():
        atomic_write_bytes(path, data)
    choice = VideoChoice(upload.name, path, digest)
    st.session_state["_track_upload"] = (upload.file_id, choice)
    return choice


def ground_truth(upload) -> MotSequence:
    """MOTChallenge ground truth from an uploaded gt.txt (one clear error if malformed)."""
    data = io.BytesIO(upload.getvalue())
    data.name = upload.name  # messages name the file: "gt.txt line 3: ..."
    return read_mot(data, name=upload.name)


# --- settings widgets -----------------------------------------------------------------------
def video_settings_form(key: str = "track") -> VideoSettings:
    """Stride, maximum resolution and maximum frames, with their help."""
    left, middle, right = st.columns(3)
    stride = left.slider("Frame stride", 1, 10, 1, key=f"{key}_stride", help=HELP["stride"])
    side = middle.selectbox(
        "Maximum resolution", MAX_SIDES, index=MAX_SIDES.index(1280), key=f"{key}_max_side",
        format_func=lambda s: "original" if s is None else f"{s} px (longer side)",
        help=HELP["max_side"],
    )  # fmt: skip
    frames = right.number_input("Maximum frames (0 = all)", 0, 1_000_000, 0, step=50,
                                key=f"{key}_max_frames", help=HELP["max_frames"])  # fmt: skip
    return VideoSettings(int(stride), side, int(frames) or None)


def tracker_settings_form(
    key: str, score_threshold: float, classes: tuple[str, ...] | None, label: str = ""
) -> TrackerSettings:
    """Norfair's settings as widgets (score threshold and classes come from the sidebar)."""
    names = list(DISTANCES)
    distance = st.selectbox(
        "Distance", names, key=f"{key}_distance", help=HELP["distance"],
        format_func=lambda n: f"{n} ({DISTANCES[n].unit})",
    )  # fmt: skip
    spec = DISTANCES[distance]
    st.caption(spec.help + (" Computed pair by pair: slower with many cows." if spec.scalar
                            else ""))  # fmt: skip
    threshold = st.number_input(
        f"Distance threshold ({spec.unit})", min_value=spec.step,
        max_value=spec.max_threshold, value=spec.default_threshold, step=spec.step,
        key=f"{key}_threshold_{distance}", help=HELP["distance_threshold"],
    )  # fmt: skip
    left, right = st.columns(2)
    hits = left.slider("Hit counter maximum (frames)", 1, 60, 15, key=f"{key}_hits",
                       help=HELP["hit_counter_max"])  # fmt: skip
    delay = right.slider("Initialization delay (frames)", 0, hits - 1, hits // 2,
                         key=f"{key}_delay_{hits}", help=HELP["initialization_delay"])  # fmt: skip
    aware = st.toggle("Only link boxes of the same class", False, key=f"{key}_class_aware",
                      help=HELP["class_aware"])  # fmt: skip
    reid = st.toggle("Re-identification (coat colours)", False, key=f"{key}_reid",
                     help=HELP["reid"])  # fmt: skip
    reid_threshold, reid_memory = 0.15, 50
    if reid:
        left, right = st.columns(2)
        reid_threshold = left.slider("Re-id threshold", 0.05, 1.0, 0.15, 0.05,
                                     key=f"{key}_reid_threshold",
                                     help=HELP["reid_distance_threshold"])  # fmt: skip
        reid_memory = right.slider("Re-id memory (frames)", 1, 300, 50, key=f"{key}_reid_memory",
                                   help=HELP["reid_hit_counter_max"])  # fmt: skip
    return TrackerSettings(
        distance=distance, distance_threshold=float(threshold), hit_counter_max=int(hits),
        initialization_delay=int(delay), reid=reid, reid_distance_threshold=float(reid_threshold),
        reid_hit_counter_max=int(reid_memory), score_threshold=score_threshold, classes=classes,
        class_aware=aware, label=label,
    )  # fmt: skip


# --- cached steps ---------------------------------------------------------------------------
def progress_bar(stage: str) -> tuple[Callable[[Progress], None], Callable[[], None]]:
    """A Streamlit progress bar fed by :class:`Progress` (frames, fps, time left)."""
    bar = st.progress(0.0, text=f"{stage}…")

    def update(progress: Progress) -> None:
        bar.progress(progress.fraction, text=f"{stage} · {progress.text}")

    return update, bar.empty


@st.cache_resource(show_spinner=False)
def _memory() -> OrderedDict:
    """Detection passes kept in memory across reruns and sessions (the disk cache holds all)."""
    return OrderedDict()


MEMORY_ENTRIES = 8


def detections(
    video: VideoChoice, model: str, settings: VideoSettings, device: str
) -> VideoDetections:
    """The model's detections on every processed frame: from memory, the disk cache, or a
    detection pass with a progress bar (frames, fps, time left)."""
    from cowdemo.models.weights import checkpoints_dir
    from cowdemo.ui.common import detector

    identity = model_identity(model, checkpoints_dir())
    key = (video.sha256, identity, json.dumps(settings.to_dict(), sort_keys=True), device)
    memory = _memory()
    if key in memory:
        memory.move_to_end(key)
        return memory[key]

    update, done = progress_bar(f"Detecting with {model}")
    try:
        found = detect_video(
            video.path, model, settings, cache=DetectionCache(), device=device,
            progress=update, name=video.name, video_sha256=video.sha256,
            identity=identity, loaded=lambda: detector(model, device),
        )  # fmt: skip
    finally:
        done()
    memory[key] = found
    while len(memory) > MEMORY_ENTRIES:
        memory.popitem(last=False)
    return found


@st.cache_resource(show_spinner=False, max_entries=32)
def _tracks(found_key: str, settings_json: str, _found: VideoDetections,
            _settings: TrackerSettings) -> Tracks:  # fmt: skip
    return track(_found, _settings)


def tracks(found: VideoDetections, settings: TrackerSettings) -> Tracks:
    """Norfair on cached detections: re-tuning never re-runs the model."""
    settings_json = json.dumps(settings.to_dict(), sort_keys=True)
    result = _tracks(found.key, settings_json, found, settings)
    if result.settings.label != settings.label:  # same settings, another name
        result = Tracks(result.frame_numbers, result.times, result.detections, settings,
                        result.meta, result.model)  # fmt: skip
    return result


def rendered(video: VideoChoice, found: VideoDetections, tracked: Tracks, label: str) -> Path:
    """The tracked video (H.264), rendered once per detections and settings."""
    update, done = progress_bar(f"Rendering {label}")
    try:
        return rendered_video(video.path, found, tracked, progress=update, name=video.name)
    finally:
        done()


@st.cache_data(show_spinner=False, max_entries=64)
def _frame(path: str, time_s: float, max_side: int | None) -> np.ndarray:
    return frame_at(path, time_s, max_side)


def annotated_frame(video: VideoChoice, tracked: Tracks, index: int) -> np.ndarray:
    """Processed frame ``index`` with its tracked boxes, at the size the detector saw."""
    meta = tracked.meta
    scaled_down = (meta.processed_width, meta.processed_height) != (meta.width, meta.height)
    side = max(meta.processed_width, meta.processed_height) if scaled_down else None
    image = _frame(str(video.path), float(tracked.times[index]), side)
    sx, sy = image.shape[1] / meta.width, image.shape[0] / meta.height
    return draw_tracked(image, scaled(tracked.detections[index], sx, sy))


# --- tables ---------------------------------------------------------------------------------
def stats_table(reports: list[TrackingReport]) -> pd.DataFrame:
    """One row per metric, one column per run, and what the metric means."""
    names: list[str] = []
    for report in reports:
        names += [n for n in report.metrics() if n not in names]
    data = {"metric": names}
    for report in reports:
        values = report.metrics()
        data[report.label] = [_cell(values.get(n)) for n in names]
    data["meaning"] = [METRIC_HELP.get(n, "") for n in names]
    return pd.DataFrame(data)


def slug(label: str) -> str:
    """A file-name-safe version of a run label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "run"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.3f}"
    return str(value)


def events_table(report: TrackingReport) -> pd.DataFrame:
    rows = [{"frame": e.frame, "what": e.text} for e in report.events()]
    return pd.DataFrame(rows, columns=["frame", "what"])


def remember_run(
    report: TrackingReport,
    found: VideoDetections,
    settings: TrackerSettings,
    video_settings: VideoSettings,
    with_gt: bool,
    device: str,
) -> int:
    """Store this tracking run in the run history once per session and inputs (the page
    re-tracks on every settings change; each distinct setting is one run); its run id."""
    from cowdemo.runs import canonical_json
    from cowdemo.tracking.history import record_tracking_run

    config = {"tracker": settings.to_dict(), "video": video_settings.to_dict(), "gt": with_gt}
    key = f"{found.key}|{canonical_json(config)}"
    done = st.session_state.setdefault("_tracking_run_ids", {})
    if key not in done:
        done[key] = record_tracking_run(report, found, config, device=device)
    return done[key]


def send_frames(video: VideoChoice, runs, reports, found, cfg) -> None:
    """Send frames of this video to a dataset, switches first (cowdemo/ui/add_frames.py)."""
    from cowdemo.ui.add_frames import frames_panel

    frames_panel(video, runs, reports, found, cfg)
