"""Evaluate: COCO mAP of two or more models on a dataset, charts side by side, and a gallery
of where each model wins and loses."""

import streamlit as st

from cowdemo import plots
from cowdemo.datasets import open_dataset
from cowdemo.draw import FN_COLOR, FP_COLOR, TP_COLOR, draw_outcomes
from cowdemo.errors import CowdemoError
from cowdemo.evaluation import report
from cowdemo.evaluation.analysis import (
    ERROR_LABELS,
    ERROR_SHORT_LABELS,
    ERROR_TYPES,
    TideErrors,
)
from cowdemo.evaluation.compare import Comparison
from cowdemo.evaluation.detection import STAT_NAMES
from cowdemo.evaluation.report import shown
from cowdemo.ui import report as report_ui
from cowdemo.ui.common import registry, resolved_device, show_error, sidebar
from cowdemo.ui.evaluate import (
    comparison,
    dataset_store,
    insights,
    load_run,
    open_in_annotate,
    run_evaluation,
    suspects,
    thumbnail,
)

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
    ap, base_ap = e.result.stats["AP"], results[base].stats["AP"]
    delta = None if model == base or ap < 0 or base_ap < 0 else ap - base_ap
    column.metric(f"{model} AP", shown(ap), None if delta is None else f"{delta:+.4f} vs {base}")
    column.caption(f"AP50 {shown(e.result.stats['AP50'])} · run {e.run_id}"
                   + (" · stored result" if was_stored[model] else f" · {e.duration_s:.1f} s"))

# --- is B better than A? ------------------------------------------------------------------------
if len(models) > 1:
    st.subheader(f"Better than {base}?")
    seed = st.columns([1, 3])[0].number_input(
        "Bootstrap seed", 0, 2**31 - 1, 0, 1, key="evaluate_seed",
        help="The comparison resamples the images 1000 times; the same seed gives the same "
        "intervals.",
    )  # fmt: skip
    for model in models[1:]:
        c = comparison(evaluations[base].run_id, evaluations[model].run_id, dataset_name,
                       int(seed), 1000)
        lines = Comparison.from_dict(c)
        headline = [lines.metrics[k] for k in ("AP50", "AP") if k in lines.metrics]
        for m in headline:
            text = m.sentence(base, model)
            box = {"better": st.success, "worse": st.error}.get(m.verdict, st.info)
            box(text)
        with st.expander(f"{model} vs {base}: every metric ({lines.n_images} images, paired "
                         f"bootstrap, {lines.n_boot} rounds)"):
            st.markdown("\n".join(f"- {line}" for line in lines.sentences()))
        st.caption("An interval that holds zero means these images cannot tell the two models "
                   "apart: score them on more images before deciding.")

figures = [plots.stats_bars(results), plots.pr_curves(results), plots.per_class_ap(results),
           plots.ap50_vs_threshold(results)]
for row in (figures[:2], figures[2:]):
    for column, fig in zip(st.columns(2), row):
        column.plotly_chart(fig, width="stretch")

# --- why boxes are wrong, and can the scores be trusted -------------------------------------
analysed = {m: insights(e.run_id, dataset_name) for m, e in evaluations.items()}
tides = {m: TideErrors.from_dict(t) for m, (t, _) in analysed.items()}
calibrations = {m: c for m, (_, c) in analysed.items()}
left, right = st.columns(2)
picked = left.plotly_chart(plots.error_types(tides), width="stretch", on_select="rerun",
                           selection_mode="points", key="evaluate_tide_chart")
clicked = [p.get("x") for p in (picked.selection.points if picked else [])]
if clicked and clicked != st.session_state.get("_evaluate_tide_clicked"):
    # a click on a bar filters the gallery below to that error type
    st.session_state["_evaluate_tide_clicked"] = clicked
    by_short = {ERROR_SHORT_LABELS[t]: t for t in ERROR_TYPES}
    if clicked[0] in by_short:
        t = by_short[clicked[0]]
        st.session_state["evaluate_error_type"] = f"{ERROR_LABELS[t]} ({t})"
right.plotly_chart(plots.reliability(calibrations), width="stretch")
for column, (model, cal) in zip(st.columns(len(models)), calibrations.items()):
    column.metric(f"{model} calibration error (ECE)",
                  shown(cal["ece"], 3) if cal["num_detections"] else "n/a",
                  help="Average gap between a box's score and how often boxes with that score "
                  "are right (IoU 0.5), weighted by how many boxes each score bin holds. 0 is "
                  "perfect.")
table = report.stats_table(evaluations)
shown_table = table.copy()
for stat in STAT_NAMES:  # "n/a" where the dataset has nothing to score, as everywhere
    shown_table[stat] = [shown(v) for v in table[stat]]
st.dataframe(shown_table, hide_index=True, width="stretch")

export = st.columns(3)
export[0].download_button("Stats CSV", table.to_csv(index=False), f"eval-{dataset_name}.csv",
                          "text/csv")
