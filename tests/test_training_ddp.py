"""DistributedDataParallel through torchrun: 2 CPU processes (gloo) train to the end and write
one checkpoint."""

from __future__ import annotations

import pytest
from training_support import BASE, FAST, cli, env_for, synthetic, write_random_base

from cowdemo.models.checkpoints import read_checkpoint_info
from cowdemo.training.monitor import read_metrics

pytestmark = pytest.mark.slow


def test_two_cpu_processes_train_to_one_checkpoint(tmp_path):
    checkpoints, data = tmp_path / "checkpoints", tmp_path / "data"
    write_random_base(checkpoints)
    dataset = synthetic(tmp_path / "cows", n=12, seed=3, width=128, height=96)
    run = cli("train", "--base", BASE, "--dataset", str(dataset), "--iterations", "6",
              "--batch-size", "1", "--checkpoint-every", "3", "--eval-every", "0",
              "--no-eval-at-start", "--no-compare", "--device", "cpu", "--out", "ddp-cows",
              "--nproc-per-node", "2", *FAST, "--image-size", "96", "--max-size", "128",
              env=env_for(checkpoints, data), timeout=400)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "--nproc-per-node 2" in run.stderr and "torch.distributed.run" in run.stderr
    models = sorted(p.name for p in checkpoints.glob("*.pt"))
    assert models == ["ddp-cows.pt"], "one checkpoint, written by process 0 only"
    info = read_checkpoint_info(checkpoints / "ddp-cows.pt")
    assert info.metadata["world_size"] == 2 and info.metadata["iteration"] == 6
    assert info.metadata["settings"]["batch_size"] == 1
    rows = read_metrics(checkpoints / "ddp-cows.training")
    assert [r["iteration"] for r in rows if r["type"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert [r["iteration"] for r in rows if r["type"] == "checkpoint"] == [3]
    assert [r["iteration"] for r in rows if r["type"] == "eval"] == [6]
    assert not list(checkpoints.rglob("*.tmp")) and not list(checkpoints.rglob("last.pt"))
