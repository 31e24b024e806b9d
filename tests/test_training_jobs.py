"""Background jobs: a job runs in its own process, one per device; a killed job is reported
as such and resumes from its checkpoint to the end."""

from __future__ import annotations

import os
import signal

import pytest
from training_support import BASE, FAST_SETTINGS, synthetic, wait_for, write_random_base

from cowdemo.errors import CowdemoError
from cowdemo.models.registry import find_model
from cowdemo.training.config import TrainConfig
from cowdemo.training.jobs import get_job, list_jobs, start_job
from cowdemo.training.locks import busy

pytestmark = pytest.mark.slow


def test_kill_a_job_then_resume_it_to_the_end(tmp_path, monkeypatch):
    checkpoints, data = tmp_path / "checkpoints", tmp_path / "data"
    write_random_base(checkpoints)
    for key, value in {"COWDEMO_CHECKPOINTS": str(checkpoints), "COWDEMO_DATA": str(data),
                       "COWDEMO_OFFLINE": "1",
                       "COWDEMO_RUNS_DB": f"sqlite:///{data / 'runs.sqlite'}"}.items():
        monkeypatch.setenv(key, value)
    dataset = synthetic(tmp_path / "cows", n=8, seed=7, width=128, height=96)
    config = TrainConfig(base=BASE, iterations=40, batch_size=1, checkpoint_every=10,
                         eval_every=0, eval_at_start=False, device="cpu",
                         **{**FAST_SETTINGS, "image_size": 96, "max_size": 128})
    job = start_job(config, str(dataset), "job-cows", compare=False)
    try:
        assert list_jobs() == [job] and busy("cpu")["job"] == job.id
        with pytest.raises(CowdemoError, match="already running on cpu"):
            start_job(config, str(dataset), "other")
        wait_for(lambda: (job.status().get("checkpoint_iteration") or 0) >= 10, 240,
                 "the first checkpoint")
        os.kill(job.pid, signal.SIGKILL)
        status = wait_for(lambda: (s := job.status())["state"] == "failed" and s, 30,
                          "the job to be reported dead")
    finally:
        if job.running():
            os.kill(job.pid, signal.SIGKILL)
    assert "ended unexpectedly" in status["error"]
    assert f"resume continues from iteration {status['checkpoint_iteration']}" in status["error"]
    assert busy("cpu") is None, "the device lock went with the process"

    resumed = get_job(job.id).resume()
    try:
        final = wait_for(lambda: (s := resumed.status())["state"] in ("completed", "failed")
                         and s, 300, "the resumed job to end")
        wait_for(lambda: not resumed.running(), 60, "the job's process to exit")
    finally:
        if resumed.running():
            os.kill(resumed.pid, signal.SIGKILL)
    assert final["state"] == "completed", final.get("error")
    assert final["resumed_from"] == status["checkpoint_iteration"]
    steps = [r["iteration"] for r in resumed.metrics() if r["type"] == "train"]
    assert steps == list(range(1, 41))
    assert find_model("job-cows").kind == "checkpoint"
    assert busy("cpu") is None
