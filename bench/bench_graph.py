"""Knowledge-graph benchmark: kg_query p95 at depth 1, 3 and 5 on a graph of 100k links, against the
original's query (a plain recursive CTE) on the same read-model file, in the same run.

    python -m bench.bench_graph [--quick] [--out bench/results]

The graph is built through the real write path (signed ``memory.stored`` and ``link.created`` events appended
in batches, projected into the SQLite read model). Queries go through :class:`producers.graph.service.GraphService`
(what the HTTP route and MCP tool call: catch up with the log, traverse level by level, titles and namespaces),
from random sources. The baseline runs the original's ``db::kg_query`` CTE on the current links. The original's
budgets: p95 ≤ 100 ms at depth 3, ≤ 250 ms at depth 5. Also measured: the same depth-3 query "as of" an offset
in the middle of the build (time travel). Writes ``bench_graph.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.report import Figure, render_table, to_json, write_json
from bench.stats import Samples, Summary
from producers.runtime.node import Node, NodeConfig
from schemas import Memory
from schemas.events import Link, LinkCreated, MemoryStored

__all__ = ["FULL", "QUICK", "Sizes", "main", "run"]

DEPTH3_P95_MS = 100.0
DEPTH5_P95_MS = 250.0
BATCH = 1000
DEPTHS = (1, 3, 5)


@dataclass(frozen=True)
class Sizes:
    memories: int
    links: int
    queries: int


QUICK = Sizes(memories=1_000, links=2_000, queries=40)
FULL = Sizes(memories=50_000, links=100_000, queries=300)

# The original's db::kg_query (src/db.rs), on this read model's current links and graph nodes.
BASELINE_CTE = """
WITH RECURSIVE traversal(target_id, relation, valid_from, valid_until, observed_by, link_created_at, depth, path)
AS (
    SELECT l.target_id, l.relation, l.valid_from, l.valid_until, l.observed_by, l.created_at, 1,
           json_array(l.source_id, l.target_id)
    FROM graph_links l WHERE l.source_id = :source AND l.until_offset IS NULL
    UNION ALL
    SELECT l.target_id, l.relation, l.valid_from, l.valid_until, l.observed_by, l.created_at, t.depth + 1,
           json_insert(t.path, '$[' || json_array_length(t.path) || ']', l.target_id)
    FROM graph_links l JOIN traversal t ON l.source_id = t.target_id
    WHERE t.depth < :depth AND l.until_offset IS NULL
      AND NOT EXISTS (SELECT 1 FROM json_each(t.path) WHERE value = l.target_id)
)
SELECT t.target_id, t.relation, t.valid_from, t.valid_until, t.observed_by, m.title, m.namespace, t.depth,
       (SELECT group_concat(value, '->') FROM json_each(t.path))
