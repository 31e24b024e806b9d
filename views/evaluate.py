"""Evaluate: COCO mAP of two or more models on a dataset, charts side by side, and a gallery
of where each model wins and loses."""

import streamlit as st

from cowdemo import plots
from cowdemo.datasets import open_dataset
from cowdemo.draw import FN_COLOR, FP_COLOR, TP_COLOR, draw_outcomes
from cowdemo.errors import CowdemoError
from cowdemo.evaluation import report
from cowdemo.ui import report as report_ui
from cowdemo.ui.common import registry, resolved_device, show_error, sidebar
from cowdemo.ui.evaluate import dataset_store, load_run, run_evaluation

cfg = sidebar()
st.title("📊 Evaluate")
st.caption(
    "COCO box mAP, identical to pycocotools. Models are scored by class name: a COCO model on a "
    "cows-only dataset is scored on its `cow` boxes, and its dogs, horses and sheep on cows are "
    "counted as confusions."
)

if not any(s.available for s in registry()):
    st.warning("No model is ready: the Home page lists the models and how to get their weights. "
               "External predictions can still be scored: `cowdemo evaluate --results F.json`.")
    st.stop()
store = dataset_store()
datasets = [s.name for s in store.list()]
ready = [s.name for s in registry() if s.available]
left, right = st.columns([1, 2])
dataset_name = left.selectbox(
    "Dataset", datasets,
    index=datasets.index("synthetic-sample") if "synthetic-sample" in datasets else 0,
)  # fmt: skip
models = right.multiselect("Models", ready, default=[m for m in cfg.models if m in ready])
if not models or not dataset_name:
    st.info("Choose a dataset and at least one model.")
    st.stop()

key = (dataset_name, tuple(models), resolved_device(cfg.device))
if st.button("Evaluate", type="primary") or st.session_state.get("evaluate_key") == key:
    try:
        dataset = open_dataset(dataset_name, store)
        run_ids = {}
        for model in models:
            bar = st.progress(0.0, text=f"{model}: predicting on {dataset_name}")

            def progress(done: int, total: int, bar=bar, model=model) -> None:
                bar.progress(done / total, text=f"{model}: {done} of {total} images")

            run_ids[model] = run_evaluation(model, dataset, key[2], progress)
            bar.empty()
        st.session_state["evaluate_key"] = key
        st.session_state["evaluate_runs"] = run_ids
    except CowdemoError as exc:
        show_error(exc)
        st.stop()
else:
    st.info("Press Evaluate. Results already computed for these inputs come back at once.")
    st.stop()

evaluations = {m: load_run(r) for m, (r, _) in st.session_state["evaluate_runs"].items()}
was_stored = {m: stored for m, (_, stored) in st.session_state["evaluate_runs"].items()}
results = {m: e.result for m, e in evaluations.items()}
base = models[0]
columns = st.columns(len(models))
for column, (model, e) in zip(columns, evaluations.items()):
    delta = None if model == base else e.result.stats["AP"] - results[base].stats["AP"]
    column.metric(f"{model} AP", f"{e.result.stats['AP']:.4f}",
                  None if delta is None else f"{delta:+.4f} vs {base}")
    column.caption(f"AP50 {e.result.stats['AP50']:.4f} · run {e.run_id}"
                   + (" · stored result" if was_stored[model] else f" · {e.duration_s:.1f} s"))

figures = [plots.stats_bars(results), plots.pr_curves(results), plots.per_class_ap(results),
           plots.ap50_vs_threshold(results)]
for row in (figures[:2], figures[2:]):
    for column, fig in zip(st.columns(2), row):
        column.plotly_chart(fig, width="stretch")
table = report.stats_table(evaluations)
st.dataframe(table, hide_index=True, width="stretch")

export = st.columns(3)
export[0].download_button("Stats CSV", table.to_csv(index=False), f"eval-{dataset_name}.csv",
                          "text/csv")
export[1].download_button("Per-class CSV", report.per_class_table(evaluations).to_csv(index=False),
                          f"eval-{dataset_name}-classes.csv", "text/csv")
export[2].download_button(
    "Report HTML (charts)",
    report.report_html(f"cowdemo evaluation on {dataset_name}", table, figures),
    f"eval-{dataset_name}.html", "text/html",
)  # fmt: skip
st.caption("Each chart's camera button saves it as PNG.")
report_ui.download_buttons(f"report-{dataset_name}", [e.run_id for e in evaluations.values()],
                           key="evaluate-report")

st.subheader("Gallery")
st.caption(
    f"Boxes: <span style='color:rgb{TP_COLOR}'>true positive</span>, "
    f"<span style='color:rgb{FP_COLOR}'>false positive</span>, "
    f"<span style='color:rgb{FN_COLOR}'>missed</span> (IoU 0.5).",
    unsafe_allow_html=True,
)
errors = report.image_errors(evaluations)
sort_options = ["difference between models"] + [f"errors of {m}" for m in models]
order = st.selectbox("Sort images by", sort_options)
column_name = "difference" if order == sort_options[0] else f"{order[len('errors of '):]} errors"
errors = errors.sort_values(column_name, ascending=False, kind="stable")
shown = st.slider("Images shown", 1, max(1, len(errors)), min(6, len(errors)))
dataset = open_dataset(dataset_name, store)
for image_id in errors["image_id"].head(shown):
    info = dataset.image_info(image_id)
    st.markdown(f"**{info['file_name']}** (image {image_id})")
    image = dataset.read_image(image_id)
    gt = dataset.ground_truth(image_id)
    for column, (model, e) in zip(st.columns(len(models)), evaluations.items()):
        outcome = e.result.per_image.get(image_id, {"tp": [], "fp": [], "fn": []})
        drawn = draw_outcomes(image, gt.xyxy, e.predictions.get(image_id), outcome)
        column.image(drawn, caption=f"{model}: {len(outcome['tp'])} TP, {len(outcome['fp'])} FP,"
                                    f" {len(outcome['fn'])} missed")
