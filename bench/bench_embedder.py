"""Embedder benchmark: what the OpenAI-compatible embedding API costs against the model in the process, and how
batching hides the link's latency on bulk ingest. One run, four settings of the node under test, measured in
turn, round after round (the figures are each setting's medians over the rounds):

    python -m bench.bench_embedder [--quick] [--out bench/results]

- ``local``: all-MiniLM-L6-v2 in the node's process (the baseline of every ratio);
- ``remote``: ``--embedder http://127.0.0.1:P/v1`` pointing at a second node (``bench/server.py``, its own
  process, its local model) serving ``POST /v1/embeddings``, on loopback;
- ``remote +50 ms`` and ``remote +150 ms``: the same service behind ``infra/cluster/wan_proxy.py`` (a process that
  holds every byte half the delay in each direction: that much added round-trip time per request).

For each: bulk ingest (``MemoryService.bulk_store``, batches of 500: embed, sign, append, project) in
memories/s; single stores (``MemoryService.store``, one caller) p50/p95; hybrid recall (``MemoryService.recall``,
the query embedded through the same embedder) p50/p95. Target: bulk ingest through the remote embedder at +50 ms
at least 0.8x the local model's rate. Both processes share this machine's cores: on loopback the remote
setting pays the HTTP and JSON work on top of the same embedding work.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_semantic import keyword_queries, sentences
from bench.report import Figure, render_table
from bench.server import running_server
from bench.stats import Samples, Summary
from infra.cluster.wan_proxy import DelayProxy
from infra.embed import EmbedderSettings
from producers.input.commands import CreateCommand, parse_recall
from producers.runtime.node import Node, NodeConfig

__all__ = ["FULL", "QUICK", "Sizes", "main", "run"]

BULK = 500
INGEST_RATIO_MIN = 0.80


@dataclass(frozen=True)
class Sizes:
    bulk: int
    singles: int
    recalls: int
    rounds: int  # every setting once per round, in turn: a load that drifts weighs on all alike


QUICK = Sizes(bulk=192, singles=12, recalls=12, rounds=1)
FULL = Sizes(bulk=1_000, singles=50, recalls=50, rounds=3)


@dataclass(frozen=True)
class Setting:
    name: str
    embedder: str  # "local" or the service's base URL
    delay_ms: float = 0.0


@dataclass(frozen=True)
class Measured:
    setting: Setting
    bulk_per_s: float
    store: Summary
    recall: Summary
    recall_modes: list[str]


def _commands(pairs: Sequence[tuple[str, str]], namespace: str) -> list[CreateCommand | Exception]:
    return [CreateCommand(title=t, content=c, tier="long", namespace=namespace) for t, c in pairs]


async def _timed(calls: Sequence[Callable[[], Awaitable[Any]]]) -> tuple[Summary, list[Any]]:
    samples, results = Samples(), []
    for call in calls:
        with samples.one():
            results.append(await call())
    return samples.summary(), results


async def measure(setting: Setting, root: Path, sizes: Sizes, cache: Path | None) -> Measured:
    """One fresh node with ``setting``'s embedder: bulk ingest, then single stores, then recalls."""
    config = NodeConfig(
        data_dir=Path(tempfile.mkdtemp(prefix=f"{setting.name.replace(' ', '_')}-", dir=root)),
        embedder=setting.embedder,
        model_cache=cache,
        embedding=EmbedderSettings(dim=384 if setting.embedder != "local" else None),
    )
    node = await Node.open(config)
    try:
        await node.start()
        assert node.semantic.ready, node.semantic.unavailable
        await node.service.bulk_store(_commands(sentences(32, seed=99), "warmup"), agent_id="bench")
        pairs = sentences(sizes.bulk, seed=3)
        t0 = time.perf_counter()
        for start in range(0, len(pairs), BULK):
            _, errors, _ = await node.service.bulk_store(
                _commands(pairs[start : start + BULK], "bulk"), agent_id="bench"
            )
            assert not errors, errors[:3]
        bulk_per_s = len(pairs) / (time.perf_counter() - t0)
        missing = len(pairs) + 32 - node.service.queries.vector_count()
        assert missing == 0, f"{missing} memories stored without a vector under {setting.name}"
        singles = [
            CreateCommand(title=t, content=c, tier="long", namespace="single")
            for t, c in sentences(sizes.singles, seed=4)
        ]
        store, _ = await _timed([functools.partial(node.service.store, cmd, agent_id="bench") for cmd in singles])
        contexts = keyword_queries(pairs, sizes.recalls)
        queries = [parse_recall({"context": q, "limit": 10}) for q in contexts]
        recall, results = await _timed([functools.partial(node.service.recall, q, agent_id="bench") for q in queries])
        return Measured(setting, bulk_per_s, store, recall, sorted({r.mode for r in results}))
    finally:
        await node.close()


