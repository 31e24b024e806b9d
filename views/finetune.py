"""Fine-tune: start a training job (base model, dataset, classes, iterations, image and batch
size), watch it live (progress with ETA, loss and learning-rate curves, held-out mAP), stop or
resume it. Jobs run in their own process: reloading or closing the page never stops them, and
the page re-attaches to the running job."""

import pandas as pd
import streamlit as st

from cowdemo.errors import CowdemoError
from cowdemo.models.weights import checkpoints_dir
from cowdemo.training import charts
from cowdemo.training.config import TrainConfig
from cowdemo.training.jobs import get_job, list_jobs, start_job
from cowdemo.training.locks import busy
from cowdemo.ui import common
from cowdemo.ui.common import registry, resolved_device, show_error, sidebar
from cowdemo.ui.finetune import (
    FORM_DEFAULTS,
    NAME_KEY,
    PATH_CHOICE,
    SYNTHETIC_CHOICE,
    base_tag,
    is_yolox_spec,
    job_label,
    no_base_message,
    progress_text,
    store_datasets,
    suggest_name,
    trainable,
)
from cowdemo.ui.weights_upload import weights_uploader

cfg = sidebar()
st.title("🎯 Fine-tune")
st.caption(
    "Replace a model's box head with your classes + background, keep its backbone, and train "
    "on your data; mAP on held-out images is measured as it learns. The job runs in its own "
    "process: reload or close the page and come back, it keeps going."
)

jobs = list_jobs()
statuses = {job.id: job.status() for job in jobs}
running = [job for job in jobs if statuses[job.id]["running"]]
if "finetune_job" not in st.session_state and jobs:
    st.session_state["finetune_job"] = (running or jobs)[0].id


