"""Shared measuring helpers for the benchmarks: peak memory of one call, on CPU or CUDA."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes of live torch allocations during one call, above what was live before it
    (max_memory_allocated on CUDA; on CPU the running sum of the profiler's per-op allocations)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage  # allocations (+) and frees (-) of this op itself
        peak = max(peak, live)
    return peak
