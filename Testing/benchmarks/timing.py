"""What the benchmarks share: timing a call at its best, and counting a module's FLOPs."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import torch
from torch.utils.flop_counter import FlopCounterMode

T = TypeVar("T")


def best_of(repeat: int, run: Callable[[], T], synchronise: Callable[[], None] = lambda: None) -> tuple[float, T]:
    """The shortest of ``repeat`` timed calls (after one warm-up call), and the last result; ``synchronise``
    waits for a GPU's queued work before each clock reading."""
    result = run()
    seconds = []
    for _ in range(repeat):
        synchronise()
        start = time.perf_counter()
        result = run()
        synchronise()
        seconds.append(time.perf_counter() - start)
    return min(seconds), result


def gflop(module: torch.nn.Module, *inputs: torch.Tensor) -> float:
    """GFLOPs of one call of ``module`` on ``inputs``, as torch counts them."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops() / 1e9