# --- a new job -----------------------------------------------------------------------------
def new_job_form() -> None:
    specs = {s.name: s for s in registry()}
    bases = trainable(list(specs.values()))
    if not bases:
        st.warning(no_base_message(checkpoints_dir()))
        return
    summaries = store_datasets()
    choices = [s.name for s in summaries] + [SYNTHETIC_CHOICE, PATH_CHOICE]
    device = resolved_device(cfg.device)
    left, right = st.columns(2)
    base = left.selectbox("Base model", bases,
                          index=bases.index(cfg.model_a) if cfg.model_a in bases else 0,
                          format_func=lambda name: base_tag(specs[name]),
                          help="COCO weights (Faster R-CNN or YOLOX, a YOLOX ONNX export "
                          "included) or an earlier fine-tune; its backbone is kept.")
    yolox = is_yolox_spec(specs[base])
    family = "YOLOX" if yolox else "Faster R-CNN"
    source = right.selectbox("Dataset", choices, help="Datasets made on the Annotate page (the "
                             "images marked done), generated cows, or data on disk.")
    spec, known_classes = source, ["cow"]
    if source == SYNTHETIC_CHOICE:
        spec = "synthetic:200:320x240"
    elif source == PATH_CHOICE:
        spec = right.text_input("Path or URL", placeholder="hub://activeloop/coco-train",
                                help="A dataset folder, an instances_*.json (images beside it "
                                "as in COCO's layout), a Deep Lake folder or hub:// URL.")
    else:
        summary = next(s for s in summaries if s.name == source)
        known_classes = list(summary.classes) or ["cow"]
        right.caption(f"{summary.progress}, {summary.num_boxes} boxes")
    if source == PATH_CHOICE:
        text = left.text_input("Classes", "cow", help="Comma-separated class names.")
        classes = [c.strip() for c in text.split(",") if c.strip()]
    else:
        classes = left.multiselect("Classes", known_classes,
                                   default=["cow"] if "cow" in known_classes else known_classes)
    c1, c2, c3 = st.columns(3)
    on_gpu = device.startswith("cuda")
    start_iters, start_size, start_batch = FORM_DEFAULTS[family]["gpu" if on_gpu else "cpu"]
    iterations = c1.number_input("Iterations", 1, 1_000_000, start_iters, step=50,
                                 key=f"ft-iterations-{family}")
    image_size = c2.number_input(
        "Image size", 128, 2048, start_size, step=32, key=f"ft-size-{family}",
        help="YOLOX: the side of the square input, a multiple of 32 (YOLOX-Nano: 416)."
        if yolox else "Shorter image side in pixels (COCO models: 800).")
    batch_size = c3.number_input("Batch size", 1, 64, start_batch, key=f"ft-batch-{family}",
                                 help="Images per step (use Accumulate for more on a small GPU).")
    if yolox and not on_gpu:
        st.caption("YOLOX on a CPU starts with 300 steps of 8 images at 320 pixels: a first "
                   "fine-tune takes minutes (a few seconds a step on 2 cores), with YOLOX's own "
                   "losses, flips, scale jitter and the moving average of the weights.")
    suggest_name(st.session_state, source if source not in (SYNTHETIC_CHOICE, PATH_CHOICE)
                 else "synthetic", base, classes)
    name = st.text_input("New model name", key=NAME_KEY,
                         help="It appears under this name in every model picker when the job "
                         "ends.")
    with st.expander("More settings"):
        a1, a2, a3, a4 = st.columns(4)
        optimizer = a1.selectbox("Optimizer", ["sgd", "adamw"])
        lr = a2.number_input("Learning rate (0: automatic)", 0.0, 1.0, 0.0, format="%.5f")
        warmup = a3.number_input("Warm-up iterations", 0, 100_000, min(100, int(iterations) // 10),
                                 help="The learning rate rises linearly from ~0 over these "
                                 "first iterations (default: 10% of the run, at most 100).")
        schedule = a4.selectbox("Schedule", ["cosine", "step", "constant"])
        b1, b2, b3, b4 = st.columns(4)
        eval_every = b1.number_input("Evaluate every", 0, 1_000_000, 200,
                                     help="Iterations between held-out evaluations (0: at the "
                                     "end only).")
        checkpoint_every = b2.number_input("Checkpoint every", 1, 1_000_000, 100,
                                           help="A stopped or crashed job resumes from here.")
        accumulate = b3.number_input("Accumulate", 1, 64, 1,
                                     help="Micro-batches per step: a bigger batch on small GPUs.")
        freeze = b4.selectbox("Frozen backbone stages", ["default", 0, 1, 2, 3, 4, 5],
                              help="Stages kept fixed from the input (default: torchvision's; "
                              "YOLOX: the first 2 of 5).")
        d1, d2, d3, d4 = st.columns(4)
        batchnorm = d1.selectbox("BatchNorm", ["frozen", "train"],
                                 help="frozen: keep the base's statistics (fine-tuning); "
                                 "train: for a base that was never trained.")
        hflip = d2.toggle("Horizontal flips", True)
        jitter = d3.toggle("Scale jitter", True, help="Each batch at 80-100% of the size.")
        compare = d4.toggle("Compare with the base", True,
                            help="At the end, evaluate the base model on the same held-out "
                            "images and store both runs.")
    holder = busy(device)
    if holder is not None:
        st.info(f"{device} is busy with another training job: one job per device at a time. "
                "Stop it below, or wait for it to end.")
    if st.button("Start fine-tuning", type="primary", disabled=holder is not None):
        try:
            config = TrainConfig.for_base(
                base, classes=tuple(classes), iterations=int(iterations),
                batch_size=int(batch_size), accumulate=int(accumulate),
                image_size=int(image_size), optimizer=optimizer, lr=float(lr) or None,
                warmup=int(warmup), schedule=schedule, eval_every=int(eval_every),
                checkpoint_every=int(checkpoint_every),
                freeze_stages=None if freeze == "default" else int(freeze),
                batchnorm=batchnorm, hflip=hflip,
                scale_jitter=((0.8, 1.2) if yolox else (0.8, 1.0)) if jitter else (1.0, 1.0),
                device=cfg.device,
            )  # fmt: skip
            if not str(spec).strip():
                raise CowdemoError("Give the path or URL of the dataset to train on.")
            job = start_job(config, str(spec), name.strip() or None, compare=compare)
        except CowdemoError as exc:
            show_error(exc)
            return
        st.session_state["finetune_job"] = job.id
        del st.session_state[NAME_KEY]  # the next job gets a fresh suggestion
        st.rerun()


with st.expander("New fine-tune", expanded=not running):
    new_job_form()
with st.expander("Add model weights (.pth, .pt, .onnx)", key="finetune_weights_panel"):
    weights_uploader("finetune_weights")


# --- one job, live -------------------------------------------------------------------------
def show_job(job_id: str) -> None:
    job = get_job(job_id)
    status = job.status()
    state = status.get("state", "starting")
    st.subheader(job_label(status))
    fraction, text = progress_text(status)
    st.progress(fraction, text=text)
    st.caption(f"job {job.id} · {status.get('message', '')} · dataset {status.get('dataset')}"
               f" · {status.get('device', '')}")
    if state == "failed":
        st.error(status.get("error") or "The job failed.", icon="⚠️")
        with st.expander("Last lines of the job's log"):
            st.code("\n".join(job.log_tail(30)) or "(empty)")
    buttons = st.columns(6)
    if status["running"] and buttons[0].button("Stop", help="Save a checkpoint and stop."):
        try:
            job.stop()
        except CowdemoError as exc:
            show_error(exc)
    if (state in ("stopped", "failed") and job.spec()
            and buttons[0].button("Resume", help="Continue from the last checkpoint.")):
        try:
            job.resume()
            st.rerun()
        except CowdemoError as exc:
            show_error(exc)
    rows = job.metrics()
    if any(r.get("type") == "train" for r in rows):
        left, right = st.columns(2)
        left.plotly_chart(charts.loss_figure(rows), key=f"loss-{job.id}")
        right.plotly_chart(charts.lr_figure(rows, status.get("config"), status.get("peak_lr")),
                           key=f"lr-{job.id}")
    if any(r.get("type") == "eval" for r in rows):
        st.plotly_chart(charts.map_figure(rows), key=f"map-{job.id}")
    if state == "completed":
        common._registry.clear()  # the new model shows in the pickers now, not in 15 s
        st.success(f"**{status.get('model_name')}** is ready and listed in every model picker "
                   f"({status.get('output')}).", icon="✅")
        comparison = status.get("comparison") or {}
        table = {name: comparison[key] for key, name in (
            ("base", comparison.get("base_model")), ("finetuned", status.get("model_name")))
            if isinstance(comparison.get(key), dict) and "error" not in comparison[key]}
        if table:
            st.markdown(f"Held-out comparison on {comparison.get('images')} images "
                        "(stored in the run history):")
            st.dataframe(pd.DataFrame(table).T.round(4), width="stretch")
    report = status.get("report") or {}
    if report:
        counts = report.get("counts", {})
        with st.expander(f"Data: {report.get('summary', '')}",
                         expanded=bool(counts.get("skipped_images"))):
            for kind, title in (("skipped_images", "Unreadable images (skipped)"),
                                ("clipped_boxes", "Boxes clipped to the image"),
                                ("rejected_boxes", "Boxes rejected")):
                if report.get(kind):
                    st.markdown(f"**{title}** ({counts.get(kind, 0)})")
                    st.code("\n".join(report[kind]))
    if status["running"] is False and st.session_state.get("_finetune_was_running") == job.id:
        st.session_state.pop("_finetune_was_running")
        st.rerun()  # the job just ended: redraw the whole page (form enabled, new model listed)
    if status["running"]:
        st.session_state["_finetune_was_running"] = job.id


selected = st.session_state.get("finetune_job")
if selected and selected in statuses:
    live = statuses[selected]["running"]
    st.fragment(run_every=2 if live else None)(show_job)(selected)

if jobs:
    with st.expander(f"All jobs ({len(jobs)})", expanded=False):
        labels = {job.id: job_label(statuses[job.id]) for job in jobs}
        chosen = st.selectbox("Show job", list(labels), format_func=labels.get,
                              index=list(labels).index(selected) if selected in labels else 0)
        if chosen != selected:
            st.session_state["finetune_job"] = chosen
            st.rerun()
elif not running:
    st.info("No fine-tune yet: choose the settings above and press Start.")
