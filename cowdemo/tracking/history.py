"""Storing tracking runs in the run history (cowdemo.runs), so the Runs page and
`cowdemo check` see them beside evaluations."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cowdemo.runs import RunStore
from cowdemo.tracking.detection import VideoDetections
from cowdemo.tracking.stats import TrackingReport


def record_tracking_run(
    report: TrackingReport,
    found: VideoDetections,
    settings: dict[str, Any],
    *,
    label: str | None = None,
    device: str = "",
    store: RunStore | None = None,
) -> int:
    """One tracking run: every stat as a metric, switch counts per ground-truth id (or per
    ended track for suspected switches) as details, the video's detection cache key as its
    content identity."""
    store = store or RunStore()
    metrics = {name: float(value) for name, value in report.metrics().items()}
    if report.result is not None:
        per_id = Counter(str(e.gt_id) for e in report.result.switch_events)
    else:
        per_id = Counter(str(s.ended_id) for s in report.suspected)
    details = {
        "switches_per_gt_id": dict(per_id),
        "events": [{"frame": m.frame, "kind": m.kind, "old": m.old_id, "new": m.new_id}
                   for m in report.events()],
        "notes": list(report.notes),
        "ground_truth": report.has_ground_truth,
    }
    return store.record(
        "tracking",
        label or found.model,
        metrics,
        weights_sha256=found.key,
        dataset=found.meta.name,
        dataset_hash=found.key,
        settings=settings,
        details=details,
        device=device,
        duration_s=found.duration_s,
    )
