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
    FAMILIES,
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
    tracking_report,
)
from cowdemo.tracking.detection import data_dir
from cowdemo.tracking.pipeline import render_key
from cowdemo.tracking.render import scaled
from cowdemo.tracking.tune import OBJECTIVES, TuneResult, tune_tracker
from cowdemo.video import frame_at, output_suffix, write_video

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
    """The tracker's settings as widgets (score threshold and classes come from the sidebar):
    the family (Norfair or ByteTrack), then that family's settings, each with its help.
    Settings queued by :func:`queue_settings` (auto-tune's "apply") fill the widgets first."""
    _apply_queued(key)
    family = st.radio("Tracker", list(FAMILIES), horizontal=True, key=f"{key}_family",
                      format_func=lambda f: FAMILY_NAMES[f], help=HELP["family"])  # fmt: skip
    st.caption(FAMILIES[family])
    if family == "bytetrack":
        return _bytetrack_form(key, score_threshold, classes, label)
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
    backfill = st.toggle("Backfill first frames (give a new track's first boxes its id)", True,
                         key=f"{key}_backfill", help=HELP["backfill"])  # fmt: skip
    aware = st.toggle("Only link boxes of the same class", False, key=f"{key}_class_aware",
                      help=HELP["class_aware"])  # fmt: skip
    reid = st.toggle("Re-identification (coat colours)", False, key=f"{key}_reid",
                     help=HELP["reid"])  # fmt: skip
    reid_threshold, reid_memory = 0.15, 50
    if reid:
        left, right = st.columns(2)
        reid_threshold = left.slider("Re-id threshold", 0.05, 1.0, 0.15, 0.01,
                                     key=f"{key}_reid_threshold",
                                     help=HELP["reid_distance_threshold"])  # fmt: skip
        reid_memory = right.slider("Re-id memory (frames)", 1, 300, 50, key=f"{key}_reid_memory",
                                   help=HELP["reid_hit_counter_max"])  # fmt: skip
    return TrackerSettings(
        distance=distance, distance_threshold=float(threshold), hit_counter_max=int(hits),
        initialization_delay=int(delay), reid=reid, reid_distance_threshold=float(reid_threshold),
        reid_hit_counter_max=int(reid_memory), score_threshold=score_threshold, classes=classes,
        class_aware=aware, backfill=backfill, label=label,
    )  # fmt: skip


FAMILY_NAMES = {"norfair": "Norfair", "bytetrack": "ByteTrack"}


def _bytetrack_form(
    key: str, score_threshold: float, classes: tuple[str, ...] | None, label: str
) -> TrackerSettings:
    left, right = st.columns(2)
    activation = left.slider("Activation threshold (score)", 0.05, 0.9, 0.25, 0.01,
                             key=f"{key}_bt_activation",
                             help=HELP["bytetrack_activation"])  # fmt: skip
    match = right.slider("Matching threshold (1 - overlap)", 0.3, 0.99, 0.8, 0.01,
                         key=f"{key}_bt_match", help=HELP["bytetrack_match"])  # fmt: skip
    left, right = st.columns(2)
    lost = left.slider("Lost-track memory (frames)", 1, 90, 30, key=f"{key}_bt_lost",
                       help=HELP["bytetrack_lost_buffer"])  # fmt: skip
    frames = right.slider("Frames before an id", 1, 5, 1, key=f"{key}_bt_min_frames",
                          help=HELP["bytetrack_min_frames"])  # fmt: skip
    st.caption("ByteTrack sees the boxes at or above the sidebar's score threshold; a cow "
               "appearing after the first frame gets its id from its second box.")
    return TrackerSettings(
        family="bytetrack", bytetrack_activation=float(activation),
        bytetrack_match=float(match), bytetrack_lost_buffer=int(lost),
        bytetrack_min_frames=int(frames), score_threshold=score_threshold, classes=classes,
        label=label,
    )  # fmt: skip


def queue_settings(key: str, settings: TrackerSettings) -> None:
    """Fill tracker form ``key`` with ``settings`` on the next run (call st.rerun after):
    widget values can only be set before the widgets are drawn."""
    st.session_state[f"_{key}_queued"] = settings


def _apply_queued(key: str) -> None:
    settings: TrackerSettings | None = st.session_state.pop(f"_{key}_queued", None)
    if settings is None:
        return
    state = st.session_state
    state[f"{key}_family"] = settings.family
    if settings.family == "bytetrack":
        state[f"{key}_bt_activation"] = float(settings.bytetrack_activation)
        state[f"{key}_bt_match"] = float(settings.bytetrack_match)
        state[f"{key}_bt_lost"] = min(90, int(settings.bytetrack_lost_buffer))
        state[f"{key}_bt_min_frames"] = min(5, int(settings.bytetrack_min_frames))
        return
    state[f"{key}_distance"] = settings.distance
    state[f"{key}_threshold_{settings.distance}"] = float(settings.distance_threshold)
    hits = min(60, int(settings.hit_counter_max))
    state[f"{key}_hits"] = hits
    state[f"{key}_delay_{hits}"] = min(hits - 1, settings.delay)
    state[f"{key}_backfill"] = settings.backfill
    state[f"{key}_class_aware"] = settings.class_aware
    state[f"{key}_reid"] = settings.reid
    if settings.reid:
        state[f"{key}_reid_threshold"] = float(settings.reid_distance_threshold)
        state[f"{key}_reid_memory"] = min(300, int(settings.reid_hit_counter_max))


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


