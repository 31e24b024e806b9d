"""Track: cows through a video with Norfair or ByteTrack; id switches counted, listed and shown
on a timeline; model A vs model B, or two tracker settings, side by side; the best tracker
settings found automatically on the cached detections."""

import streamlit as st

from cowdemo.errors import CowdemoError
from cowdemo.tracking import nothing_tracked_reason
from cowdemo.tracking.timeline import clicked_frame, timeline_figure
from cowdemo.ui import report as report_ui
from cowdemo.ui import track as ui
from cowdemo.ui.common import resolved_device, show_error, sidebar
from cowdemo.video import VIDEO_EXTENSIONS

cfg = sidebar()
st.title("🎥 Track")
st.caption(
    "Detect cows in every frame, link the boxes into tracks (Norfair or ByteTrack), and see how "
    "often and where a cow changes id. Detections are cached per video and model: changing a "
    "tracker setting re-tracks in about a second (the tracked video is rendered when you ask "
    "for it)."
)
if not cfg.models:
    st.warning("No model is ready: the Home page lists the models and how to get their weights.")
    st.stop()

source, truth = st.columns([3, 2])
upload = source.file_uploader(
    "Video (MP4, MOV, AVI, MKV, WebM)", type=[e.lstrip(".") for e in VIDEO_EXTENSIONS],
    key="track_upload",
)  # fmt: skip
use_sample = source.toggle(
    "Use the synthetic sample video (3 cows, two of them cross; exact ground truth)",
    value=upload is None,
)  # fmt: skip
gt_upload = truth.file_uploader(
    "Ground truth, optional (MOTChallenge gt.txt)", type=["txt"], key="track_gt",
    help="frame,id,left,top,width,height,conf,x,y,z per line, frames from 1, pixels of the "
    "video. With it: MOTA, IDF1, HOTA and every id switch; without: track counts, lifetimes "
    "and suspected switches.",
)  # fmt: skip

if upload is None and not use_sample:
    st.info("Upload a video, or switch on the synthetic sample.")
    st.stop()
try:
    video = ui.sample_video() if use_sample else ui.stored_upload(upload)
    gt, gt_source = video.gt, video.gt_source
    if gt_upload is not None:
        gt, gt_source = ui.ground_truth(gt_upload), gt_upload.name
except CowdemoError as exc:
    show_error(exc)
    st.stop()

compare = st.radio(
    "Compare", ["Model A vs model B", "Two tracker settings"], horizontal=True,
    key="track_compare",
    help="Models: the same tracker settings on both models' detections (pretrained vs "
    "fine-tuned). Settings: model A's detections tracked two ways.",
)  # fmt: skip
with st.expander("Video: frame stride, maximum resolution, maximum frames"):
    try:
        video_settings = ui.video_settings_form()
    except CowdemoError as exc:
        show_error(exc)
        st.stop()

device = resolved_device(cfg.device)
try:
    if compare == "Model A vs model B":
        form_key = "track_a"
        with st.expander("Tracker settings", expanded=True):
            settings = ui.tracker_settings_form("track_a", cfg.score_threshold, cfg.classes)
        runs = [(m, m, settings.with_changes(label=m)) for m in cfg.models]
    else:
        model = cfg.model_a
        form_key = "track_s1"
        runs = []
        for column, (key, name) in zip(st.columns(2), (("track_s1", "settings 1"),
                                                       ("track_s2", "settings 2"))):
            with column, st.expander(f"Tracker {name}", expanded=True):
                label = f"{model} · {name}"
                runs.append((label, model, ui.tracker_settings_form(
                    key, cfg.score_threshold, cfg.classes, label)))
except CowdemoError as exc:
    show_error(exc)
    st.stop()

# Detection passes run when Track is pressed; once pressed for a video, model and video
# settings, every later change that needs no new pass (tracker settings, compare mode) applies
# at once.
needed = {(video.sha256, model, video_settings, device) for _, model, _ in runs}
approved = st.session_state.setdefault("track_approved", set())
if st.button("Track", type="primary"):
    approved |= needed
if not needed <= approved:
    st.info("Press Track. Detections already computed for this video and model come back at "
            "once; after that every tracker setting applies immediately.")
    st.stop()

found, reports, run_ids = {}, [], []
try:
    for _, model, _ in runs:
        if model not in found:
            found[model] = ui.detections(video, model, video_settings, device)
    for _, model, settings in runs:
        reports.append(ui.report(found[model], ui.tracks(found[model], settings), gt))
        run_ids.append(ui.remember_run(reports[-1], found[model], settings, video_settings,
                                       gt is not None, device))
except CowdemoError as exc:
    show_error(exc)
    st.stop()

first = next(iter(found.values()))
notes = dict.fromkeys(first.meta.notes + [n for r in reports for n in r.notes])
for note in notes:
    st.info(note)
scored = f"scored against {gt_source}" if gt is not None else "no ground truth"
st.caption(
    f"{video.name}: {first.meta.width}x{first.meta.height}, {first.meta.fps:.2f} fps, "
    f"{len(first)} frames processed (stride {first.meta.stride}), {scored}."
)

# A click on the timeline (below) reruns the page with its selection: jump there.
clicked = clicked_frame(st.session_state.get("track_timeline"))
numbers = [int(n) for n in first.frame_numbers]
if clicked is not None and clicked != st.session_state.get("_track_clicked"):
    st.session_state["_track_clicked"] = clicked
    st.session_state["track_frame"] = min(numbers, key=lambda n: abs(n - clicked))
