"""Ten concurrent agents against one node: throughput (ops/s) and p50/p95 per operation, with governance on
(enforce mode, every write decided against a ``registered``/``owner`` policy and the projected registry and
quota counters) and off (the same policies, mode ``off``) as the same-run baseline.

    python -m bench.bench_agents [--quick] [--out bench/results] [--seconds 20] [--agents 10]

Each agent is its own HTTP client (one event loop in this process) against a real ``ai-memory`` server in a
child process; an agent stores into its team namespace, updates its own memories and recalls, in a fixed mix
(40% store, 30% update, 30% recall). Prints the table and writes ``bench_agents.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.report import Figure, render_table, to_json, write_json
from bench.server import environment, running_server
from bench.stats import Samples, Summary

__all__ = ["OPS", "main", "run"]

OPS = ("store", "update", "recall")
MODE_ENV = "AI_MEMORY_GOVERNANCE_MODE"
EMBEDDER_ENV = "AI_MEMORY_EMBEDDER"
#: Governance may cost at most this much throughput (on / off); informational below that.
MAX_OVERHEAD = 1.5


@dataclass
class Run:
    mode: str
    samples: dict[str, Samples] = field(default_factory=lambda: {op: Samples() for op in OPS})
    errors: int = 0
    wall_s: float = 0.0

    @property
    def ops(self) -> int:
        return sum(len(s.seconds) for s in self.samples.values())

    @property
    def per_sec(self) -> float:
        return self.ops / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self, op: str) -> Summary:
        return self.samples[op].summary()


async def _setup(base_url: str, agents: int) -> None:
    """The same policies in both runs: the team namespace takes writes from registered agents only, deletes
    from the owner; every agent registers first."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        r = await c.post("/api/v1/namespaces/team/standard", headers={"X-Agent-Id": "lead"},
                         json={"governance": {"write": "registered", "promote": "owner", "delete": "owner"}})
        r.raise_for_status()
        for i in range(agents):
            r = await c.post("/api/v1/agents", json={"agent_id": f"agent-{i}", "agent_type": "ai:claude-opus-4.7"})
            r.raise_for_status()


async def _agent(base_url: str, name: str, run: Run, stop_at: float) -> None:
    rng = random.Random(name)
    mine: list[str] = []
    n = 0
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers={"X-Agent-Id": name}) as c:
        while loop.time() < stop_at:
            n += 1
            pick = rng.random()
            op = "store" if pick < 0.4 or not mine else "update" if pick < 0.7 else "recall"
            with run.samples[op].one():
                if op == "store":
                    r = await c.post("/api/v1/memories", json={
                        "title": f"{name} note {n}", "content": f"{name} learned fact {n} about deploys",
                        "namespace": f"team/{name}", "tags": ["bench"]})
                elif op == "update":
                    r = await c.put(f"/api/v1/memories/{rng.choice(mine)}", json={"content": f"{name} revised {n}"})
                else:
                    r = await c.post("/api/v1/recall", json={"context": "deploys fact", "namespace": f"team/{name}",
                                                             "limit": 5})
            if r.status_code >= 300:
                run.errors += 1
            elif op == "store":
                mine.append(r.json()["id"])


async def _measure(base_url: str, mode: str, *, agents: int, seconds: float) -> Run:
    await _setup(base_url, agents)
    run = Run(mode)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(_agent(base_url, f"agent-{i}", run, started + seconds) for i in range(agents)))
    run.wall_s = loop.time() - started
    return run


def measure(mode: str, *, agents: int, seconds: float) -> Run:
    """One run on a fresh server in ``mode`` (the server inherits the mode through the environment)."""
    # The gate's cost, not the model's: the write and keyword path, embedder off.
    with environment({MODE_ENV: mode, EMBEDDER_ENV: "off"}), \
            tempfile.TemporaryDirectory(prefix="bench-agents-") as tmp, running_server(Path(tmp) / "node") as url:
        return asyncio.run(_measure(url, mode, agents=agents, seconds=seconds))


def figures(on: Run, off: Run) -> list[Figure]:
    out = [Figure("agents_ops_per_s", f"{len(OPS)}-op mix, all agents", "ops/s", on.per_sec, baseline=off.per_sec,
                  higher_is_better=True, max_overhead=MAX_OVERHEAD)]
    for op in OPS:
        mine, base = on.summary(op), off.summary(op)
        out.append(Figure(f"{op}_p50_ms", f"{op} p50", "ms", mine.p50_ms, baseline=base.p50_ms))
        out.append(Figure(f"{op}_p95_ms", f"{op} p95", "ms", mine.p95_ms, baseline=base.p95_ms))
    return out


def _raw(run: Run) -> dict[str, Any]:
    return {"mode": run.mode, "ops": run.ops, "errors": run.errors, "wall_s": run.wall_s,
            "per_op": {op: vars(run.summary(op)) for op in OPS}}


def run(*, quick: bool, out: Path, agents: int, seconds: float) -> dict[str, Any]:
    on = measure("enforce", agents=agents, seconds=seconds)
    off = measure("off", agents=agents, seconds=seconds)
    figs = figures(on, off)
    print(f"{agents} concurrent agents, {seconds:g} s per run; baseline: the same run with governance off")
    print(render_table(figs))
    if on.errors or off.errors:
        print(f"errors: {on.errors} with governance on, {off.errors} off")
    document = to_json(figs, {"quick": quick, "agents": agents, "seconds": seconds, "python": platform.python_version(),
                              "machine": platform.machine(), "cpus": os.cpu_count()},
                       {"on": _raw(on), "off": _raw(off)})
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "bench_agents.json", document)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s per run (the smoke test)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 20, quick 3)")
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 20.0)
    document = run(quick=args.quick, out=args.out, agents=args.agents, seconds=seconds)
    errors = document["raw"]["on"]["errors"] + document["raw"]["off"]["errors"]
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
