"""What a running fine-tune tells the outside world, through two files in its folder:

- ``status.json``: the current state (phase, iteration, ETA, last losses, messages), replaced
  atomically, so a reader never sees half a file;
- ``metrics.jsonl``: one JSON object per line, appended: ``{"type": "train", "iteration",
  "loss", "losses", "lr", "sec_per_iter"}`` every step and ``{"type": "eval", "iteration",
  "AP", "AP50", ...}`` per evaluation. A resumed run appends ``{"type": "resume",
  "iteration"}``; readers drop lines of the interrupted run beyond that iteration.

The Fine-tune page and ``cowdemo.training.jobs`` read these; no Streamlit runs in training.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from cowdemo.files import atomic_write_with

STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
ACTIVE_STATES = ("starting", "preparing", "training", "evaluating", "saving")
FINAL_STATES = ("completed", "stopped", "failed")


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` atomically (numbers from numpy or torch written as plain values);
    OSError is raised as is."""
    atomic_write_with(path, lambda handle: handle.write(json.dumps(data, default=_plain).encode()))


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_status(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(folder) / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """The metric lines of the run as it finally went: lines of an interrupted attempt past
    the checkpoint its resume started from are dropped; a torn last line is ignored."""
    rows: list[dict[str, Any]] = []
    try:
        text = (Path(folder) / METRICS_FILE).read_text()
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("type") == "resume":
            start = int(row.get("iteration", 0))
            rows = [r for r in rows if int(r.get("iteration", 0)) <= start]
        rows.append(row)
    return rows


class Monitor:
    """Writes status and metrics for one run (only process rank 0 writes)."""

    def __init__(self, folder: Path | None, enabled: bool = True, min_interval: float = 0.5):
        self.folder = Path(folder) if folder else None
        self.enabled = enabled and self.folder is not None
        self.status: dict[str, Any] = {}
        self.min_interval = min_interval
        self._last_write = 0.0
        self._iter_times: list[float] = []
        self.write_error = ""
        if self.enabled:
            assert self.folder is not None
            self.folder.mkdir(parents=True, exist_ok=True)
            self.status = read_status(self.folder)

    def update(self, force: bool = True, **fields: Any) -> None:
        self.status.update(fields)
        self.status["updated_at"] = time.time()
        if not self.enabled:
            return
        now = time.monotonic()
        if force or now - self._last_write >= self.min_interval:
            try:
                write_json_atomic(self.folder / STATUS_FILE, self.status)  # type: ignore[operator]
            except OSError as exc:  # a full disk must not hide the error being reported
                self.write_error = str(exc)
            self._last_write = now

    def log(self, **row: Any) -> None:
        if not self.enabled:
            return
        row = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
               for k, v in row.items()}
        try:
            with open(self.folder / METRICS_FILE, "a") as handle:  # type: ignore[operator]
                handle.write(json.dumps(row, default=_plain) + "\n")
        except OSError as exc:
            self.write_error = str(exc)

    def step_time(self, seconds: float) -> float:
        """Seconds per iteration, a median over the last 20 steps (robust to an eval pause)."""
        self._iter_times = [*self._iter_times[-19:], seconds]
        ordered = sorted(self._iter_times)
        return ordered[len(ordered) // 2]
