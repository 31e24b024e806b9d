"""Regressions: compare a run against a baseline, diff two runs, flag drops over time.

    verdict = check(store, current, baseline="best", metric="AP50", tolerance=0.01)
    verdict.regressed, verdict.report()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cowdemo.errors import CowdemoError
from cowdemo.runs import Run, RunStore

if TYPE_CHECKING:
    from cowdemo.datasets.coco import CocoDataset
    from cowdemo.evaluation.compare import MetricDifference

HIGHER_IS_BETTER_EXCEPT = {
    "num_switches", "num_fragmentations", "num_false_positives", "num_misses", "motp", "loss",
    "id_switches", "ID switches", "Fragmentations", "False positives", "Misses (FN)", "MOTP",
    "Suspected switches", "Extra tracks", "Mostly lost",
}  # fmt: skip


def higher_is_better(metric: str) -> bool:
    return metric.split("/")[-1] not in HIGHER_IS_BETTER_EXCEPT


def defined(value: float | None) -> bool:
    """False for a missing metric and for COCO's -1 (nothing to score in that size range or
    class); a negative tracking score such as MOTA -0.3 is a real value."""
    return value is not None and value == value and value != -1


@dataclass(frozen=True)
class Verdict:
    metric: str
    current: Run
    baseline: Run | None
    tolerance: float
    #: with ``--significant``: B - A of the metric with its bootstrap interval (baseline = A)
    significance: MetricDifference | None = None

    @property
    def comparable(self) -> bool:
        return (self.baseline is not None and defined(self.current.metrics.get(self.metric))
                and defined(self.baseline.metrics.get(self.metric)))  # fmt: skip

    @property
    def delta(self) -> float | None:
        """Current - baseline; None when either is undefined (never a -1 in a delta)."""
        if not self.comparable:
            return None
        return self.current.metrics[self.metric] - self.baseline.metrics[self.metric]

    @property
    def regressed(self) -> bool:
        delta = self.delta
        if delta is None:
            return False
        worse = -delta if higher_is_better(self.metric) else delta
        if worse <= self.tolerance:
            return False
        if self.significance is None:
            return True
        s = self.significance
        below = s.high is not None and s.high < 0
        above = s.low is not None and s.low > 0
        return below if higher_is_better(self.metric) else above

    def report(self) -> str:
        cur = self.current
        value = cur.metrics[self.metric]
        shown = f"{value:.4f}" if defined(value) else "n/a"
        head = f"{cur.model} on {cur.dataset}: {self.metric} {shown} (run {cur.id})"
        if self.baseline is None:
            return f"OK {head}; no earlier run to compare with"
        base = self.baseline
        base_value = base.metrics.get(self.metric)
        base_shown = f"{base_value:.4f}" if defined(base_value) else "n/a"
        if self.delta is None:
            return (f"OK {head} vs {base_shown} (run {base.id}, {base.when}): n/a, nothing to "
                    "compare (no ground truth for this metric)")
        status = "REGRESSION" if self.regressed else "OK"
        text = (
            f"{status} {head} vs {base_shown} (run {base.id}, {base.when}): "
            f"delta {self.delta:+.4f}, tolerance {self.tolerance:.4f}"
        )
        s = self.significance
        if s is not None and s.low is not None:
            text += (f"; paired bootstrap interval {s.low:+.4f} to {s.high:+.4f} "
                     f"({'excludes' if s.excludes_zero else 'holds'} zero)")
        return text


def pick_baseline(candidates: list[Run], baseline: str, metric: str) -> Run | None:
    """``best`` (best value of ``metric``), ``latest`` (most recent) or a run id."""
    usable = [r for r in candidates if defined(r.metrics.get(metric))]
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
    *,
    significant_on: CocoDataset | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Verdict:
    """Compare ``current`` with a baseline among earlier runs of the same kind, model and
    dataset (or with an explicit run id). With ``significant_on`` (the dataset both runs
    scored), a drop over the tolerance is a regression only when its paired bootstrap interval
    (``n_boot`` rounds, ``seed``) lies wholly on the worse side of zero."""
    if metric not in current.metrics:
        known = ", ".join(sorted(current.metrics))
        raise CowdemoError(f"Run {current.id} has no metric {metric!r}; it has {known}.")
    if baseline.isdigit():
        base = store.get(int(baseline))
        if metric not in base.metrics:
            raise CowdemoError(f"Baseline run {base.id} has no metric {metric!r}.")
    else:
        earlier = [
            r for r in store.list(kind=current.kind, model=current.model, dataset=current.dataset)
            if r.id != current.id and (r.created_at, r.id) < (current.created_at, current.id)
        ]
        base = pick_baseline(earlier, baseline, metric)
    verdict = Verdict(metric, current, base, tolerance)
    if significant_on is None or not verdict.comparable:
        return verdict
    return Verdict(metric, current, base, tolerance,
                   significance(store, base, current, significant_on, metric, n_boot, seed))


def significance(
    store: RunStore, a: Run, b: Run, dataset: CocoDataset, metric: str, n_boot: int, seed: int
) -> MetricDifference:
    """B - A of ``metric`` between two stored evaluations of ``dataset``, with its paired
    bootstrap interval (stored with run B)."""
    from cowdemo.evaluation.compare import HEADLINE
    from cowdemo.evaluation.insights import compare_evaluations
    from cowdemo.evaluation.runner import load_evaluation

    if metric not in HEADLINE and not metric.startswith("AP50/"):
        raise CowdemoError(f"The bootstrap covers {', '.join(HEADLINE)} and AP50/<class>, not "
                           f"{metric!r}: drop --significant or choose one of those.")
    for run in (a, b):
        if run.kind != "evaluation":
            raise CowdemoError(f"Run {run.id} is a {run.kind} run; --significant compares "
                               "evaluations.")
        if run.dataset_hash and run.dataset_hash != dataset.content_hash():
            raise CowdemoError(f"Dataset {dataset.name} changed since run {run.id}: the "
                               "bootstrap needs both runs scored on the same images.")
    comparison = compare_evaluations(load_evaluation(store, a.id), load_evaluation(store, b.id),
                                     dataset, n_boot=n_boot, seed=seed, store=store)
    if metric not in comparison.metrics:
        raise CowdemoError(f"Dataset {dataset.name} has no class for {metric!r}.")
    return comparison.metrics[metric]


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
               if defined(run_a.metrics.get(name)) and defined(run_b.metrics.get(name))
               else None}
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
                         "delta": ap_b - ap_a if defined(ap_a) and defined(ap_b) else None}
    tracks = []
    switches_a = details_a.get("switches_per_gt_id", {})
    switches_b = details_b.get("switches_per_gt_id", {})
    for track in sorted(set(switches_a) | set(switches_b), key=str):
        if switches_a.get(track, 0) != switches_b.get(track, 0):
            tracks.append({"track": track, "a": switches_a.get(track, 0),
                           "b": switches_b.get(track, 0)})
    return {"a": run_a, "b": run_b, "metrics": metrics, "classes": classes,
            "images_changed": images, "tracks_changed": tracks}
