"""Home: the loop in a few lines, and what is ready (models, device, data)."""

import pandas as pd
import streamlit as st

from cowdemo.datasets.store import DatasetStore, data_dir
from cowdemo.devices import describe_device
from cowdemo.errors import CowdemoError
from cowdemo.models.weights import checkpoints_dir
from cowdemo.runs import RunStore
from cowdemo.ui.common import registry, resolved_device, show_error, sidebar

cfg = sidebar()
st.title("🐄 cowdemo")
st.markdown(
    "Show, measure and improve an object detector and tracker, on cows. The loop:\n"
    "1. **Predict**: upload photos and see a COCO-pretrained Faster R-CNN's boxes "
    "(it calls cows *dog*).\n"
    "2. **Annotate** ground truth, 3. **Evaluate** with COCO mAP, 4. **Fine-tune** a cows-only "
    "detector, 5. **Track** cows through a video, 6. **Compare** pretrained vs fine-tuned "
    "and catch regressions."
)
st.page_link("views/predict.py", label="Start with Predict", icon="🔍")

specs = registry()
ready = [s for s in specs if s.status == "ready"]
col_models, col_device, col_data, col_runs = st.columns(4)
col_models.metric("Models ready", f"{len(ready)} of {len(specs)}")
col_device.metric("Device", describe_device(resolved_device(cfg.device)))
try:
    datasets = DatasetStore().list()
    runs = RunStore().count()
except CowdemoError as exc:
    datasets, runs = [], 0
    show_error(exc)
col_data.metric("Datasets", len(datasets), help=f"in {data_dir()}; the synthetic sample "
                "dataset is created on first use")
col_runs.metric("Runs stored", runs)

st.subheader("Models")
st.dataframe(
    pd.DataFrame(
        [
            {"model": s.name, "status": s.status, "what": s.description, "how to get it": s.reason}
            for s in specs
        ]
    ),
    hide_index=True,
    width="stretch",
)
if datasets:
    st.subheader("Datasets")
    st.dataframe(
        pd.DataFrame([{"dataset": d.name, "images": d.num_images, "boxes": d.num_boxes,
                       "classes": ", ".join(d.classes), "progress": d.progress}
                      for d in datasets]),
        hide_index=True, width="stretch",
    )  # fmt: skip
if not ready:
    st.warning(
        f"No model is ready yet. Put weights in `{checkpoints_dir()}` as the table says "
        "(with a network they download on first use), or place a YOLOX `.onnx` export there."
    )
