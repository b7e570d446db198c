"""Latency samples and their summary (percentiles by linear interpolation, like numpy's default)."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Samples", "Summary", "percentile", "rss_mb"]


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of an already sorted, non-empty list."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    wall_s: float

    @property
    def per_sec(self) -> float:
        """Operations per second over the whole timed loop (one caller, back to back)."""
        return self.count / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class Samples:
    """Per-operation latencies plus the wall time of the whole loop."""

    seconds: list[float] = field(default_factory=list)
    _started: float | None = None
    _wall: float = 0.0

    @contextmanager
    def one(self) -> Iterator[None]:
        """Time one operation (and count the loop's wall time from the first one)."""
        if self._started is None:
            self._started = time.perf_counter()
        start = time.perf_counter()
        yield
        end = time.perf_counter()
        self.seconds.append(end - start)
        self._wall = end - self._started

    def summary(self) -> Summary:
        ordered = sorted(self.seconds)
        ms = [s * 1000 for s in ordered]
        return Summary(count=len(ms), p50_ms=percentile(ms, 50), p95_ms=percentile(ms, 95),
                       p99_ms=percentile(ms, 99), max_ms=ms[-1], wall_s=self._wall)


def rss_mb() -> float:
    """The resident set now (Linux ``/proc``), else the peak: growth between two points needs the current one."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
