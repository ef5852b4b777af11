"""torchrun / DDP plumbing: one process per device, rank 0 writes files.

Launch ``torchrun --nproc_per_node=N -m auvcore.cli train ...`` (or the
``auv`` script): torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``, and
the trainer joins the process group (NCCL on GPUs, gloo on CPUs). Without
torchrun the same code runs as a single process.

Example:
    >>> context = DistributedContext(rank=0, world_size=1, device=torch.device("cpu"))
    >>> context.is_main, context.active
    (True, False)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..devices import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (e.g. a stop request seen by one rank)."""
        if not self.active:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def start(device: str) -> DistributedContext:
    """Join the torchrun process group when launched by torchrun; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    base = resolve_device(device)
    if world_size <= 1:
        return DistributedContext(0, 1, base)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if base.type == "cuda":
        torch.cuda.set_device(local_rank)
        base = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if base.type == "cuda" else "gloo")
    return DistributedContext(dist.get_rank(), dist.get_world_size(), base)


def stop(context: DistributedContext) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()
