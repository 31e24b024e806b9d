"""Regressions: compare a run against a baseline, diff two runs, flag drops over time.

    verdict = check(store, current, baseline="best", metric="AP50", tolerance=0.01)
    verdict.regressed, verdict.report()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cowdemo.errors import CowdemoError
from cowdemo.runs import Run, RunStore

HIGHER_IS_BETTER_EXCEPT = {
    "num_switches", "num_fragmentations", "num_false_positives", "num_misses", "motp", "loss",
    "id_switches", "ID switches", "Fragmentations", "False positives", "Misses (FN)", "MOTP",
    "Suspected switches", "Extra tracks", "Mostly lost",
}  # fmt: skip


def higher_is_better(metric: str) -> bool:
    return metric.split("/")[-1] not in HIGHER_IS_BETTER_EXCEPT


@dataclass(frozen=True)
class Verdict:
    metric: str
    current: Run
    baseline: Run | None
    tolerance: float

    @property
    def delta(self) -> float:
        if self.baseline is None:
            return 0.0
        return self.current.metrics[self.metric] - self.baseline.metrics[self.metric]

    @property
    def regressed(self) -> bool:
        if self.baseline is None:
            return False
        worse = -self.delta if higher_is_better(self.metric) else self.delta
        return worse > self.tolerance

    def report(self) -> str:
        cur = self.current
        value = cur.metrics[self.metric]
        head = f"{cur.model} on {cur.dataset}: {self.metric} {value:.4f} (run {cur.id})"
        if self.baseline is None:
            return f"OK {head}; no earlier run to compare with"
        base = self.baseline
        status = "REGRESSION" if self.regressed else "OK"
        return (
            f"{status} {head} vs {base.metrics[self.metric]:.4f} (run {base.id}, {base.when}): "
            f"delta {self.delta:+.4f}, tolerance {self.tolerance:.4f}"
        )


def pick_baseline(candidates: list[Run], baseline: str, metric: str) -> Run | None:
    """``best`` (best value of ``metric``), ``latest`` (most recent) or a run id."""
    usable = [r for r in candidates if metric in r.metrics and r.metrics[metric] >= 0]
    if baseline == "latest":
        return usable[-1] if usable else None
    if baseline == "best":
        if not usable:
            return None
        pick = max if higher_is_better(metric) else min
        return pick(usable, key=lambda r: r.metrics[metric])
    raise CowdemoError(f"Baseline must be best, latest or a run id, not {baseline!r}.")


def check(
    store: RunStore,
    current: Run,
    baseline: str = "best",
    metric: str = "AP50",
    tolerance: float = 0.01,
) -> Verdict:
    """Compare ``current`` with a baseline among earlier runs of the same kind, model and
    dataset (or with an explicit run id)."""
    if metric not in current.metrics:
        known = ", ".join(sorted(current.metrics))
        raise CowdemoError(f"Run {current.id} has no metric {metric!r}; it has {known}.")
    if baseline.isdigit():
        base = store.get(int(baseline))
        if metric not in base.metrics:
            raise CowdemoError(f"Baseline run {base.id} has no metric {metric!r}.")
        return Verdict(metric, current, base, tolerance)
    earlier = [
        r for r in store.list(kind=current.kind, model=current.model, dataset=current.dataset)
        if r.id != current.id and (r.created_at, r.id) < (current.created_at, current.id)
    ]
    return Verdict(metric, current, pick_baseline(earlier, baseline, metric), tolerance)


def latest_run(store: RunStore, kind: str, model: str, dataset: str) -> Run:
    runs = store.list(kind=kind, model=model, dataset=dataset)
    if not runs:
        raise CowdemoError(f"No {kind} run of {model} on {dataset} is stored yet.")
    return runs[-1]


def flag_drops(runs: list[Run], metric: str, tolerance: float) -> list[tuple[Run, float]]:
    """Runs whose ``metric`` fell more than ``tolerance`` below the best run before them
    (runs of one model on one dataset, oldest first). Returns (run, drop)."""
    flagged, best = [], None
    for run in runs:
        value = run.metrics.get(metric)
        if value is None or value < 0:
            continue
        if best is not None:
            drop = (best - value) if higher_is_better(metric) else (value - best)
            if drop > tolerance:
                flagged.append((run, drop))
        if best is None or (value > best if higher_is_better(metric) else value < best):
            best = value
    return flagged


def diff_runs(store: RunStore, a: int, b: int) -> dict[str, Any]:
    """What changed from run ``a`` to run ``b``: metric deltas, per-class deltas, images whose
    outcome changed (evaluations), tracks whose ID switches changed (tracking runs)."""
    run_a, run_b = store.get(a), store.get(b)
    metrics = {
        name: {"a": run_a.metrics.get(name), "b": run_b.metrics.get(name),
               "delta": (run_b.metrics[name] - run_a.metrics[name])
               if name in run_a.metrics and name in run_b.metrics else None}
        for name in sorted(set(run_a.metrics) | set(run_b.metrics))
    }  # fmt: skip
    details_a, details_b = store.details(a) or {}, store.details(b) or {}
    images = []
    res_a, res_b = details_a.get("result", {}), details_b.get("result", {})
    per_a = {e["image_id"]: e for e in res_a.get("per_image", [])}
    per_b = {e["image_id"]: e for e in res_b.get("per_image", [])}
    for image_id in sorted(set(per_a) & set(per_b), key=str):
        counts = [tuple(len(e[k]) for k in ("tp", "fp", "fn")) for e in (per_a[image_id],
                                                                      per_b[image_id])]
        if counts[0] != counts[1]:
            images.append({"image_id": image_id, "a": dict(zip(("tp", "fp", "fn"), counts[0])),
                           "b": dict(zip(("tp", "fp", "fn"), counts[1]))})
    classes = {}
    for name in sorted(set(res_a.get("per_class_ap", {})) | set(res_b.get("per_class_ap", {}))):
        ap_a = res_a.get("per_class_ap", {}).get(name, {}).get("AP50")
        ap_b = res_b.get("per_class_ap", {}).get(name, {}).get("AP50")
        classes[name] = {"a": ap_a, "b": ap_b,
                         "delta": None if ap_a is None or ap_b is None else ap_b - ap_a}
    tracks = []
    switches_a = details_a.get("switches_per_gt_id", {})
    switches_b = details_b.get("switches_per_gt_id", {})
    for track in sorted(set(switches_a) | set(switches_b), key=str):
        if switches_a.get(track, 0) != switches_b.get(track, 0):
            tracks.append({"track": track, "a": switches_a.get(track, 0),
                           "b": switches_b.get(track, 0)})
    return {"a": run_a, "b": run_b, "metrics": metrics, "classes": classes,
            "images_changed": images, "tracks_changed": tracks}
