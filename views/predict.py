"""Predict: upload images (or use samples), see model A and model B side by side."""

import json

import pandas as pd
import streamlit as st

from cowdemo import images
from cowdemo.draw import draw_detections
from cowdemo.errors import CowdemoError
from cowdemo.samples import COW_PHOTO_CREDIT, COW_PHOTO_NAME, sample_images
from cowdemo.ui.common import loaded_models, predict, resolved_device, show_error, sidebar

st.title("🔍 Predict")
cfg = sidebar()
if not cfg.models:
    st.warning("No model is ready: the Home page lists the models and how to get their weights.")
    st.stop()

samples = st.cache_data(show_spinner=False)(sample_images)
uploads = st.file_uploader(
    "Images (JPEG, PNG, WebP): drag and drop one or many",
    type=["jpg", "jpeg", "png", "webp"],
    accept_multiple_files=True,
)
use_samples = st.toggle("Use the sample images", value=not uploads,
                        help="A real cow photo when this machine has one (set-up fetches it), "
                             "and synthetic pasture scenes.")
files: list[tuple[str, bytes]] = [(u.name, u.getvalue()) for u in uploads or []]
photo_index = len(files)  # where the real photo is among the samples, when it is there
if use_samples:
    files += samples()
device = resolved_device(cfg.device)
if not files:
    st.info("Upload an image, or switch on the sample images.")
    # Load the models now, while the user picks a file, so the first upload shows boxes sooner.
    loaded_models(cfg.models, device)
    st.stop()

filter_text = "all classes" if cfg.classes is None else ", ".join(cfg.classes)
st.caption(
    f"Score ≥ {cfg.score_threshold:.2f} · classes: {filter_text} · device: {device}. "
    "Change them in the sidebar."
)

progress = st.progress(0.0, text="Loading the models…")
models = loaded_models(cfg.models, device)  # one error line for each model that cannot load
results = []  # (name, rgb, {model: (shown, hidden)}, note)
for index, (name, data) in enumerate(files if models else []):
    try:
        rgb = images.load(data, name=name)
    except CowdemoError as exc:
        show_error(exc)
        continue
    digest = images.content_hash(data)
    per_model = {}
    for model in models:
        progress.progress(index / len(files), text=f"{model} on {name}")
        try:
            raw = predict(digest, model, device, rgb)
        except CowdemoError as exc:
            show_error(exc, model)
            continue
        per_model[model] = raw.filter(cfg.score_threshold).split(cfg.classes)
    real_photo = use_samples and index == photo_index and name == COW_PHOTO_NAME
    results.append((name, rgb, per_model, f"A real photo: {COW_PHOTO_CREDIT}." if real_photo
                    else ""))
progress.empty()

coco = {model: [] for model in models}
for image_id, (name, rgb, per_model, note) in enumerate(results, start=1):
    st.subheader(name)
    if note:
        st.caption(note)
    columns = st.columns(len(models))
    for column, model in zip(columns, models):
        if model not in per_model:
            continue
        shown, hidden = per_model[model]
        coco[model] += shown.to_coco_results(image_id)
        drawn = draw_detections(rgb, shown)
        with column:
            st.image(drawn, caption=f"{model}: {shown.summary()}")
            if len(hidden):
                st.info(
                    f"{model} also sees {hidden.summary()}, hidden by the class filter "
                    "(a COCO model calls a cow *dog* more often than you would think)."
                )
            table = pd.DataFrame(shown.to_records())
            if table.empty:
                st.caption("No boxes above the threshold.")
            else:
                st.dataframe(table.round(2), hide_index=True, width="stretch")
            st.download_button(
                "Annotated PNG",
                images.encode_png(drawn),
                file_name=f"{name.rsplit('.', 1)[0]}-{model}.png",
                mime="image/png",
                key=f"png-{image_id}-{model}",
            )

worked = [m for m in models if any(m in per_model for _, _, per_model, _ in results)]
if worked:
    st.divider()
    download_columns = st.columns(len(worked))
    for column, model in zip(download_columns, worked):
        column.download_button(
            f"COCO results JSON ({model})",
            json.dumps(coco[model], indent=1),
            file_name=f"predictions-{model}.json",
            mime="application/json",
            key=f"coco-{model}",
        )
