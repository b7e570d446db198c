"""Core benchmark: store, recall and rebuild on the event-sourced node, against a plain SQLite + FTS5 baseline.

    python -m bench.bench_core [--quick] [--out bench/results]

Prints a table (figure, ours, baseline, overhead, target, PASS/FAIL) and writes ``bench_core.json`` and
``bench_core.svg`` to ``--out``. ``--quick`` uses small sizes (smoke test); the full run takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.baseline import BaselineDB, draft_row
from bench.chart import Panel, write_svg
from bench.corpus import Corpus, Draft
from bench.phases import BenchNode, baseline_rebuild, baseline_recall, baseline_store, http_store, inprocess_store
from bench.report import Figure, render_table, to_json, write_json
from bench.stats import Summary
from schemas import now_ts

__all__ = ["FULL", "QUICK", "Sizes", "main", "run"]

STORE_P95_MS = 5.0
RECALL_P95_MS = 20.0
REBUILD_EVENTS_PER_S = 20_000.0
MAX_OVERHEAD = 2.0
# The core benchmark measures the keyword path: no embedding model, whatever is installed (inherited by the
# HTTP server's process). Nodes without an embedder ignore the variable.
EMBEDDER_ENV = "AI_MEMORY_EMBEDDER"
# One benchmark agent stores thousands of memories over HTTP: lift its daily quota (1000), which is not measured.
QUOTA_ENV = "AI_MEMORY_MAX_MEMORIES_PER_DAY"
BUSY_LOAD = 0.7


@dataclass(frozen=True)
class Sizes:
    stores: int
    http_stores: int
    warmup: int
    recall_sizes: tuple[int, int]
    queries: int
    late_stores: int


QUICK = Sizes(stores=200, http_stores=150, warmup=20, recall_sizes=(2_000, 5_000), queries=100, late_stores=100)
FULL = Sizes(stores=5_000, http_stores=3_000, warmup=100, recall_sizes=(10_000, 100_000), queries=500,
             late_stores=500)


@dataclass(frozen=True)
class RecallRun:
    loaded_from: int
    size: int
    load_s: float
    recall: Summary
    query_only: Summary
    baseline: Summary
    median_matches: float


@dataclass
class Results:
    sizes: Sizes
    store: Summary | None = None
    store_http: Summary | None = None
    store_base: Summary | None = None
    recall: list[RecallRun] = field(default_factory=list)
    late_store: Summary | None = None
    rebuild: tuple[int, float] = (0, 0.0)
    rebuild_base: tuple[int, float] = (0, 0.0)


def _k(n: int) -> str:
    return f"{n // 1000}k" if n and n % 1000 == 0 else str(n)


# -- running ---------------------------------------------------------------------------------------------


async def _recall_at(bench: BenchNode, base: BaselineDB, corpus: Corpus, loaded: list[Draft], new: list[Draft],
                     sizes: Sizes) -> RecallRun:
    start, size = len(loaded), len(loaded) + len(new)
    load_s = await bench.load(new, desc=f"load to {_k(size)}")
    base.insert_rows([draft_row(d, now=now_ts()) for d in new])
    loaded.extend(new)
    warm, contexts = corpus.queries(loaded, 20, seed=-size), corpus.queries(loaded, sizes.queries, seed=size)
    await bench.recall(warm, desc="recall warm-up")
    recall = await bench.recall(contexts, desc=f"recall @{_k(size)}")
    query_only = bench.query_only(contexts, desc=f"query @{_k(size)}")
    baseline_recall(base, warm, desc="baseline warm-up")
    baseline = baseline_recall(base, contexts, desc=f"baseline recall @{_k(size)}")
    matches = statistics.median(base.matches(c) for c in contexts)
    return RecallRun(start, size, load_s, recall, query_only, baseline, matches)


async def _recall_and_rebuild(work: Path, corpus: Corpus, first: int, results: Results) -> None:
    sizes = results.sizes
    bench = await BenchNode.open(work / "node-recall")
    base = BaselineDB(work / "baseline-recall.db", synchronous="NORMAL")
    try:
        loaded: list[Draft] = []
        for size in sizes.recall_sizes:
            new = corpus.drafts(first + len(loaded), first + size)
            results.recall.append(await _recall_at(bench, base, corpus, loaded, new, sizes))
        late = corpus.drafts(first + len(loaded), first + len(loaded) + sizes.late_stores)
        results.late_store = await bench.store(late, desc=f"store @{_k(len(loaded))}")
        results.rebuild = await bench.rebuild(work / "rebuilt.db")
    finally:
        base.close()
        await bench.close()
    results.rebuild_base = baseline_rebuild(work / "rebuilt.db", work / "baseline-rebuild.db")


def run(sizes: Sizes, work: Path) -> Results:
    """Every phase, in order, each on fresh files under ``work``."""
    corpus = Corpus()
    results = Results(sizes)
    drafts = corpus.drafts(0, sizes.warmup + max(sizes.stores, sizes.http_stores))
    results.store = asyncio.run(inprocess_store(work / "node-store", drafts[:sizes.warmup + sizes.stores],
                                                warmup=sizes.warmup))
    results.store_http = http_store(work / "node-http", drafts[:sizes.warmup + sizes.http_stores],
                                    warmup=sizes.warmup)
    results.store_base = baseline_store(work / "baseline-store.db", drafts[:sizes.warmup + sizes.stores],
                                        warmup=sizes.warmup)
    asyncio.run(_recall_and_rebuild(work, corpus, len(drafts), results))
    return results


# -- figures ---------------------------------------------------------------------------------------------


def _store_figures(r: Results) -> list[Figure]:
    ours, http, base = r.store, r.store_http, r.store_base
    assert ours is not None and http is not None and base is not None
    return [
        Figure("store_p50_ms", "store p50, in-process", "ms", ours.p50_ms, base.p50_ms, max_overhead=MAX_OVERHEAD),
        Figure("store_p95_ms", "store p95, in-process", "ms", ours.p95_ms, base.p95_ms, target=STORE_P95_MS,
               max_overhead=MAX_OVERHEAD),
        Figure("store_per_s", "store throughput, in-process", "/s", ours.per_sec, base.per_sec,
               higher_is_better=True, max_overhead=MAX_OVERHEAD),
        Figure("store_http_p50_ms", "store p50, HTTP", "ms", http.p50_ms, base.p50_ms),
        Figure("store_http_p95_ms", "store p95, HTTP", "ms", http.p95_ms, base.p95_ms),
        Figure("store_http_per_s", "store throughput, HTTP", "/s", http.per_sec, base.per_sec, higher_is_better=True),
    ]


def _recall_figures(run_: RecallRun, name: str, *, with_target: bool) -> list[Figure]:
    at = f"@{_k(run_.size)}"
    target = RECALL_P95_MS if with_target else None
    rate = (run_.size - run_.loaded_from) / run_.load_s
    return [
        Figure(f"recall_{name}_p50_ms", f"recall p50 {at}", "ms", run_.recall.p50_ms, run_.baseline.p50_ms),
        Figure(f"recall_{name}_p95_ms", f"recall p95 {at}", "ms", run_.recall.p95_ms, run_.baseline.p95_ms,
               target=target),
        Figure(f"query_{name}_p95_ms", f"  FTS query alone p95 {at}", "ms", run_.query_only.p95_ms,
               run_.baseline.p95_ms),
        Figure(f"matches_{name}", f"  rows matched per query {at} (median)", "rows", run_.median_matches),
        Figure(f"load_{name}_s", f"  bulk load {_k(run_.loaded_from)} -> {_k(run_.size)} ({rate:,.0f}/s)", "s",
               run_.load_s),
    ]


def _late_and_rebuild_figures(r: Results) -> list[Figure]:
    assert r.late_store is not None and r.store_base is not None
    at = f"@{_k(r.sizes.recall_sizes[1])}"
    events, seconds = r.rebuild
    rows, base_seconds = r.rebuild_base
    return [
        Figure("store_large_p95_ms", f"store p95, in-process {at}", "ms", r.late_store.p95_ms, r.store_base.p95_ms),
        Figure("rebuild_per_s", f"rebuild ({events:,} events)", "ev/s", events / seconds, rows / base_seconds,
               higher_is_better=True, target=REBUILD_EVENTS_PER_S),
    ]


def figures(r: Results) -> list[Figure]:
    small, large = r.recall
    return [*_store_figures(r), *_recall_figures(small, "small", with_target=False),
            *_recall_figures(large, "large", with_target=True), *_late_and_rebuild_figures(r)]


def _panels(figs: list[Figure]) -> list[Panel]:
    by_key = {f.key: f for f in figs}

    def pick(*keys: str) -> list[Figure]:
        return [by_key[k] for k in keys]

    return [
        Panel("Store latency (ms)", pick("store_p50_ms", "store_p95_ms", "store_http_p50_ms", "store_http_p95_ms",
                                         "store_large_p95_ms")),
        Panel("Recall latency (ms)", pick("recall_small_p50_ms", "recall_small_p95_ms", "recall_large_p50_ms",
                                          "recall_large_p95_ms", "query_large_p95_ms")),
        Panel("Store throughput (stores/s, one writer)", pick("store_per_s", "store_http_per_s")),
        Panel("Rebuild (events/s)", pick("rebuild_per_s")),
    ]


# -- output ----------------------------------------------------------------------------------------------


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent)
    return done.stdout.strip()


def _meta(sizes: Sizes, quick: bool, seconds: float, load_before: float) -> dict[str, Any]:
    return {"quick": quick, "sizes": asdict(sizes), "duration_s": round(seconds, 1), "finished_at": now_ts(),
            "load_avg_1m_before": load_before, "load_avg_1m_after": os.getloadavg()[0],
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "platform": platform.platform(),
            "cpus": os.cpu_count(), "commit": _git("rev-parse", "--short", "HEAD") or None,
            "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "embedder": os.environ.get(EMBEDDER_ENV)}


def _raw(r: Results) -> dict[str, Any]:
    return {"store_inprocess": asdict(r.store) if r.store else None,
            "store_http": asdict(r.store_http) if r.store_http else None,
            "store_baseline": asdict(r.store_base) if r.store_base else None,
            "recall": [asdict(x) for x in r.recall],
            "store_late": asdict(r.late_store) if r.late_store else None,
            "rebuild": {"events": r.rebuild[0], "seconds": r.rebuild[1]},
            "rebuild_baseline": {"rows": r.rebuild_base[0], "seconds": r.rebuild_base[1]}}


def report(r: Results, out: Path, *, quick: bool, seconds: float, load_before: float) -> list[Figure]:
    figs = figures(r)
    out.mkdir(parents=True, exist_ok=True)
    meta = _meta(r.sizes, quick, seconds, load_before)
    write_json(out / "bench_core.json", to_json(figs, meta, _raw(r)))
    dirty = " + uncommitted changes" if meta["uncommitted_changes"] else ""
    title = f"ai-memory-es core benchmark ({'quick' if quick else 'full'}, commit {meta['commit']}{dirty})"
    write_svg(out / "bench_core.svg", title, _panels(figs))
    s = r.sizes
    print(f"\nai-memory-es core benchmark — {s.stores} stores in-process, {s.http_stores} over HTTP, "
          f"recall at {_k(s.recall_sizes[0])} and {_k(s.recall_sizes[1])} ({s.queries} queries each), "
          f"{seconds:.0f}s total\n")
    print(render_table(figs))
    # This run alone keeps about one CPU busy, so the load after it counts one more process than before.
    if load_before > BUSY_LOAD or meta["load_avg_1m_after"] > BUSY_LOAD + 1:
        print(f"\nwarning: the machine was busy (1-minute load average {load_before:.1f} before, "
              f"{meta['load_avg_1m_after']:.1f} after, on {os.cpu_count()} CPUs); other processes shared the CPU "
              "and the disk, so these figures are pessimistic")
    print(f"\nwrote {out / 'bench_core.json'} and {out / 'bench_core.svg'}")
    return figs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test, well under a minute)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where to write JSON and SVG")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    os.environ[EMBEDDER_ENV] = "off"
    os.environ[QUOTA_ENV] = str(10**9)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-core-") as work:
        results = run(sizes, Path(work))
    report(results, args.out, quick=args.quick, seconds=time.perf_counter() - started, load_before=load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
