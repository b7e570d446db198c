"""What link convergence and history settling cost the SQLite read model, as ratios within one run.

* links: one region's memories and link events (creations, invalidations, deletions of a few hundred links)
  applied with the arrival-order rules of a log of one partition, then with the merge rules of a regional log;
* settling: the memory events of ``bench.bench_convergence`` from two regions, keeping the whole history, then
  settling it after each batch with the default settings, with the history rows left.

``python -m bench.bench_link_convergence --events 3000``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.bench_convergence import regions
from projectors import Verdict
from projectors.sqlite import SQLiteReadModel
from schemas.events import Link, LinkCreated, LinkDeleted, LinkInvalidated, MemoryStored
from tests.projectors.convergence import Region, memory


def link_region(events: int) -> Region:
    """100 memories, then link events over 300 (source, target) pairs: mostly creations, some invalidations and
    deletions."""
    region = Region("eu")
    for i in range(100):
        region.add(MemoryStored(memory(f"m{i}", f"t{i}", "x", at=i % 60)), at=i % 60)
    for i in range(events):
        pair = (f"m{i % 100}", f"m{(i * 7 + 1) % 100}")
        if pair[0] == pair[1]:
            continue
        ts = f"2026-12-01T11:{(i // 60) % 60:02d}:{i % 60:02d}.000000+00:00"
        if i % 10 == 7:
            region.add(LinkInvalidated(*pair, "related_to", ts), at=59)
        elif i % 10 == 9:
            region.add(LinkDeleted(*pair, "related_to"), at=59)
        else:
            region.add(LinkCreated(Link(*pair, "related_to", created_at=ts)), at=59)
    return region


def timed(path: Path, batches: list[list[Verdict]], *, partitioned: bool = True,
          settle: bool = False) -> tuple[float, int]:
    model = SQLiteReadModel(path)
    model.partitioned = partitioned
    model.history_horizon_s = 86400.0 if settle else None  # the default margin
    model.history_settle_least = 100
    start = time.perf_counter()
    for batch in batches:
        model.apply_batch(batch)
    elapsed = time.perf_counter() - start
    kept = int(model._db.execute("SELECT count(*) FROM memory_history").fetchone()[0])
    model.close()
    return elapsed, kept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    links = [Verdict(r) for r in link_region(args.events).records]
    link_batches = [links[i:i + 50] for i in range(0, len(links), 50)]
    eu, us = regions(args.events, ("eu", "us"))
    # The regions read side by side, in batches of 50 from each (each region's events in order).
    mixed: list[list[Verdict]] = []
    for i in range(0, max(len(eu.records), len(us.records)), 50):
        mixed += [[Verdict(r) for r in eu.records[i:i + 50]], [Verdict(r) for r in us.records[i:i + 50]]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        arrival, _ = timed(folder / "arrival.db", link_batches, partitioned=False)
        merged, _ = timed(folder / "merged.db", link_batches)
        print(f"links, {len(links)} events: arrival rules {arrival:.2f} s, merge rules {merged:.2f} s "
              f"({merged / arrival:.2f}x)")
        kept_s, kept = timed(folder / "kept.db", mixed)
        settled_s, left = timed(folder / "settled.db", mixed, settle=True)
        print(f"memories, two regions, {len(eu.records) + len(us.records)} events: keeping the history {kept_s:.2f} s "
              f"({kept} rows), settling {settled_s:.2f} s ({left} rows left, {settled_s / kept_s:.2f}x)")


if __name__ == "__main__":
    main()
