"""DistributedDataParallel: the process group of a run started by torchrun, and the launch.

``cowdemo train --nproc-per-node N`` does not fork workers itself: it runs torch's own launcher
(``python -m torch.distributed.run``, i.e. torchrun) with the same command line plus
``--distributed-worker``. Each worker finds RANK / WORLD_SIZE / LOCAL_RANK in its environment
(set by torchrun), joins the process group (NCCL on GPUs, gloo on CPU), trains on its share of
every batch, and process 0 evaluates, writes checkpoints and reports.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from cowdemo.devices import resolve_device
from cowdemo.errors import CowdemoError


@dataclass
class DistContext:
    """This process's place in the run (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    #: In a process group (torchrun), even of one process (``cowdemo train --ddp``).
    group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.group

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """``value`` of rank 0 on every rank (an exception on rank 0 is re-raised everywhere,
        so a CowdemoError there stops all processes with the same message)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            values = values.to(self._collective_device(), copy=True)
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
            values = (values / self.world_size).cpu()  # NCCL reduces CUDA tensors only
        return values

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (stop requests, bad losses)."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self._collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def _collective_device(self) -> str:
        return self.device if dist.get_backend() == "nccl" else "cpu"

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str = "auto") -> DistContext:
    """Join torchrun's process group when there is one (also of one process: torchrun sets
    TORCHELASTIC_RUN_ID); else a single process on ``device``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        return DistContext(device=resolve_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise CowdemoError(
                f"Process {local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                "use --nproc-per-node at most that many."
            )
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(hours=2))
    return DistContext(rank, world, local_rank, f"cuda:{local_rank}" if use_cuda else "cpu",
                       group=True)


def shareable(exc: BaseException) -> BaseException:
    """An exception that pickles (for ``broadcast``)."""
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def torchrun_command(
    worker_args: list[str],
    nproc_per_node: int,
    nnodes: str = "1",
    node_rank: int = 0,
    master_addr: str | None = None,
    master_port: int | None = None,
    rdzv_endpoint: str | None = None,
    rdzv_id: str | None = None,
) -> list[str]:
    """The torchrun command line that runs ``python -m cowdemo.cli <worker_args>`` N times."""
    command = [sys.executable, "-m", "torch.distributed.run",
               "--nproc-per-node", str(nproc_per_node), "--nnodes", str(nnodes)]
    if rdzv_endpoint:
        command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint,
                    "--rdzv-id", rdzv_id or "cowdemo"]
    elif str(nnodes) == "1" and not master_addr:
        command += ["--standalone"]
    else:
        command += ["--node-rank", str(node_rank), "--master-addr", master_addr or "127.0.0.1",
                    "--master-port", str(master_port or 29500)]
    return [*command, "-m", "cowdemo.cli", *worker_args]


def launch(command: list[str], env: dict[str, str] | None = None) -> int:
    """Run torchrun in the foreground; Ctrl-C reaches it (and it stops the workers)."""
    process = subprocess.Popen(command, env={**os.environ, **(env or {})})
    try:
        return process.wait()
    except KeyboardInterrupt:
        return process.wait()
