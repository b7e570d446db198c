"""The global hive's figures (issue #16): cross-region visibility lag and regional write latency, on loopback.

A hive of three regions (a, b, c) on a NATS supercluster whose gateways go through WAN proxies adding the
round trip given (``--delays``, default 0, 50 and 150 ms; 0 is the baseline: the same proxies, no delay).
Region a runs two ai-memory nodes with quorum W = 2, region c one node. For each write, one after another:

- **regional write**: ``store`` on a node of a until it returns (W = 2: both nodes of a applied it);
- **visibility lag**: from the moment the write is issued in a until c's node has applied it (its read model,
  so a recall there finds it): a's write, the gateway hop (half the round trip), the mirror's store in c,
  c's projectors. With 0 ms links it is about the regional write itself (c applies before a's W = 2 returns).

- **convergence after a partition** (on the hive with the longest links): every link cut for
  ``--partition-s`` seconds while a and c both keep writing (one write every 50 ms each), then healed; the
  time from the heal until every node has applied every write of both sides.

One nats-server per region by default (``--servers 3`` for the real shape; nine servers and three nodes do
not fit a two-core machine's noise budget). Output: a table, and ``bench_regions.json`` under ``--out``.

    python -m bench.bench_regions [--quick] [--samples N] [--delays 0,50,150] [--servers 1] [--partition-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.report import Figure, render_table
from bench.stats import Samples
from infra.cluster.supercluster import NatsSupercluster
from producers.input.commands import parse_create
from producers.runtime.node import Node, NodeConfig
from producers.write.quorum import QuorumConfig
from schemas import load_or_create_node_key, now_ts

__all__ = ["main", "measure", "run_hive"]

REGIONS = ("a", "b", "c")
#: (node name, region, nodes of its region): two in a for W = 2, one in c to read.
NODES = (("a1", "a", 2), ("a2", "a", 2), ("c1", "c", 1))


def _trust(root: Path) -> None:
    for name, _region, _n in NODES:
        load_or_create_node_key(root / name / "keys", f"node-{name}")
    for name, _region, _n in NODES:
        for other, _r, _k in NODES:
            if other != name:
                shutil.copy(root / other / "keys" / f"node-{other}.pub", root / name / "keys")


@contextlib.asynccontextmanager
async def _nodes(hive: NatsSupercluster, root: Path) -> AsyncIterator[dict[str, Node]]:
    _trust(root)
    nodes: dict[str, Node] = {}
    try:
        for name, region, count in NODES:
            config = NodeConfig(data_dir=root / name, log_url=hive.log_url(region), node_id=f"node-{name}",
                                embedder="off", quorum=QuorumConfig(writes=count, nodes=count, timeout_ms=10000))
            nodes[name] = await Node.open(config)
            await nodes[name].start()
        yield nodes
    finally:
        for node in nodes.values():
            await node.close()


async def measure(nodes: dict[str, Node], samples: int) -> tuple[Samples, Samples]:
    """``samples`` writes in a, one after another: their latencies, and each one's lag until c applied it."""
    writes, lags = Samples(), Samples()
    writer, reader = nodes["a1"].service, nodes["c1"].service
    # A first write warms every path (mirror consumers, projectors) and is not counted.
    first = await writer.store(parse_create({"title": "warm-up", "content": "w"}, now=now_ts()), agent_id="bench")
    await reader.wait_for(first.write.clock(), timeout=60)
    for i in range(samples):
        cmd = parse_create({"title": f"hive write {i}", "content": f"written in a, read in c ({i})"}, now=now_ts())
        issued = time.perf_counter()
        with writes.one():
            stored = await writer.store(cmd, agent_id="bench")
        await reader.wait_for(stored.write.clock(), timeout=60)
        lags.seconds.append(time.perf_counter() - issued)
        if reader.queries.get(stored.memory.id) is None:
            raise RuntimeError(f"c applied the clock of {stored.memory.id} but does not hold it")
    return writes, lags


async def _write_every(node: Node, label: str, until: float, pace: float) -> int:
    count = 0
    while time.perf_counter() < until:
        cmd = parse_create({"title": f"{label} {count}", "content": f"written in {label} while cut off"}, now=now_ts())
        await node.service.store(cmd, agent_id="bench")
        count += 1
        await asyncio.sleep(pace)
    return count


