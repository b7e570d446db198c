"""What convergence costs the SQLite read model: applying one region's memory events (stores, updates, deletes)
in log order, and the same events from two regions when every event of the second arrives late.

Prints seconds and events per second; run it with another checkout's code on PYTHONPATH for a baseline
(the two-region case needs this one's). ``python -m bench.bench_convergence --events 3000``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from projectors import Verdict
from projectors.sqlite import SQLiteReadModel
from schemas.events import MemoryChanges, MemoryDeleted, MemoryStored, MemoryUpdated
from tests.projectors.convergence import Region, memory


def regions(events: int, names: tuple[str, ...]) -> list[Region]:
    """Stores of 50 titles (merged on repeat), updates and a few deletes, spread over the regions."""
    out = [Region(name) for name in names]
    for i in range(events):
        region = out[i % len(out)]
        at = i // len(out)
        if i % 10 == 9:
            region.add(MemoryDeleted(f"{region.name}-{i - 9}"), at=at)
        elif i % 3 == 2:
            region.add(MemoryUpdated(f"{region.name}-{i - 2}", MemoryChanges(content=f"c{i}"),
                                     "2026-12-01T11:00:00.000000+00:00"), at=at)
        else:
            region.add(MemoryStored(memory(f"{region.name}-{i}", f"title {i % 50}", f"content {i}", at=at)), at=at)
    return out


def timed(folder: Path, name: str, order: list[Region]) -> float:
    model = SQLiteReadModel(folder / f"{name}.db")
    start = time.perf_counter()
    for region in order:
        for batch in range(0, len(region.records), 100):
            model.apply_batch([Verdict(r) for r in region.records[batch:batch + 100]])
    elapsed = time.perf_counter() - start
    model.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--one-region-only", action="store_true", help="for a baseline without regions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = timed(Path(tmp), "one", regions(args.events, ("eu",)))
        print(f"one region, {args.events} events: {one:.2f} s ({args.events / one:,.0f}/s)")
        if not args.one_region_only:
            # The later region first: every event of the earlier one is late and replays its memories.
            two = regions(args.events, ("eu", "us"))
            late = timed(Path(tmp), "late", two[::-1])
            print(f"two regions, the second all late: {late:.2f} s ({args.events / late:,.0f}/s), "
                  f"{late / one:.2f}x one region")


if __name__ == "__main__":
    main()
