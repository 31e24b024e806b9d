"""Fine-tunes as background jobs: a separate process per job, so a job survives page reloads,
closed browsers and Streamlit restarts, and any page (or the CLI) can re-attach to it::

    job = start_job(TrainConfig(base="frcnn-mobilenet-v3-coco", iterations=300), "cows",
                    out="cows-mobilenet")
    job.status()["state"], job.metrics()[-1]
    job.stop()            # saves a checkpoint, then ends ("stopped"; job.resume() continues)

A job is a folder ``<data>/jobs/<id>/``: ``job.json`` (what to run), ``status.json`` and
``metrics.jsonl`` (written by the training, see `cowdemo.training.monitor`), ``pid``,
``log.txt`` (the process's output) and ``lock`` (held by the process while it runs: a job
whose lock is free is not running, however it ended). One job per device at a time
(`cowdemo.training.locks`); a second start gets one clear error naming the running job.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cowdemo.devices import resolve_device
from cowdemo.errors import CowdemoError
from cowdemo.training.config import TrainConfig
from cowdemo.training.engine import STATE_FILE, output_path, state_dir
from cowdemo.training.locks import LOCK_FDS_ENV, LOCK_HELD_ENV, DeviceLock, jobs_dir
from cowdemo.training.monitor import (
    ACTIVE_STATES,
    METRICS_FILE,
    read_metrics,
    read_status,
    write_json_atomic,
)

JOB_FILE, PID_FILE, LOG_FILE, LOCK_FILE = "job.json", "pid", "log.txt", "lock"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Job:
    id: str
    folder: Path

    # --- reading -----------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        try:
            return json.loads((self.folder / JOB_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def running(self) -> bool:
        """Whether the job's process is alive (it holds the job's lock)."""
        path = self.folder / LOCK_FILE
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def status(self) -> dict[str, Any]:
        """status.json, corrected when the process died without saying so (kill -9, crash)."""
        status = {"id": self.id, **read_status(self.folder)}
        status.setdefault("state", "starting")
        if status["state"] in ACTIVE_STATES and not self.running():
            last = status.get("checkpoint_iteration")
            tail = self.log_tail(1)
            said = tail[0][:200] if tail else "no output"
            since = f"iteration {last}" if last else "the start (no checkpoint yet)"
            status.update(
                state="failed",
                error=f"The training process ended unexpectedly ({said}); resume continues "
                      f"from {since}.",
            )
        status["running"] = status["state"] in ACTIVE_STATES
        return status

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.folder)

    def log_tail(self, lines: int = 20) -> list[str]:
        try:
            text = (self.folder / LOG_FILE).read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if line.strip()][-lines:]

    @property
    def pid(self) -> int | None:
        try:
            return int((self.folder / PID_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    # --- control -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the job to save a checkpoint and stop (SIGINT, like Ctrl-C)."""
        pid = self.pid
        if pid is None or not self.running():
            raise CowdemoError(f"Job {self.id} is not running.")
        os.kill(pid, signal.SIGINT)

    def resume(self) -> Job:
        """Start the job's process again in the same folder: it continues from the last
        checkpoint (the metrics log continues too)."""
        if self.running():
            raise CowdemoError(f"Job {self.id} is still running.")
        spec = self.spec()
        if not spec:
            raise CowdemoError(f"Job {self.id} has no job.json: start a new job instead.")
        spec["fresh"] = False
        return _launch(self, spec)


def _new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def get_job(job_id: str) -> Job:
    folder = jobs_dir() / job_id
    if not (folder / JOB_FILE).is_file():
        raise CowdemoError(f"There is no training job {job_id} in {jobs_dir()}.")
    return Job(job_id, folder)


def list_jobs() -> list[Job]:
    """All jobs, newest first."""
    root = jobs_dir()
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if (p / JOB_FILE).is_file()]
    return [Job(p.name, p) for p in sorted(folders, key=lambda p: p.name, reverse=True)]


def running_jobs() -> list[Job]:
    return [job for job in list_jobs() if job.running()]


def start_job(
    config: TrainConfig,
    dataset: str,
    out: str | Path | None = None,
    *,
    val_dataset: str | None = None,
    images: str | None = None,
    compare: bool = True,
    fresh: bool = False,
) -> Job:
    """Start a fine-tune in its own process; returns at once. Raises CowdemoError when the
    device already runs a job or the settings are invalid."""
    from cowdemo.models.registry import find_model
    from cowdemo.training.sources import check_source

    config.validate()
    base = find_model(config.base)
    if base.status == "unavailable":
        raise CowdemoError(base.reason or f"Model {base.name} is unavailable.")
    check_source(dataset)
    out_path = output_path(out, config).resolve()
    if out_path.exists() and not fresh and not (state_dir(out_path) / STATE_FILE).exists():
        raise CowdemoError(f"A model named {out_path.stem} already exists ({out_path}): choose "
                           "another name.")
    spec = {
        "config": config.to_dict(), "dataset": str(dataset), "out": str(out_path),
        "val_dataset": val_dataset, "images": images, "compare": compare, "fresh": fresh,
        "device": resolve_device(config.device), "created_at": time.time(),
    }  # fmt: skip
    job_id = _new_id()
    return _launch(Job(job_id, jobs_dir() / job_id), spec)


def _launch(job: Job, spec: dict[str, Any]) -> Job:
    device_lock = DeviceLock(spec["device"], {"job": job.id, "out": spec["out"]}).acquire()
    job.folder.mkdir(parents=True, exist_ok=True)
    job_lock = os.open(job.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(job_lock, fcntl.LOCK_EX)
        write_json_atomic(job.folder / JOB_FILE, spec)
        status = read_status(job.folder)
        status.update(id=job.id, state="starting", message="starting the training process",
                      model_name=Path(spec["out"]).stem, output=spec["out"],
                      dataset=spec["dataset"], iterations=spec["config"]["iterations"],
                      created_at=status.get("created_at", time.time()), error=None,
                      ended_at=None, updated_at=time.time())
        write_json_atomic(job.folder / "status.json", status)
        (job.folder / METRICS_FILE).touch()
        with open(job.folder / LOG_FILE, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cowdemo.training.job", str(job.folder)],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, LOCK_HELD_ENV: "1", "PYTHONUNBUFFERED": "1",
                     LOCK_FDS_ENV: f"{device_lock.fd},{job_lock}"},
                start_new_session=True, pass_fds=(device_lock.fd, job_lock),
            )  # fmt: skip
        (job.folder / PID_FILE).write_text(str(process.pid))
    finally:
        os.close(job_lock)  # the child keeps both locks for as long as it lives
        device_lock.release()
    return job