FROM traversal t JOIN graph_nodes m ON m.id = t.target_id AND m.until_offset IS NULL
ORDER BY t.depth ASC, COALESCE(t.valid_from, t.link_created_at) ASC, t.link_created_at ASC
LIMIT 200
"""


@dataclass
class Results:
    sizes: Sizes
    build_s: float = 0.0
    events: int = 0
    ours: dict[int, Summary] | None = None
    baseline: dict[int, Summary] | None = None
    as_of: Summary | None = None
    rows: dict[int, float] | None = None


def _memory(n: int, now: str) -> Memory:
    return Memory(id=str(uuid.UUID(int=n + 1)), tier="long", namespace=f"bench/{n % 50}", title=f"memory {n}",
                  content="graph bench", tags=[], priority=5, confidence=1.0, source="api", access_count=0,
                  created_at=now, updated_at=now, metadata={"agent_id": "bench", "scope": "collective"})


async def _build(node: Node, sizes: Sizes, rng: random.Random) -> tuple[list[str], int]:
    """Memories, then random links (no self links); returns the ids and the offset halfway through the links."""
    now = "2026-01-01T00:00:00+00:00"
    memories = [_memory(n, now) for n in range(sizes.memories)]
    for start in range(0, len(memories), BATCH):
        await node.writer.append([(MemoryStored(m), m.namespace) for m in memories[start:start + BATCH]],
                                 actor="bench")
    ids = [m.id for m in memories]
    seen: set[tuple[str, str]] = set()
    links: list[Link] = []
    while len(links) < sizes.links:
        src, dst = rng.choice(ids), rng.choice(ids)
        if src != dst and (src, dst) not in seen:
            seen.add((src, dst))
            at = f"2026-01-01T{len(links) // 3600 % 24:02d}:{len(links) // 60 % 60:02d}:{len(links) % 60:02d}+00:00"
            links.append(Link(src, dst, "related_to", created_at=at, valid_from=at, observed_by="bench"))
    middle = 0
    for start in range(0, len(links), BATCH):
        write = await node.writer.append([(LinkCreated(lk), "bench") for lk in links[start:start + BATCH]],
                                         actor="bench")
        if start < len(links) // 2:
            middle = write.offset or middle
    return ids, middle


async def _ours(node: Node, sources: list[str], depth: int, *, as_of: int | None = None) -> tuple[Summary, float]:
    samples, rows = Samples(), 0
    for source in sources:
        with samples.one():
            _, found = await node.graph.kg_query(source, max_depth=depth, as_of=as_of)
        rows += len(found)
    return samples.summary(), rows / len(sources)


def _baseline(path: Path, sources: list[str], depth: int) -> Summary:
    db = sqlite3.connect(path)
    try:
        samples = Samples()
        for source in sources:
            with samples.one():
                db.execute(BASELINE_CTE, {"source": source, "depth": depth}).fetchall()
        return samples.summary()
    finally:
        db.close()


async def _run(sizes: Sizes, work: Path) -> Results:
    rng = random.Random(7)
    results = Results(sizes)
    node = await Node.open(NodeConfig(data_dir=work / "node", embedder="off"))
    await node.start()
    try:
        started = time.perf_counter()
        ids, middle = await _build(node, sizes, rng)
        results.build_s = time.perf_counter() - started
        results.events = sizes.memories + sizes.links
        sources = [rng.choice(ids) for _ in range(sizes.queries)]
        warm = [rng.choice(ids) for _ in range(20)]
        await _ours(node, warm, 5)
        _baseline(work / "node" / "readmodel.db", warm, 5)
        results.ours, results.baseline, results.rows = {}, {}, {}
        for depth in DEPTHS:
            results.ours[depth], results.rows[depth] = await _ours(node, sources, depth)
            results.baseline[depth] = _baseline(work / "node" / "readmodel.db", sources, depth)
        results.as_of, _ = await _ours(node, sources, 3, as_of=middle)
    finally:
        await node.close()
    return results


def figures(r: Results) -> list[Figure]:
    assert r.ours is not None and r.baseline is not None and r.as_of is not None
    targets = {3: DEPTH3_P95_MS, 5: DEPTH5_P95_MS}
    out = [Figure(f"kg_query_d{d}_p95_ms", f"kg_query depth {d} p95 (vs recursive CTE)", "ms", r.ours[d].p95_ms,
                  baseline=r.baseline[d].p95_ms, target=targets.get(d)) for d in DEPTHS]
    out.append(Figure("kg_query_d3_as_of_p95_ms", "kg_query depth 3 as of mid-build (vs now)", "ms",
                      r.as_of.p95_ms, baseline=r.ours[3].p95_ms, target=DEPTH3_P95_MS))
    out.append(Figure("build_events_per_s", "graph build (signed events, projected)", "ev/s",
                      r.events / r.build_s if r.build_s else 0.0, higher_is_better=True))
    return out


def run(sizes: Sizes, work: Path) -> Results:
    return asyncio.run(_run(sizes, work))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_graph", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test, a few seconds)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where to write the JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-graph-") as work:
        results = run(sizes, Path(work))
    figs = figures(results)
    meta: dict[str, Any] = {"quick": args.quick, "sizes": asdict(sizes), "duration_s": round(time.perf_counter()
                                                                                             - started, 1),
                            "load_avg_1m_before": load_before, "load_avg_1m_after": os.getloadavg()[0],
                            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                            "cpus": os.cpu_count()}
    raw = {"ours": {d: asdict(s) for d, s in (results.ours or {}).items()},
           "baseline": {d: asdict(s) for d, s in (results.baseline or {}).items()},
           "as_of": asdict(results.as_of) if results.as_of else None, "mean_rows": results.rows,
           "build_s": results.build_s}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "bench_graph.json", to_json(figs, meta, raw))
    print(f"\nai-memory-es graph benchmark — {sizes.memories} memories, {sizes.links} links, {sizes.queries} "
          f"queries per depth (mean rows per query: "
          f"{', '.join(f'd{d} {n:.0f}' for d, n in (results.rows or {}).items())})\n")
    print(render_table(figs))
    print(f"\nwrote {args.out / 'bench_graph.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
