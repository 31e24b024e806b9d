"""Storing tracking runs in the run history (cowdemo.runs), so the Runs page and
`cowdemo check` see them beside evaluations."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
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


def model_label(model: str) -> str:
    """How a tracking run names its model: the registry name, also when the model was given
    as a weights file of a registry entry; the file's stem for any other file; never a path."""
    path = Path(model).expanduser()
    if not (path.suffix and (path.exists() or os.sep in model)):
        return model
    try:
        from cowdemo.models.registry import list_models

        target = path.resolve()
        for spec in list_models():
            if spec.path and Path(spec.path).expanduser().resolve() == target:
                return spec.name
    except Exception:  # a name is only a label: never fail a run over it
        pass
    return path.stem


def settings_text(settings: dict[str, Any]) -> str:
    """A stored run's tracker settings in one line (the Runs page's "tracker settings")."""
    from cowdemo.errors import CowdemoError
    from cowdemo.tracking.settings import TrackerSettings

    tracker = settings.get("tracker") if isinstance(settings, dict) else None
    if not isinstance(tracker, dict):
        return ""
    try:
        return TrackerSettings.from_dict(tracker).describe()
    except (CowdemoError, TypeError):
        return ""
