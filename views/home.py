"""Home: the loop in a few lines, and what is ready (models, device, data). The text comes first:
on a fresh server the models and torch take seconds to load, and the page says what the app
does meanwhile."""

import streamlit as st

from cowdemo.datasets.store import data_dir
from cowdemo.ui import home as page
from cowdemo.ui.common import checkpoints_dir, registry, show_error, sidebar
from cowdemo.ui.weights_upload import weights_uploader

st.title("🐄 cowdemo")
st.markdown(page.LOOP)
st.page_link("views/predict.py", label="Start with Predict", icon="🔍")

with st.spinner("Looking for models…"):
    cfg = sidebar()
    specs = registry()
ready = [s for s in specs if s.status == "ready"]
if cfg.model_a:
    st.markdown(page.ready_text(cfg, specs))

col_models, col_device, col_data, col_runs = st.columns(4)
col_models.metric("Models ready", f"{len(ready)} of {len(specs)}")
short, detail = page.device_metric(cfg.device)
col_device.metric("Device", short, help="Change it in the sidebar (auto uses a GPU when there "
                  "is one).")
col_device.caption(detail)
datasets, runs, problem = page.data_status()
if problem is not None:
    show_error(problem)
col_data.metric("Datasets", len(datasets), help=f"in {data_dir()}; the synthetic sample "
                "dataset is created on first use")
col_runs.metric("Runs stored", runs)

st.subheader("Models")
st.table(page.models_table(specs))  # a table wraps long descriptions (a dataframe cuts them)
missing = page.how_to_get(specs)
if missing:
    with st.expander(f"How to get the {len(missing)} model(s) not ready", expanded=not ready):
        st.markdown("\n".join(missing))
with st.expander("Add model weights (.pth, .pt, .onnx)", key="home_weights_panel"):
    weights_uploader("home_weights")
if datasets:
    st.subheader("Datasets")
    st.dataframe(
        [{"dataset": d.name, "images": d.num_images, "boxes": d.num_boxes,
          "classes": ", ".join(d.classes), "progress": d.progress} for d in datasets],
        hide_index=True, width="stretch",
    )  # fmt: skip
if not ready:
    st.warning(
        f"No model is ready yet. Put weights in `{checkpoints_dir()}` as the list above says "
        "(with a network they download on first use), or place a YOLOX `.onnx` export there."
    )
