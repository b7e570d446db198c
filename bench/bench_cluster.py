"""T3 write latency: quorum writes W = 1, 2, 3 on a 3-node NATS cluster (stream replicas = 3) against the
single-node embedded log, in one run on one machine.

    python -m bench.bench_cluster [--quick] [--writes N] [--out bench/results]

Three ai-memory nodes run in this process, each with its own NATS connection, projectors and SQLite read
model, trusting each other's keys; the embedder is off (write path only). Each write is one
``MemoryService.store`` on node a, back to back: validate, sign, append (replicated by Raft to a quorum of
the stream's replicas), apply locally, then wait for W - 1 other nodes' confirmations. Prints p50/p95 and
writes/s per configuration and writes ``bench_cluster.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.stats import Samples, Summary
from infra.cluster import NatsCluster
from producers.input.commands import parse_create
from producers.runtime.node import Node, NodeConfig
from producers.write.quorum import QuorumConfig
from schemas import load_or_create_node_key, now_ts

__all__ = ["main", "run"]

NAMES = ("a", "b", "c")


def _configs(root: Path, url: str, stream: str) -> list[NodeConfig]:
    for name in NAMES:
        load_or_create_node_key(root / name / "keys", f"node-{name}")
    for name in NAMES:
        for other in (o for o in NAMES if o != name):
            shutil.copy(root / other / "keys" / f"node-{other}.pub", root / name / "keys")
    return [NodeConfig(data_dir=root / name, log_url=f"{url}/{stream}", stream=stream, replicas=3,
                       node_id=f"node-{name}", embedder="off",
                       quorum=QuorumConfig(writes=3, nodes=3, timeout_ms=5000)) for name in NAMES]


async def _writes(node: Node, n: int, label: str) -> Summary:
    samples = Samples()
    for i in range(n + 5):
        cmd = parse_create({"title": f"{label} {i} {uuid.uuid4().hex[:6]}", "content": f"bench write {i}"},
                           now=now_ts())
        if i < 5:  # warm-up: connections, first stream writes, confirmations flowing
            await node.service.store(cmd, agent_id="bench")
            continue
        with samples.one():
            await node.service.store(cmd, agent_id="bench")
    return samples.summary()


async def _cluster_runs(root: Path, writes: int) -> dict[str, Summary]:
    out: dict[str, Summary] = {}
    with NatsCluster(store_dir=root / "nats") as cluster:
        nodes = [await Node.open(c) for c in _configs(root / "nodes", cluster.url, f"bench-{uuid.uuid4().hex[:6]}")]
        try:
            for node in nodes:
                await node.start()
            writer = nodes[0]
            assert writer.service.quorum is not None
            for w in (1, 2, 3):
                writer.service.quorum.config = QuorumConfig(writes=w, nodes=3, timeout_ms=5000)
                out[f"nats_r3_w{w}"] = await _writes(writer, writes, f"w{w}")
        finally:
            for node in nodes:
                await node.close()
    return out


async def _embedded_run(root: Path, writes: int) -> Summary:
    node = await Node.open(NodeConfig(data_dir=root / "embedded", embedder="off"))
    try:
        await node.start()
        return await _writes(node, writes, "embedded")
    finally:
        await node.close()


async def run(writes: int) -> dict[str, Summary]:
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        results = {"embedded": await _embedded_run(root, writes)}
        results.update(await _cluster_runs(root, writes))
    return results


def render(results: dict[str, Summary]) -> str:
    base = results["embedded"].p50_ms or 1.0
    lines = [f"{'configuration':<14} {'p50 ms':>8} {'p95 ms':>8} {'writes/s':>9} {'p50 vs embedded':>16}"]
    for name, s in results.items():
        lines.append(f"{name:<14} {s.p50_ms:>8.2f} {s.p95_ms:>8.2f} {s.per_sec:>9.0f} {s.p50_ms / base:>15.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 writes per configuration")
    parser.add_argument("--writes", type=int, default=300, help="timed writes per configuration")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    writes = 20 if args.quick else args.writes
    results = asyncio.run(run(writes))
    print(render(results))
    args.out.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
                               "writes": writes,
                               "results": {k: {"p50_ms": s.p50_ms, "p95_ms": s.p95_ms, "p99_ms": s.p99_ms,
                                               "per_s": s.per_sec} for k, s in results.items()}}
    (args.out / "bench_cluster.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