@contextmanager
def _settings(root: Path) -> Iterator[list[Setting]]:
    """The service node and the two delaying proxies in front of it, for the whole run."""
    with running_server(root / "service") as service:
        target = service.removeprefix("http://")
        proxies = [DelayProxy(target, delay, root) for delay in (50.0, 150.0)]
        try:
            for proxy in proxies:
                proxy.start()
            yield [
                Setting("local", "local"),
                Setting("remote", f"{service}/v1"),
                *(
                    Setting(f"remote +{p.delay_ms:.0f} ms", f"http://127.0.0.1:{p.port}/v1", p.delay_ms)
                    for p in proxies
                ),
            ]
        finally:
            for proxy in proxies:
                proxy.stop()


#: (key, label, unit, higher is better) of each figure of a setting.
_METRICS = (
    ("bulk_per_s", "bulk ingest", "mem/s", True),
    ("store_p50", "store p50", "ms", False),
    ("store_p95", "store p95", "ms", False),
    ("recall_p50", "recall p50", "ms", False),
    ("recall_p95", "recall p95", "ms", False),
)


def _metrics(m: Measured) -> dict[str, float]:
    return {
        "bulk_per_s": m.bulk_per_s,
        "store_p50": m.store.p50_ms,
        "store_p95": m.store.p95_ms,
        "recall_p50": m.recall.p50_ms,
        "recall_p95": m.recall.p95_ms,
    }


def medians(results: list[Measured]) -> dict[str, dict[str, float]]:
    """Per setting (in the order first measured), the median of each figure over the rounds."""
    rounds: dict[str, list[dict[str, float]]] = {}
    for m in results:
        rounds.setdefault(m.setting.name, []).append(_metrics(m))
    return {
        name: {key: statistics.median(r[key] for r in runs) for key, *_ in _METRICS} for name, runs in rounds.items()
    }


def figures(settings: list[Setting], values: dict[str, dict[str, float]]) -> list[Figure]:
    base = values[settings[0].name]
    out: list[Figure] = []
    for setting in settings:
        name = "".join(c if c.isalnum() else "_" for c in setting.name)
        for key, label, unit, higher in _METRICS:
            target = INGEST_RATIO_MIN * base[key] if key == "bulk_per_s" and setting.delay_ms == 50.0 else None
            out.append(
                Figure(
                    f"{name}_{key}",
                    f"{label}, {setting.name}",
                    unit,
                    values[setting.name][key],
                    None if setting.embedder == "local" else base[key],
                    higher_is_better=higher,
                    target=target,
                )
            )
    return out


async def run(sizes: Sizes, *, cache: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-embedder-") as tmp:
        root = Path(tmp)
        with _settings(root) as settings:
            results = [await measure(s, root, sizes, cache) for _ in range(sizes.rounds) for s in settings]
    values = medians(results)
    rows = figures(settings, values)
    print(render_table(rows))
    ratio = values[settings[2].name]["bulk_per_s"] / values[settings[0].name]["bulk_per_s"]
    print(
        f"bulk ingest ratio remote +50 ms / local (medians of {sizes.rounds} rounds): {ratio:.2f} "
        f"(target >= {INGEST_RATIO_MIN})"
    )
    return {
        "meta": {
            "quick": sizes == QUICK,
            "sizes": sizes.__dict__,
            "bulk_batch": BULK,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "settings": [
            {
                "name": s.name,
                "embedder": "local" if s.embedder == "local" else "remote",
                "delay_ms": s.delay_ms,
                "median": values[s.name],
                "rounds": [_metrics(m) for m in results if m.setting == s],
                "recall_modes": sorted({mode for m in results if m.setting == s for mode in m.recall_modes}),
            }
            for s in settings
        ],
        "ratio_remote_50ms_vs_local": ratio,
        "figures": {f.key: {"value": f.value, "baseline": f.baseline, "passed": f.passed} for f in rows},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_embedder", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (the smoke test)")
    parser.add_argument("--out", default="bench/results", help="where bench_embedder.json goes")
    args = parser.parse_args(argv)
    results = asyncio.run(run(QUICK if args.quick else FULL))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_embedder.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