export[1].download_button("Per-class CSV", report.per_class_table(evaluations).to_csv(index=False),
                          f"eval-{dataset_name}-classes.csv", "text/csv")
st.caption("Each chart's camera button saves it as PNG; the report below holds them all, for "
           "people without the app.")
report_ui.download_buttons(f"report-{dataset_name}", [e.run_id for e in evaluations.values()],
                           key="evaluate-report")

# --- boxes that look wrong in the dataset -------------------------------------------------------
st.subheader("Boxes to check in the dataset")
dataset = open_dataset(dataset_name, store)
found = suspects(tuple(e.run_id for e in evaluations.values()), dataset_name, 0.7)
st.caption(
    "**missing**: a box a model is sure of (score 0.7 or more) where the dataset has none, "
    "perhaps a cow nobody drew; **stray**: a dataset box no model comes near at any score, "
    "perhaps a wrong or shifted box. Most suspicious first."
)
if not found:
    st.success("No suspicious box: every confident detection matches a box, and every box is "
               "near some detection.")
for row_start in range(0, min(len(found), 8), 4):
    for column, s in zip(st.columns(4), found[row_start:row_start + 4]):
        color = (255, 0, 255) if s["kind"] == "missing" else (255, 160, 0)
        column.image(thumbnail(dataset.read_image(s["image_id"]), s["box"], color))
        score = "" if s["score"] is None else f" {s['score']:.2f}"
        column.markdown(f"**{s['kind']}** {s['category']}{score} · {s['file_name']}  \n"
                        f"seen by {', '.join(s['models']) or 'no model'}"
                        if s["kind"] == "missing" else
                        f"**{s['kind']}** {s['category']} · {s['file_name']}  \n"
                        "no model finds it")  # fmt: skip
        column.button("Open in Annotate", key=f"suspect-{row_start}-{s['image_id']}-{s['box']}",
                      on_click=open_in_annotate, args=(dataset_name, s["image_id"]))
if len(found) > 8:
    st.caption(f"{len(found) - 8} more not shown.")
if st.session_state.pop("_evaluate_open_annotate", False):
    st.switch_page("views/annotate.py")

# --- gallery ------------------------------------------------------------------------------------
st.subheader("Gallery")
st.caption(
    f"Boxes: <span style='color:rgb{TP_COLOR}'>true positive</span>, "
    f"<span style='color:rgb{FP_COLOR}'>false positive</span>, "
    f"<span style='color:rgb{FN_COLOR}'>missed</span> (IoU 0.5).",
    unsafe_allow_html=True,
)
errors = report.image_errors(evaluations)
filters = st.columns(2)
kind_labels = {"all boxes": None, **{f"{ERROR_LABELS[t]} ({t})": t for t in ERROR_TYPES}}
kind_label = filters[0].selectbox(
    "Error type", list(kind_labels), key="evaluate_error_type",
    help="Show only images with boxes of this error type, and only those boxes (a click on "
    "a bar of the error-type chart chooses it too).",
)  # fmt: skip
kind = kind_labels[kind_label]
sort_options = (["difference between models"] if len(models) > 1 else []) + [
    f"errors of {m}" for m in models]
order = filters[1].selectbox("Sort images by", sort_options)
column_name = ("difference" if order == "difference between models"
               else f"{order[len('errors of '):]} errors")  # fmt: skip
errors = errors.sort_values(column_name, ascending=False, kind="stable")
image_ids = errors["image_id"].tolist()
if kind is not None:
    image_ids = [i for i in image_ids
                 if any(t.per_image.get(i, {}).get(kind) for t in tides.values())]
    st.caption(f"{len(image_ids)} image(s) with {ERROR_LABELS[kind]} boxes.")
if not image_ids:
    st.info("No image to show for this choice.")
    st.stop()
shown_count = st.slider("Images shown", 1, max(2, len(image_ids)), min(6, len(image_ids)))
for image_id in image_ids[:shown_count]:
    info = dataset.image_info(image_id)
    st.markdown(f"**{info['file_name']}** (image {image_id})")
    image = dataset.read_image(image_id)
    gt = dataset.ground_truth(image_id)
    for column, (model, e) in zip(st.columns(len(models)), evaluations.items()):
        outcome = e.result.per_image.get(image_id, {"tp": [], "fp": [], "fn": []})
        if kind is None:
            caption = (f"{model}: {len(outcome['tp'])} TP, {len(outcome['fp'])} FP, "
                       f"{len(outcome['fn'])} missed")
        else:
            picked = tides[model].per_image.get(image_id, {}).get(kind, [])
            outcome = {"tp": [], "fp": [] if kind == "Miss" else picked,
                       "fn": picked if kind == "Miss" else []}
            caption = f"{model}: {len(picked)} {ERROR_LABELS[kind]}"
        drawn = draw_outcomes(image, gt.xyxy, e.predictions.get(image_id), outcome)
        column.image(drawn, caption=caption)
