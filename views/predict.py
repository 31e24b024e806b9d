"""Predict: upload images (or use samples), see model A and model B side by side."""

import json

import pandas as pd
import streamlit as st

from cowdemo import images
from cowdemo.datasets.synthetic import make_scene
from cowdemo.draw import draw_detections
from cowdemo.errors import CowdemoError
from cowdemo.ui.common import detector, predict, resolved_device, show_error, sidebar

cfg = sidebar()
st.title("🔍 Predict")
if not cfg.models:
    st.warning("No model is ready: the Home page lists the models and how to get their weights.")
    st.stop()


@st.cache_data(show_spinner=False)
def sample_images(n: int = 3) -> list[tuple[str, bytes]]:
    return [(f"sample-{i + 1}.png", images.encode_png(make_scene(seed=i).image)) for i in range(n)]


uploads = st.file_uploader(
    "Images (JPEG, PNG, WebP): drag and drop one or many",
    type=["jpg", "jpeg", "png", "webp"],
    accept_multiple_files=True,
)
use_samples = st.toggle("Use the synthetic sample images", value=not uploads)
files: list[tuple[str, bytes]] = [(u.name, u.getvalue()) for u in uploads or []]
if use_samples:
    files += sample_images()
device = resolved_device(cfg.device)
if not files:
    st.info("Upload an image, or switch on the sample images.")
    # Load the models now, while the user picks a file, so the first upload shows boxes sooner.
    for model in cfg.models:
        try:
            detector(model, device)
        except CowdemoError as exc:
            show_error(exc, model)
    st.stop()

filter_text = "all classes" if cfg.classes is None else ", ".join(cfg.classes)
st.caption(
    f"Score ≥ {cfg.score_threshold:.2f} · classes: {filter_text} · device: {device}. "
    "Change them in the sidebar."
)

progress = st.progress(0.0, text="Detecting…")
results = []  # (name, rgb, {model: (shown, hidden)})
for index, (name, data) in enumerate(files):
    try:
        rgb = images.load(data, name=name)
    except CowdemoError as exc:
        show_error(exc)
        continue
    digest = images.content_hash(data)
    per_model = {}
    for model in cfg.models:
        progress.progress(index / len(files), text=f"{model} on {name}")
        try:
            raw = predict(digest, model, device, rgb)
        except CowdemoError as exc:
            show_error(exc, model)
            continue
        per_model[model] = raw.filter(cfg.score_threshold).split(cfg.classes)
    results.append((name, rgb, per_model))
progress.empty()

coco = {model: [] for model in cfg.models}
for image_id, (name, rgb, per_model) in enumerate(results, start=1):
    st.subheader(name)
    columns = st.columns(len(cfg.models))
    for column, model in zip(columns, cfg.models):
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

if results:
    st.divider()
    download_columns = st.columns(len(cfg.models))
    for column, model in zip(download_columns, cfg.models):
        column.download_button(
            f"COCO results JSON ({model})",
            json.dumps(coco[model], indent=1),
            file_name=f"predictions-{model}.json",
            mime="application/json",
            key=f"coco-{model}",
        )
