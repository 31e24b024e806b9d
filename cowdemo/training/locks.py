"""One training job per device: an exclusive ``flock`` on ``<data>/jobs/locks/<device>.lock``.

The lock belongs to the training process (a job inherits the one its launcher took), so it
disappears with the process however it ends (finished, Ctrl-C, kill -9, crash): no stale lock
to clean up. The file holds who owns it, for the message a second job gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from cowdemo.errors import CowdemoError

#: Set in a process that already holds its device lock (a job started by the page, or a
#: DDP worker whose launcher holds it): the training code then does not lock again.
LOCK_HELD_ENV = "COWDEMO_DEVICE_LOCK_HELD"
#: The descriptors of the locks a job process inherited ("device_fd,job_fd"), so it can let go
#: of them the moment it fails, before its (slow) interpreter shutdown.
LOCK_FDS_ENV = "COWDEMO_LOCK_FDS"
REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The app's data folder (the dataset store's when it exists; ``COWDEMO_DATA``)."""
    try:
        from cowdemo.datasets.store import data_dir as store_data_dir
    except ImportError:
        return Path(os.environ.get("COWDEMO_DATA", REPO_ROOT / "data"))
    return Path(store_data_dir())


def jobs_dir() -> Path:
    return data_dir() / "jobs"


def lock_path(device: str) -> Path:
    return jobs_dir() / "locks" / f"{re.sub(r'[^A-Za-z0-9_-]', '', device)}.lock"


def _owner_text(owner: dict[str, Any]) -> str:
    since = time.strftime("%H:%M", time.localtime(owner.get("since", time.time())))
    what = f"job {owner['job']}" if owner.get("job") else f"process {owner.get('pid', '?')}"
    target = f" ({Path(owner['out']).stem})" if owner.get("out") else ""
    return f"{what}{target}, started {since}"


class DeviceLock:
    """``with DeviceLock("cuda:0", owner): ...``; raises CowdemoError when the device is busy."""

    def __init__(self, device: str, owner: dict[str, Any] | None = None):
        self.device = device
        self.owner = {"pid": os.getpid(), "since": time.time(), **(owner or {})}
        self.fd: int | None = None

    def acquire(self) -> DeviceLock:
        path = lock_path(self.device)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = busy(self.device) or {}
            raise CowdemoError(
                f"A training job is already running on {self.device} ({_owner_text(holder)}): "
                "one job per device at a time; stop it on the Fine-tune page or wait for it."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(self.owner).encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None

    def __enter__(self) -> DeviceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def busy(device: str) -> dict[str, Any] | None:
    """Who holds the device's lock ({"job", "pid", "since", "out"}), or None when it is free."""
    path = lock_path(device)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(path.read_text() or "{}")
            except json.JSONDecodeError:
                return {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def lock_held_by_parent() -> bool:
    return os.environ.get(LOCK_HELD_ENV) == "1"


def release_inherited_locks() -> None:
    """Close the lock descriptors this process inherited from its launcher (see
    :data:`LOCK_FDS_ENV`): the device is free at once for the next job. Safe to call twice."""
    fds = os.environ.pop(LOCK_FDS_ENV, "")
    for fd in (int(v) for v in fds.split(",") if v.strip().isdigit()):
        with contextlib.suppress(OSError):
            os.close(fd)
