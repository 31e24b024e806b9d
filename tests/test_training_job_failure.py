"""A failed job frees its device at once: when its status says "failed", the next job can start
(the Fine-tune page's Start button is enabled again), even while the dead job's process is
still shutting down."""

from __future__ import annotations

from training_support import BASE_FILE, wait_for

from cowdemo.training.config import TrainConfig
from cowdemo.training.jobs import start_job
from cowdemo.training.locks import busy


def test_a_failed_job_releases_the_device_before_it_says_failed(tmp_path, monkeypatch):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / BASE_FILE).write_bytes(b"not weights")  # fails inside the job process
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    job = start_job(TrainConfig(base="frcnn-mobilenet-v3-coco", iterations=2, device="cpu"),
                    "synthetic:4:128x96", "broken")
    status = wait_for(lambda: (s := job.status())["state"] == "failed" and s, 180,
                      "the job to fail")
    assert "is not a loadable" in status["error"]
    assert busy("cpu") is None, "the device is free as soon as the job says it failed"
