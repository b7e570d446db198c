"""CPU seconds spent by processes, from ``/proc/<pid>/stat`` (Linux): what a benchmark divides by the operations
it counted, per component (server, client, log servers), to say where a machine's CPU goes per operation."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["cpu_seconds", "cpu_snapshot", "ms_per_op"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (its own threads, not its children); 0.0 when unreadable
    (another OS, or the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: the fields after it start past the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15 of the whole line


def cpu_snapshot(groups: Mapping[str, Iterable[int]]) -> dict[str, float]:
    """CPU seconds so far, summed per named group of pids."""
    return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}


def ms_per_op(before: Mapping[str, float], after: Mapping[str, float], ops: int) -> dict[str, float]:
    """Per group, the CPU milliseconds spent between two snapshots per operation (0.0 without operations)."""
    return {name: (after[name] - before.get(name, 0.0)) * 1000 / ops if ops else 0.0 for name in after}