async def converge_after_partition(hive: NatsSupercluster, nodes: dict[str, Node], seconds: float) -> dict[str, Any]:
    """Cut every link for ``seconds`` while a and c write, heal, and time until all nodes applied everything."""
    await asyncio.to_thread(hive.cut)
    try:
        until = time.perf_counter() + seconds
        counts = await asyncio.gather(_write_every(nodes["a1"], "a", until, 0.05),
                                      _write_every(nodes["c1"], "c", until, 0.05))
        ends = [await nodes[name].log.end_offsets() for name in ("a1", "c1")]
    finally:
        await asyncio.to_thread(hive.heal)
    healed = time.perf_counter()
    everything = {part: max(end.get(part, 0) for end in ends) for end in ends for part in end}
    for node in nodes.values():
        await node.service.wait_for(everything, timeout=300)
    return {"partition_s": seconds, "writes_a": counts[0], "writes_c": counts[1],
            "converged_s": time.perf_counter() - healed}


def run_hive(root: Path, *, delay_ms: float, servers: int, samples: int, partition_s: float = 0.0) -> dict[str, Any]:
    """One hive with ``delay_ms`` links: its figures (milliseconds), and with ``partition_s`` the convergence
    after a partition of that length."""
    with NatsSupercluster(store_dir=root / "nats", regions=REGIONS, servers_per_region=servers,
                          wan_delay_ms=delay_ms) as hive:

        async def go() -> tuple[Samples, Samples, dict[str, Any] | None]:
            async with _nodes(hive, root) as nodes:
                writes, lags = await measure(nodes, samples)
                partition = await converge_after_partition(hive, nodes, partition_s) if partition_s > 0 else None
                return writes, lags, partition

        writes, lags, partition = asyncio.run(go())
    w, lag = writes.summary(), lags.summary()
    return {"delay_ms": delay_ms, "samples": samples, "partition": partition,
            "write_p50_ms": w.p50_ms, "write_p95_ms": w.p95_ms,
            "lag_p50_ms": lag.p50_ms, "lag_p95_ms": lag.p95_ms, "lag_max_ms": lag.max_ms,
            "write_ms": [round(s * 1000, 2) for s in writes.seconds],
            "lag_ms": [round(s * 1000, 2) for s in lags.seconds]}


def figures(results: dict[str, dict[str, Any]]) -> list[Figure]:
    """Each delayed hive against the 0 ms one (same proxies, same machine, same run)."""
    base = results.get("0")
    out = []
    for key, r in results.items():
        if key == "0":
            continue
        for metric, label in (("lag_p50_ms", "visibility lag a->c p50"), ("lag_p95_ms", "visibility lag a->c p95"),
                              ("write_p95_ms", "regional write W=2 p95")):
            # A regional write must not wait on the WAN: flagged if it grows to twice the 0 ms hive's.
            bound = 2.0 if metric == "write_p95_ms" else None
            out.append(Figure(f"{metric}_{key}ms", f"{label} ({key} ms links)", "ms", r[metric],
                              baseline=base[metric] if base else None, max_overhead=bound))
        if (p := r.get("partition")) is not None:
            out.append(Figure(f"converged_after_partition_{key}ms",
                              f"converged after a {p['partition_s']:g} s partition ({p['writes_a']}+{p['writes_c']} "
                              f"writes, {key} ms links)", "s", p["converged_s"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_regions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 writes per hive")
    parser.add_argument("--samples", type=int, default=None, help="writes per hive (default 40)")
    parser.add_argument("--delays", default="0,50,150", help="round trips of the WAN links, ms (0 = baseline)")
    parser.add_argument("--servers", type=int, default=1, help="nats-servers per region (default 1)")
    parser.add_argument("--partition-s", type=float, default=None,
                        help="partition length on the last hive, 0 for none (default 30; --quick 3)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    samples = args.samples or (8 if args.quick else 40)
    partition_s = args.partition_s if args.partition_s is not None else (3.0 if args.quick else 30.0)
    delays = [float(d) for d in args.delays.split(",")]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-regions-") as tmp:
        for delay in delays:
            key = f"{delay:g}"
            results[key] = run_hive(Path(tmp) / key, delay_ms=delay, servers=args.servers, samples=samples,
                                    partition_s=partition_s if delay == delays[-1] else 0.0)
            print(f"{key} ms: lag p50 {results[key]['lag_p50_ms']:.0f} ms, write p95 "
                  f"{results[key]['write_p95_ms']:.0f} ms", file=sys.stderr, flush=True)
    print(render_table(figures(results)))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "servers": args.servers,
              "samples": samples, "results": results}
    (args.out / "bench_regions.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
