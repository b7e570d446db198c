"""Scope-filter benchmark: what scope visibility (``as_agent``) costs recall.

    python -m bench.bench_scopes [--quick] [--out bench/results]

Loads N memories (100k; 5k with ``--quick``) spread over 1,000 namespaces (``o<i>/u<j>/t<k>``, ten of each)
with random scopes, then times, query by query and interleaved so both see the same machine:

* recall (``MemoryService.recall``, keyword path) with ``as_agent`` (filter on) against the same query without
  it (filter off, the same-run baseline); target: on / off ≤ 1.2 at p95;
* the read model's keyword query alone, on and off (the filter's own cost, without the touch event's write);
* reads without ``as_agent`` while 10 namespaces require it (those subtrees left out), against no requirement;
* reads as an agent (``X-Agent-Id``: other agents' private memories left out), against an anonymous read;
* the vector index's filtered search (semantic candidates) on synthetic unit vectors, on and off.

Writes ``bench_scopes.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import Corpus, Draft
from bench.phases import BULK_BATCH, progress
from bench.report import Figure, render_table, to_json, write_json
from bench.stats import Samples, Summary
from producers.input.commands import parse_create, parse_recall
from producers.memory.ranking import ann_k
from producers.runtime.node import Node, NodeConfig
from projectors import HnswIndex, MemoryFilter, VectorFilter
from projectors.hnsw.index import Entry
from schemas import SCOPES, now_ts

__all__ = ["FULL", "QUICK", "Sizes", "main"]

MAX_RATIO = 1.2
AGENT = "bench"


@dataclass(frozen=True)
class Sizes:
    memories: int
    queries: int
    vectors: int
    dim: int


QUICK = Sizes(memories=5_000, queries=200, vectors=5_000, dim=64)
FULL = Sizes(memories=100_000, queries=1_000, vectors=100_000, dim=384)


def namespaces() -> list[str]:
    return [f"o{i}/u{j}/t{k}" for i in range(10) for j in range(10) for k in range(10)]


def scoped(drafts: list[Draft], rng: random.Random) -> list[dict[str, Any]]:
    spaces = namespaces()
    return [{**d.body(), "namespace": rng.choice(spaces), "scope": rng.choice(SCOPES)} for d in drafts]


async def load(node: Node, bodies: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    now = now_ts()
    for i in progress(range(0, len(bodies), BULK_BATCH), "load", (len(bodies) + BULK_BATCH - 1) // BULK_BATCH):
        await node.service.bulk_store([parse_create(b, now=now) for b in bodies[i:i + BULK_BATCH]], agent_id=AGENT)
    return time.perf_counter() - start


def paired(count: int, off: Callable[[int], object], on: Callable[[int], object]) -> tuple[Summary, Summary]:
    """Time ``off(i)`` and ``on(i)`` for each i, alternating which goes first."""
    a, b = Samples(), Samples()
    for i in range(count):
        order = ((a, off), (b, on)) if i % 2 == 0 else ((b, on), (a, off))
        for samples, fn in order:
            with samples.one():
                fn(i)
    return a.summary(), b.summary()


async def paired_async(count: int, off: Callable[[int], Any], on: Callable[[int], Any]) -> tuple[Summary, Summary]:
    a, b = Samples(), Samples()
    for i in progress(range(count), "recall", count):
        order = ((a, off), (b, on)) if i % 2 == 0 else ((b, on), (a, off))
        for samples, fn in order:
            with samples.one():
                await fn(i)
    return a.summary(), b.summary()


async def measure_recall(node: Node, contexts: list[str], agents: list[str]) -> dict[str, tuple[Summary, Summary]]:
    service = node.service
    queries = [parse_recall({"context": c, "limit": 10, "mode": "keyword"}) for c in contexts]

    async def off(i: int) -> None:
        await service.recall(queries[i], agent_id=AGENT)

    async def on(i: int) -> None:
        q = queries[i]
        await service.recall(replace(q, filters=replace(q.filters, as_agent=agents[i])), agent_id=AGENT)

    out = {"recall": await paired_async(len(queries), off, on)}
    flt = MemoryFilter(now=now_ts())
    out["query"] = paired(len(contexts), lambda i: service.queries.recall_keyword(contexts[i], flt, limit=10),
                          lambda i: service.queries.recall_keyword(
                              contexts[i], replace(flt, as_agent=agents[i]), limit=10))
    hidden = replace(flt, hidden_prefixes=tuple(f"o{i}/u{i}" for i in range(10)))
    out["hidden"] = paired(len(contexts), lambda i: service.queries.recall_keyword(contexts[i], flt, limit=10),
                           lambda i: service.queries.recall_keyword(contexts[i], hidden, limit=10))
    # The owner rule (X-Agent-Id, #910): a reader that wrote none of them loses the private memories.
    owner = replace(flt, caller="reader")
    out["owner"] = paired(len(contexts), lambda i: service.queries.recall_keyword(contexts[i], flt, limit=10),
                          lambda i: service.queries.recall_keyword(contexts[i], owner, limit=10))
    return out


def measure_vectors(sizes: Sizes, bodies: list[dict[str, Any]], agents: list[str]) -> tuple[Summary, Summary]:
    rng = np.random.default_rng(11)
    index = HnswIndex(sizes.dim, capacity=sizes.vectors)
    for start in progress(range(0, sizes.vectors, 5000), "vectors", (sizes.vectors + 4999) // 5000):
        stop = min(start + 5000, sizes.vectors)
        raw = rng.normal(size=(stop - start, sizes.dim)).astype("<f4")
        raw /= np.linalg.norm(raw, axis=1, keepdims=True)
        index.upsert([(Entry(f"v{i}", bodies[i % len(bodies)]["namespace"], bodies[i % len(bodies)]["scope"]),
                       raw[i - start].tobytes()) for i in range(start, stop)])
    queries = rng.normal(size=(len(agents), sizes.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = ann_k(10)  # what a recall of 10 asks the index for
    return paired(len(agents), lambda i: index.search(queries[i], k),
                  lambda i: index.search(queries[i], k, VectorFilter(as_agent=agents[i])))


def figures(results: dict[str, tuple[Summary, Summary]]) -> list[Figure]:
    labels = {"recall": "recall p95, as_agent on (off = baseline)",
              "query": "keyword query p95, as_agent on",
              "hidden": "keyword query p95, 10 mandatory prefixes hidden",
              "owner": "keyword query p95, X-Agent-Id (other agents' private memories left out)",
              "vectors": "vector search p95, as_agent on"}
    # The target is on recall and on the keyword query it runs; the other two are reported for the record.
    targeted = ("recall", "query")
    return [Figure(f"{key}_p95_ms", labels[key], "ms", on.p95_ms, baseline=off.p95_ms,
                   max_overhead=MAX_RATIO if key in targeted else None) for key, (off, on) in results.items()]


async def run(sizes: Sizes, work: Path) -> tuple[dict[str, tuple[Summary, Summary]], float]:
    rng = random.Random(5)
    corpus = Corpus()
    drafts = corpus.drafts(0, sizes.memories)
    bodies = scoped(drafts, rng)
    contexts = corpus.queries(drafts, sizes.queries)
    # An agent sits one level below a team namespace, so team, unit and org memories can all reach it.
    agents = [f"{rng.choice(namespaces())}/a{rng.randint(0, 9)}" for _ in range(sizes.queries)]
    node = await Node.open(NodeConfig(data_dir=work / "node", embedder="off"))
    try:
        await node.start()
        load_s = await load(node, bodies)
        results = await measure_recall(node, contexts, agents)
    finally:
        await node.close()
    results["vectors"] = measure_vectors(sizes, bodies, agents)
    return results, load_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scopes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where to write the JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-scopes-") as work:
        results, load_s = asyncio.run(run(sizes, Path(work)))
    figs = figures(results)
    raw = {key: {"off": vars(off), "on": vars(on)} for key, (off, on) in results.items()}
    meta = {"quick": args.quick, "memories": sizes.memories, "namespaces": len(namespaces()),
            "queries": sizes.queries, "vectors": sizes.vectors, "dim": sizes.dim, "load_s": load_s,
            "seconds": time.perf_counter() - started, "load_avg_1m_before": load_before,
            "load_avg_1m_after": os.getloadavg()[0], "cpus": os.cpu_count()}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "bench_scopes.json", to_json(figs, meta, raw))
    print(f"\nai-memory-es scope-filter benchmark: {sizes.memories} memories in {len(namespaces())} namespaces, "
          f"{sizes.queries} queries, {meta['seconds']:.0f}s total (load {load_s:.0f}s)\n")
    print(render_table(figs))
    print(f"\nwrote {args.out / 'bench_scopes.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
