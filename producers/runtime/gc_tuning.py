"""The garbage collector's settings for the long-running server.

Each write allocates thousands of short-lived container objects (request, envelope, event, SQL rows); with
CPython's default gen-0 threshold (700 allocations) the collector runs several times per write and walks the
young objects each time, and every full collection walks the whole heap built at start-up (modules, the node,
its caches). Measured in ``serve`` under ``bench_fleet``: about 3 % of its CPU in the collector (perf). So,
once the node is open: the start-up heap is frozen (never scanned again: it lives as long as the process), and
gen 0 is collected every ``GEN0`` allocations. Reference cycles are still collected, only in fewer, larger
passes. ``AI_MEMORY_GC_TUNING=off`` keeps CPython's defaults.
"""

from __future__ import annotations

import gc
import os

__all__ = ["GEN0", "tune_for_serving"]

#: Allocations (net of frees) between two young collections: ~30x the default, a few writes' worth.
GEN0 = 20_000


def tune_for_serving() -> bool:
    """Freeze what is allocated so far and raise gen 0's threshold; False (nothing changed) when turned off."""
    if os.environ.get("AI_MEMORY_GC_TUNING", "").strip().lower() == "off":
        return False
    gc.collect()  # what start-up left as garbage goes now, not into the frozen generation
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0, gen1, gen2)
    return True
