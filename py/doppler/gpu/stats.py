"""Counters the GPU layer keeps: dispatches per kernel, submits, replays, readbacks (tensor data leaving the GPU),
presents (images copied onto a canvas, GPU to GPU), fences and timestamp resolves (counted apart: they move no
tensor data), and pool bytes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class GpuStats:
    dispatches: Counter = field(default_factory=Counter)  # kernel label -> count
    submits: int = 0
    replays: int = 0
    readbacks: int = 0
    readback_bytes: int = 0
    presents: int = 0  # images copied onto a canvas on the GPU (no readback)
    fences: int = 0
    timestamp_resolves: int = 0
    gpu_ms: Counter = field(default_factory=Counter)  # kernel label -> milliseconds, where timestamp-query exists
    last_timings: list = field(default_factory=list)  # milliseconds per dispatch timed by the last sync, in order

    def summary(self, pool) -> dict:
        return {
            "dispatches": sum(self.dispatches.values()),
            "dispatchesByKernel": dict(self.dispatches),
            "submits": self.submits,
            "replays": self.replays,
            "readbacks": self.readbacks,
            "readbackBytes": self.readback_bytes,
            "presents": self.presents,
            "fences": self.fences,
            "timestampResolves": self.timestamp_resolves,
            "gpuMsByKernel": {k: round(v, 4) for k, v in self.gpu_ms.items()},
            "currentBytes": pool.current_bytes,
            "peakBytes": pool.peak_bytes,
        }
