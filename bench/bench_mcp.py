"""MCP figures: tools/list size in cl100k tokens per profile, and the latency of memory_store and memory_recall
through a real ``ai-memory mcp`` stdio subprocess driven by the official MCP client.

    python -m bench.bench_mcp            # 500 stores, 500 recalls
    python -m bench.bench_mcp --quick    # 50 of each (a smoke run)
    python -m bench.bench_mcp --json     # machine-readable

Latency is measured per call at the client (JSON-RPC round trip included), one call at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from producers.tools.registry import PROFILE_NAMES, TOOLS_VERSION, Profile, tools_for_profile
from projectors import count_tokens

__all__ = ["main", "tools_list_tokens"]

_WORDS = ("deploy", "postgres", "redis", "cache", "friday", "rollback", "schema", "index", "latency", "queue",
          "kafka", "nats", "replica", "backup", "restore", "token", "budget", "agent", "memory", "vector")


def tools_list_tokens() -> dict[str, dict[str, int]]:
    """cl100k tokens of each profile's tools/list result (compact JSON, as the original's CI gate counts it)."""
    out = {}
    for name in PROFILE_NAMES:
        tools = tools_for_profile(Profile.parse(name))
        text = json.dumps({"tools": tools, "toolsVersion": TOOLS_VERSION}, separators=(",", ":"))
        out[name] = {"tools": len(tools), "tokens": count_tokens(text)}
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"count": len(ordered), "p50_ms": round(statistics.median(ordered), 3), "p95_ms": round(cut[94], 3),
            "max_ms": round(ordered[-1], 3)}


def _sentence(i: int) -> str:
    return " ".join(_WORDS[(i * k + k) % len(_WORDS)] for k in range(1, 9))


async def _timed(client: Client, name: str, args: dict[str, Any]) -> float:
    start = time.perf_counter()
    result = await client.call_tool(name, args)
    elapsed = (time.perf_counter() - start) * 1000
    if result.is_error:
        msg = f"{name} failed: {result.content}"
        raise RuntimeError(msg)
    return elapsed


async def latencies(data_dir: Path, n: int) -> dict[str, dict[str, float]]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "producers.cli.main", "mcp", "--data-dir",
                                                                str(data_dir)], env=dict(os.environ))
    async with Client(params) as client:
        for i in range(5):  # warm-up: imports, first queries, caches
            await _timed(client, "memory_store", {"title": f"warm {i}", "content": _sentence(i)})
            await _timed(client, "memory_recall", {"context": _sentence(i)})
        stores = [await _timed(client, "memory_store", {"title": f"note {i}", "content": _sentence(i),
                                                        "namespace": f"bench/{i % 10}"}) for i in range(n)]
        recalls = [await _timed(client, "memory_recall", {"context": _sentence(i * 7)}) for i in range(n)]
    return {"memory_store": _summary(stores), "memory_recall": _summary(recalls)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="50 calls of each instead of 500")
    parser.add_argument("-n", type=int, default=None, help="calls of each tool")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    n = args.n or (50 if args.quick else 500)
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        lat = asyncio.run(latencies(Path(tmp) / "data", n))
    sizes = tools_list_tokens()
    if args.json:
        print(json.dumps({"tools_list": sizes, "stdio": lat,
                          "embedder": os.environ.get("AI_MEMORY_EMBEDDER", "auto")}, indent=2))
        return 0
    for name, row in sizes.items():
        print(f"tools/list {name:<6} {row['tools']:>3} tools  {row['tokens']:>5} cl100k tokens")
    for name, s in lat.items():
        print(f"{name:<14} n={s['count']:<4} p50 {s['p50_ms']:.2f} ms  p95 {s['p95_ms']:.2f} ms  "
              f"max {s['max_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
