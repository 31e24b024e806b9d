"""Runs: every evaluation, training and tracking run; metrics over time with drops flagged;
the difference between any two runs."""

import pandas as pd
import streamlit as st

from cowdemo import plots
from cowdemo.errors import CowdemoError
from cowdemo.regression import defined, diff_runs, flag_drops
from cowdemo.runs import RunStore
from cowdemo.ui import report as report_ui
from cowdemo.ui.common import show_error, sidebar


def number(value, signed: bool = False) -> str:
    """4 decimals, or "n/a" where there is no value (COCO's -1, a missing metric)."""
    if value is None or (not signed and not defined(value)):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


sidebar()
st.title("📈 Runs")
try:
    store = RunStore()
    runs = store.list()
except CowdemoError as exc:
    show_error(exc)
    st.stop()
if not runs:
    st.info("No runs yet: evaluate a model on the Evaluate page, or run `cowdemo evaluate`.")
    st.stop()

filters = st.columns(3)
kinds = sorted({r.kind for r in runs})
kind = filters[0].selectbox("Kind", kinds, index=kinds.index("evaluation")
                            if "evaluation" in kinds else 0)
runs = [r for r in runs if r.kind == kind]
models = filters[1].multiselect("Models", sorted({r.model for r in runs}))
datasets = filters[2].multiselect("Datasets", sorted({r.dataset for r in runs}))
runs = [r for r in runs if (not models or r.model in models)
        and (not datasets or r.dataset in datasets)]

metric_names = sorted({m for r in runs for m in r.metrics})
default_metric = "AP50" if "AP50" in metric_names else (metric_names[0] if metric_names else "")
left, right = st.columns([2, 1])
metric = left.selectbox("Metric", metric_names, index=metric_names.index(default_metric)
                        if default_metric else 0)
tolerance = right.number_input("Tolerance", 0.0, 1.0, 0.01, 0.005, format="%.3f",
                               help="A drop larger than this below the best earlier run is "
                               "flagged, as `cowdemo check --tolerance` does.")

series: dict[str, list] = {}
for run in runs:
    series.setdefault(f"{run.model} on {run.dataset}", []).append(run)
flagged = {label: flag_drops(items, metric, tolerance) for label, items in series.items()}
st.plotly_chart(plots.metric_history(series, metric, tolerance, flagged), width="stretch")
drops = [(label, r, d) for label, items in flagged.items() for r, d in items]
if drops:
    st.error(f"{len(drops)} drop(s) over the tolerance: " + "; ".join(
        f"run {r.id} ({label}) −{d:.4f}" for label, r, d in drops))
else:
    st.success(f"No {metric} drop over {tolerance:.3f}.")

if kind == "tracking":  # runs with other tracker settings on the same video told apart
    from cowdemo.tracking.history import settings_text
table = pd.DataFrame([
    {"run": r.id, "when": r.when, "model": r.model, "dataset": r.dataset,
     **({"tracker settings": settings_text(r.settings)} if kind == "tracking" else {}),
     metric: number(r.metrics.get(metric)),
     "device": r.device, "seconds": round(r.duration_s, 2),
     "code": r.code_version, "weights": r.weights_sha256[:12]}
    for r in reversed(runs)
])  # fmt: skip
st.dataframe(table, hide_index=True, width="stretch")

st.subheader("Compare two runs")
ids = [r.id for r in reversed(runs)]
if len(ids) < 2:
    st.info("Two runs are needed for a diff.")
    st.stop()
labels = {r.id: f"run {r.id}: {r.model} on {r.dataset} ({r.when})" for r in runs}
pick = st.columns(2)
a = pick[0].selectbox("Run A", ids, index=1, format_func=labels.get)
b = pick[1].selectbox("Run B", ids, index=0, format_func=labels.get)
diff = diff_runs(store, a, b)
# COCO's -1 (nothing to score) shows as "n/a" and never enters a delta
metric_rows = [{"metric": k, "A": number(v["a"]), "B": number(v["b"]),
                "delta": number(v["delta"], signed=True)}
               for k, v in diff["metrics"].items()]  # fmt: skip
st.dataframe(pd.DataFrame(metric_rows), hide_index=True, width="stretch")
changed = st.columns(3)
changed[0].markdown("**Per class (AP50)**")
class_rows = [{"class": k, "A": number(v["a"]), "B": number(v["b"]),
               "delta": number(v["delta"], signed=True)}
              for k, v in diff["classes"].items()]  # fmt: skip
changed[0].dataframe(pd.DataFrame(class_rows, columns=["class", "A", "B", "delta"]),
                     hide_index=True)
changed[1].markdown(f"**Images whose outcome changed: {len(diff['images_changed'])}**")
changed[1].dataframe(pd.DataFrame([
    {"image": i["image_id"], "A tp/fp/fn": "/".join(str(i["a"][k]) for k in ("tp", "fp", "fn")),
     "B tp/fp/fn": "/".join(str(i["b"][k]) for k in ("tp", "fp", "fn"))}
    for i in diff["images_changed"]
]), hide_index=True)  # fmt: skip
changed[2].markdown(f"**Tracks whose ID switches changed: {len(diff['tracks_changed'])}**")
changed[2].dataframe(pd.DataFrame(diff["tracks_changed"]), hide_index=True)

st.subheader("Report")
st.caption("Runs A and B as one file to send: metrics side by side, charts, and for "
           "evaluations the images where the two differ most.")
report_ui.runs_report([a, b])