@st.cache_resource(show_spinner=False, max_entries=32)
def _report(found_key: str, settings_json: str, truth_key: str, _tracks: Tracks,
            _gt: MotSequence | None) -> TrackingReport:  # fmt: skip
    return tracking_report(_tracks, _gt)


def report(found: VideoDetections, tracked: Tracks, gt: MotSequence | None) -> TrackingReport:
    """The stats of ``tracked``, computed once per detections, settings and ground truth (the
    page reruns on every click: moving the frame slider recomputes nothing)."""
    settings_json = json.dumps(tracked.settings.to_dict(), sort_keys=True)
    truth_key = "" if gt is None else _sha256(
        gt.frames.tobytes() + gt.ids.tobytes() + gt.tlwh.tobytes() + gt.confidences.tobytes())
    result = _report(found.key, settings_json, truth_key, tracked, gt)
    if result.tracks is not tracked:  # same settings under another label
        result = TrackingReport(tracked, result.summary, result.suspected, result.result,
                                list(result.notes))  # fmt: skip
    return result


@st.cache_data(show_spinner=False, max_entries=32)
def _texts(found_key: str, settings_json: str, _tracks: Tracks) -> tuple[str, str]:
    return _tracks.mot_text(), _tracks.csv_text()


def export_texts(found: VideoDetections, tracked: Tracks) -> tuple[str, str]:
    """(MOTChallenge text, CSV) of ``tracked``, made once per detections and settings."""
    return _texts(found.key, json.dumps(tracked.settings.to_dict(), sort_keys=True), tracked)


def cached_render(found: VideoDetections, tracked: Tracks) -> Path | None:
    """The tracked video if these detections and settings were rendered before, else None."""
    name = f"{render_key(found, tracked.settings)}{output_suffix()}"
    path = data_dir() / "cache" / "renders" / name
    return path if path.is_file() else None


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


# --- auto-tune ------------------------------------------------------------------------------
TUNE_OBJECTIVES = {"hota": "HOTA", "idf1": "IDF1", "switches": "Fewest id switches"}


def tune_panel(found: VideoDetections, base: TrackerSettings, gt: MotSequence | None,
               form_key: str) -> None:  # fmt: skip
    """"Find the best settings": Optuna over the cached detections of ``found``, a progress
    bar (trials, best so far, time left), the held-out comparison, the top trials, and
    "Apply these settings", which fills tracker form ``form_key`` and re-tracks."""
    st.caption(
        "Tries many tracker settings on the detections already computed (the model does not "
        "run again), starting from the settings in use. To avoid settings that only fit this "
        "clip, it tunes on the first part of the video and then checks the best settings on "
        "the rest, which no trial saw, next to the settings in use."
    )
    left, middle, right = st.columns(3)
    if gt is not None:
        objective = left.selectbox("Objective", list(TUNE_OBJECTIVES), key="tune_objective",
                                   format_func=TUNE_OBJECTIVES.get,
                                   help="Scored against the ground truth.")  # fmt: skip
    else:
        objective = "proxy"
        left.markdown("**Objective: proxy score** (no ground truth)")
        left.caption("Not a tracking metric: " + OBJECTIVES["proxy"] + ".")
    trials = middle.number_input("Trials", 2, 500, 30, step=10, key="tune_trials",
                                 help="How many settings to try (about 0.1 s each on a "
                                 "200-frame clip).")  # fmt: skip
    split = right.slider("Share tuned on", 0.3, 0.9, 0.6, 0.05, key="tune_split",
                         help="The first part of the video the trials are scored on; the "
                         "rest is held out to check the result.")  # fmt: skip
    families = st.multiselect("Tracker families to search", list(FAMILIES), [base.family],
                              format_func=FAMILY_NAMES.get, key="tune_families")  # fmt: skip
    context = (found.key, json.dumps(base.to_dict(), sort_keys=True), gt is not None)
    if st.button("Find the best settings", key="tune_run", disabled=not families):
        bar = st.progress(0.0, text="Tuning…")

        def update(p) -> None:
            bar.progress(p.done / p.total, text=f"Tuning · {p.text}")

        try:
            result = tune_tracker(found, base, gt=gt, objective=objective, trials=int(trials),
                                  split=float(split), families=families, progress=update)
        except CowdemoError as exc:
            bar.empty()
            st.error(str(exc))
            return
        bar.empty()
        st.session_state["_tune_result"] = (context, result)
    remembered = st.session_state.get("_tune_result")
    if not remembered or remembered[0][0] != found.key:
        return
    result: TuneResult = remembered[1]
    show_tune_result(result, form_key)


def show_tune_result(result: TuneResult, form_key: str) -> None:
    name = result.objective_name
    st.success(f"Best of {len(result.trials)} trials ({name}): {result.best.describe()}")
    st.markdown(f"**On the {result.held_out_frames} held-out frames** (tuned on the first "
                f"{result.tune_frames}; no trial saw these):")
    st.dataframe(pd.DataFrame(result.held_out_table()), hide_index=True, width="stretch")
    if result.is_proxy:
        st.caption("Tuned on a proxy score, not a tracking metric: check the video and the "
                   "suspected switches before trusting it.")
    for note in result.notes:
        st.info(note)
    st.markdown(f"**Top trials** ({name} on the tuned part)")
    st.dataframe(pd.DataFrame(result.top(5)), hide_index=True, width="stretch")
    if st.button("Apply these settings", key="tune_apply", type="primary"):
        queue_settings(form_key, result.best)
        st.rerun()
