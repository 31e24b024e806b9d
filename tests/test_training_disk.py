"""A full disk during training: one clear error, the previous checkpoint intact, and the same
command resumes from it once there is space again. A real full file system: a small tmpfs
(needs permission to mount, as root in a container; skipped with the reason otherwise)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import torch
from training_support import (
    BASE,
    FAST,
    cli,
    env_for,
    read_json,
    start_cli,
    synthetic,
    wait_for,
    write_random_base,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small file system")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()}): the full-disk case is "
                    "covered by test_a_failed_write_keeps_the_previous_checkpoint_whole")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path) -> Path:
    """Take every free byte of the file system (a real full disk)."""
    filler = folder / f"filler-{uuid.uuid4().hex}"
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with open(filler, "wb", buffering=0) as handle:
        os.posix_fallocate(handle.fileno(), 0, free - 4096)
        with contextlib.suppress(OSError):
            while True:  # the last pages fallocate left (metadata, rounding)
                handle.write(b"\0" * 4096)
    return filler


def test_full_disk_is_a_clear_error_and_the_last_checkpoint_survives(tmp_path, small_disk):
    checkpoints, data = tmp_path / "checkpoints", tmp_path / "data"
    write_random_base(checkpoints)
    dataset = synthetic(tmp_path / "cows", n=10, seed=4, width=128, height=96)
    out = small_disk / "cows-disk"
    args = ["train", "--base", BASE, "--dataset", str(dataset), "--iterations", "60",
            "--batch-size", "1", "--checkpoint-every", "20", "--eval-every", "0",
            "--no-eval-at-start", "--no-compare", "--out", str(out), *FAST,
            "--image-size", "96", "--max-size", "128"]  # fmt: skip
    env = env_for(checkpoints, data)
    log = tmp_path / "run.log"
    status_path = small_disk / "cows-disk.training" / "status.json"
    first = start_cli(*args, env=env, log=log)
    try:
        wait_for(lambda: read_json(status_path).get("checkpoint_iteration") == 20, timeout=300,
                 what="the first checkpoint", process=first, log=log)
        filler = fill(small_disk)
        code = first.wait(300)
    finally:
        if first.poll() is None:
            first.kill()
    errors = [line for line in log.read_text().splitlines() if line.startswith("error:")]
    assert code == 2, log.read_text()[-3000:]
    assert len(errors) == 1, errors
    assert "the disk is full" in errors[0] and "iteration 20 is intact" in errors[0], errors[0]
    assert "Traceback" not in log.read_text()
    state = torch.load(small_disk / "cows-disk.training" / "last.pt", weights_only=True)
    assert state["iteration"] == 20
    assert not list(small_disk.rglob("*.tmp"))

    filler.unlink()
    again = cli(*args, env=env, timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from iteration 20" in again.stdout
    assert (small_disk / "cows-disk.pt").is_file()