if st.session_state.get("track_frame") not in numbers:  # open on a frame with tracked boxes
    st.session_state["track_frame"] = next(
        (numbers[i] for i in range(len(numbers)) if any(len(r.tracks.detections[i])
                                                        for r in reports)), numbers[0])
index = numbers.index(st.session_state["track_frame"])

# Videos are rendered on demand: re-tracking stays fast, stats and timeline come first.
unrendered = [r.label for (_, model, _), r in zip(runs, reports)
              if ui.cached_render(found[model], r.tracks) is None]
render_slot = st.empty()  # cleared once the videos are drawn
render_now = bool(unrendered) and render_slot.button(
    "Render the tracked video" + ("s" if len(unrendered) > 1 else ""), key="track_render",
    help="Draws boxes, ids and trails on every frame (a few seconds per video); each "
    "setting's video is rendered once and kept.",
)  # fmt: skip
# Always two columns, so a single run's video is not page-wide.
columns = st.columns(max(2, len(reports)))
for column, (_, model, _), report in zip(columns, runs, reports):
    tracked = report.tracks
    with column:
        st.subheader(report.label)
        kind = "id switches" if report.has_ground_truth else "suspected switches"
        left, right = st.columns(2)
        left.metric("Tracks", report.summary.num_tracks)
        right.metric(kind.capitalize(), report.num_switches)
        reason = nothing_tracked_reason(found[model], tracked.settings)
        if reason:
            st.warning(reason)
        slug = ui.slug(report.label)
        path = ui.cached_render(found[model], tracked)
        if path is None and render_now:
            try:
                path = ui.rendered(video, found[model], tracked, report.label)
            except CowdemoError as exc:
                show_error(exc, report.label)
        if path is not None:
            st.video(str(path), start_time=index / tracked.meta.output_fps)
        else:
            st.caption("Video not rendered yet (Render above): changing a setting only "
                       "re-tracks; the stats, timeline and frame viewer are up to date.")
        st.caption(tracked.settings.describe())
        buttons = st.columns(3)
        if path is not None:
            buttons[0].download_button("Video", path.read_bytes(), f"tracks-{slug}{path.suffix}",
                                       key=f"video-{slug}")  # fmt: skip
        mot_text, csv_text = ui.export_texts(found[model], tracked)
        buttons[1].download_button("MOT txt", mot_text, f"tracks-{slug}.txt", "text/plain",
                                   key=f"mot-{slug}")  # fmt: skip
        buttons[2].download_button("CSV", csv_text, f"tracks-{slug}.csv", "text/csv",
                                   key=f"csv-{slug}")  # fmt: skip

if render_now:
    render_slot.empty()

tuned_model = runs[0][1]
with st.expander(f"🔎 Find the best settings (auto-tune on {tuned_model}'s detections)",
                 key="track_tune_panel"):  # keyed: stays open through the page's reruns
    if compare == "Model A vs model B" and len(runs) > 1:
        st.caption("Applied settings go to the tracker settings above, used for both models.")
    elif compare != "Model A vs model B":
        st.caption("Applied settings go to tracker settings 1.")
    ui.tune_panel(found[tuned_model], runs[0][2], gt, form_key)

st.subheader("Timeline")
st.caption("Every track id over the frames; ✕ marks an id switch. Click a point to jump there.")
st.plotly_chart(timeline_figure(reports), key="track_timeline", on_select="rerun",
                selection_mode="points")  # fmt: skip

events = sorted({(e.frame, f"{r.label} · {e.text}") for r in reports for e in r.events()})
if events:
    options = ["—"] + [text for _, text in events]
    chosen = st.selectbox("Jump to a switch", options, key="track_event")
    if chosen != "—" and chosen != st.session_state.get("_track_event"):
        st.session_state["_track_event"] = chosen
        frame = next(f for f, text in events if text == chosen)
        st.session_state["track_frame"] = min(numbers, key=lambda n: abs(n - frame))
        st.rerun()
st.select_slider("Frame", numbers, key="track_frame")
for column, report in zip(st.columns(max(2, len(reports))), reports):
    try:
        image = ui.annotated_frame(video, report.tracks, index)
    except CowdemoError as exc:
        show_error(exc, report.label)
        continue
    column.image(image, caption=f"{report.label}: frame {numbers[index]}, "
                 f"{len(report.tracks.detections[index])} tracked boxes")  # fmt: skip

st.subheader("Statistics")
table = ui.stats_table(reports)
st.dataframe(table, hide_index=True, width="stretch")
st.download_button("Stats CSV", table.to_csv(index=False), "tracking-stats.csv", "text/csv")
report_ui.download_buttons(f"report-{ui.slug(video.name)}", tracking_runs=run_ids,
                           tracks=dict(zip(run_ids, reports)), video_path=video.path,
                           key="track-report")
for column, report in zip(st.columns(len(reports)), reports):
    with column:
        kind = "Id switches" if report.has_ground_truth else "Suspected switches"
        st.markdown(f"**{kind}: {report.label}**")
        switches = ui.events_table(report)
        if switches.empty:
            st.caption("None.")
        else:
            st.dataframe(switches, hide_index=True, width="stretch")
        with st.expander("Track lifetimes"):
            st.dataframe(report.lifetimes(), hide_index=True, width="stretch")

ui.send_frames(video, runs, reports, found, cfg)
