"""Hive scale: many agents with attested identity on one node.

    python -m bench.bench_hive_agents [--quick] [--out bench/results] [--agents 100000] [--pool 1000]

1. **Enrollment.** N agents (10^5; 1,000 with ``--quick``) get an Ed25519 key each, enrolled through the real
   path: ``IdentityService.register_key`` as the operator (``AI_MEMORY_KEY_ENROLLMENT=operator``, what
   ``ai-memory identity register`` does), ``BATCH`` registrations in flight at once so the writer commits them
   together (there is no bulk enrollment command). Registry cost per agent: the data directory's growth (read
   model row + the log's event) and the process's RSS growth.
2. **Verification.** Signed requests from a pool of P agents (1,000; 100 quick) drawn from the N, pre-signed,
   through the node's ``RequestVerifier`` (key lookup, Ed25519, window, nonce cache): verified/s, against the
   bare Ed25519 verification of the same messages (the same-run baseline: what the crypto alone allows).
3. **Replay memory.** One signed request from each of the N agents through a fresh verifier, under
   tracemalloc: the nonce cache's bytes per agent; and one agent's extra nonces: bytes per nonce.
4. **End to end.** The node served over HTTP (a child process); the P agents at once, a 50/50 store/recall mix,
   signed (keyed agents) against unsigned (the same number of agents without keys) in ABBA order on the same
   server: ops/s and p95.

Prints the table and writes ``bench_hive_agents.json``. README "Hive scale: agents and keys" models 10^6.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from nacl.signing import SigningKey, VerifyKey

from bench.bench_agents import Run
from bench.phases import progress
from bench.report import Figure, render_table, to_json, write_json
from bench.server import environment, running_server
from bench.stats import rss_mb
from producers.identity.agent_client import AgentAuth
from producers.identity.agents import ENROLLMENT_ENV
from producers.identity.attestation import RequestVerifier
from producers.runtime.node import Node, NodeConfig
from schemas.request_signing import sign_registration, sign_request

__all__ = ["FULL", "QUICK", "Sizes", "main"]

OPS = ("store", "recall")
#: Registrations in flight at once: the writer's group commit turns them into few fsyncs.
BATCH = 500
#: HTTP connections the P agents share (one client process; the server's accept queue, not the agents, is the
#: limit beyond this).
CONNECTIONS = 100
PATH = "/api/v1/memories"
#: The node's environment in every phase: operator enrollment, the write and keyword path (no model).
NODE_ENV = {ENROLLMENT_ENV: "operator", "AI_MEMORY_EMBEDDER": "off"}


@dataclass(frozen=True)
class Sizes:
    agents: int
    pool: int
    verifies: int
    nonces: int
    seconds: float


QUICK = Sizes(agents=1_000, pool=100, verifies=2_000, nonces=5_000, seconds=2.0)
FULL = Sizes(agents=100_000, pool=1_000, verifies=20_000, nonces=40_000, seconds=10.0)


def agent_name(i: int) -> str:
    return f"hive/agent-{i}"


def agent_key(i: int) -> SigningKey:
    """A deterministic key per agent (the bench needs the same keys in each phase, not secrecy)."""
    return SigningKey(hashlib.sha256(f"bench-hive-{i}".encode()).digest())


def _dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# -- 1. enrollment --------------------------------------------------------------------------------------------


async def enroll(node: Node, agents: int) -> float:
    """Register ``agents`` keys as the operator; the seconds it took."""
    async def one(i: int) -> None:
        body = sign_registration(agent_key(i), agent_name(i))
        await node.identity.register_key(agent_name(i), body["public_key"], body["timestamp"], body["proof"],
                                         actor=agent_name(i), operator=True)

    started = time.perf_counter()
    for start in progress(range(0, agents, BATCH), "enroll", (agents + BATCH - 1) // BATCH):
        await asyncio.gather(*(one(i) for i in range(start, min(start + BATCH, agents))))
    return time.perf_counter() - started


# -- 2. verification ------------------------------------------------------------------------------------------


def signed(indices: Sequence[int], body: bytes = b"{}") -> list[dict[str, str]]:
    return [sign_request(agent_key(i), agent_name(i), "POST", PATH, "", body) for i in indices]


def verify_rate(verifier: RequestVerifier, requests: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    for headers in progress(requests, "verify"):
        verifier.verify("POST", PATH, "", b"{}", headers)
    return len(requests) / (time.perf_counter() - started)


def crypto_rate(indices: Sequence[int]) -> float:
    """Bare Ed25519 verifications/s of the same signatures (over a fixed message: the cost does not depend on
    which bytes are signed at this size): what the verifier would reach if nothing else cost anything."""
    keys = [VerifyKey(bytes(agent_key(i).verify_key)) for i in indices]
    message = b"x" * 200  # about a signed request's message
    sealed = [agent_key(i).sign(message) for i in indices]
    started = time.perf_counter()
    for key, sm in zip(keys, sealed, strict=True):
        key.verify(sm)
    return len(sealed) / (time.perf_counter() - started)


def lookup_rate(node: Node, indices: Sequence[int]) -> float:
    started = time.perf_counter()
    for i in indices:
        node.identity.queries.agent_key(agent_name(i))
    return len(indices) / (time.perf_counter() - started)


# -- 3. replay memory -----------------------------------------------------------------------------------------


def nonce_bytes(node: Node, sizes: Sizes) -> tuple[float, float]:
    """Bytes the nonce cache holds per agent (one request each from every agent) and per further nonce (one
    agent's many requests), measured with tracemalloc on a fresh verifier."""
    verifier = RequestVerifier(node.identity.queries, node_id=node.identity.verifier.node_id)
    verifier.started_at -= 1  # it refuses what was signed before it started, to the second
    everyone = signed(range(sizes.agents))
    one_agent = signed([0] * sizes.nonces)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for headers in progress(everyone, "nonces/agent"):
            verifier.verify("POST", PATH, "", b"{}", headers)
        per_agent = (tracemalloc.get_traced_memory()[0] - before) / sizes.agents
        before = tracemalloc.get_traced_memory()[0]
        for headers in progress(one_agent, "nonces/one"):
            verifier.verify("POST", PATH, "", b"{}", headers)
        per_nonce = (tracemalloc.get_traced_memory()[0] - before) / sizes.nonces
    finally:
        tracemalloc.stop()
    return per_agent, per_nonce


# -- 4. end to end ----------------------------------------------------------------------------------------------


async def _agent(client: httpx.AsyncClient, name: str, auth: httpx.Auth, run: Run, stop_at: float, tag: int
                 ) -> None:
    """One agent's loop; ``tag`` (the round) keeps its titles unique across rounds (a repeat is a 409)."""
    rng = random.Random(name)
    loop = asyncio.get_running_loop()
    n = 0
    while loop.time() < stop_at:
        n += 1
        op = "store" if rng.random() < 0.5 else "recall"
        try:
            with run.samples[op].one():
                if op == "store":
                    r = await client.post(PATH, auth=auth, headers={"X-Agent-Id": name}, json={
                        "title": f"{name} note {tag}.{n}", "content": f"{name} saw deploy {n}", "namespace": name})
                else:
                    r = await client.post("/api/v1/recall", auth=auth, headers={"X-Agent-Id": name},
                                          json={"context": "deploy", "namespace": name, "limit": 5})
        except httpx.TransportError:
            # A connection dropped under load (the server's keep-alive): counted as an error, the agent goes on.
            run.errors += 1
            continue
        if r.status_code >= 300:
            run.errors += 1


async def _round(base_url: str, mode: str, pool: Sequence[int], seconds: float, tag: int) -> Run:
    """The pool at once for ``seconds``: keyed agents signing every request, or as many agents without keys."""
    run = Run(mode)
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        if mode == "signed":
            agents: list[tuple[str, httpx.Auth]] = [(agent_name(i), AgentAuth(agent_name(i), agent_key(i)))
                                                          for i in pool]
        else:
            agents = [(f"open/agent-{i}", httpx.Auth()) for i in pool]  # no key, no signature
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(_agent(client, name, auth, run, started + seconds, tag) for name, auth in agents))
        run.wall_s = loop.time() - started
    return run


async def end_to_end(base_url: str, pool: Sequence[int], seconds: float) -> dict[str, Run]:
    """Signed and unsigned rounds in ABBA order (drift on a shared machine hits both alike), merged per mode."""
    out = {mode: Run(mode) for mode in ("unsigned", "signed")}
    for tag, mode in enumerate(("unsigned", "signed", "signed", "unsigned")):
        r = await _round(base_url, mode, pool, seconds / 2, tag)
        for op in OPS:
            out[mode].samples[op].seconds.extend(r.samples[op].seconds)
        out[mode].errors += r.errors
        out[mode].wall_s += r.wall_s
    return out


# -- the run --------------------------------------------------------------------------------------------------


@dataclass
class Results:
    enroll_s: float = 0.0
    disk_bytes_per_agent: float = 0.0
    rss_bytes_per_agent: float = 0.0
    verified_per_s: float = 0.0
    crypto_per_s: float = 0.0
    lookups_per_s: float = 0.0
    nonce_bytes_per_agent: float = 0.0
    nonce_bytes_per_nonce: float = 0.0


async def in_process(sizes: Sizes, data_dir: Path, pool: list[int]) -> Results:
    res = Results()
    node = await Node.open(NodeConfig(data_dir=data_dir, embedder="off"))
    try:
        await node.start()
        disk0, rss0 = _dir_bytes(data_dir), rss_mb()
        res.enroll_s = await enroll(node, sizes.agents)
        res.disk_bytes_per_agent = (_dir_bytes(data_dir) - disk0) / sizes.agents
        res.rss_bytes_per_agent = (rss_mb() - rss0) * 2**20 / sizes.agents
        draws = [pool[k % len(pool)] for k in range(sizes.verifies)]
        requests = signed(draws)
        res.verified_per_s = verify_rate(node.identity.verifier, requests)
        res.crypto_per_s = crypto_rate(draws)
        res.lookups_per_s = lookup_rate(node, draws)
        res.nonce_bytes_per_agent, res.nonce_bytes_per_nonce = nonce_bytes(node, sizes)
    finally:
        await node.close()
    return res


def figures(res: Results, sizes: Sizes, e2e: dict[str, Run]) -> list[Figure]:
    signed_run, unsigned = e2e["signed"], e2e["unsigned"]
    out = [Figure("enroll_per_s", f"operator enrollments/s ({sizes.agents:,} keys)", "keys/s",
                  sizes.agents / res.enroll_s),
           Figure("verified_per_s", "signed requests verified/s (baseline: bare Ed25519)", "req/s",
                  res.verified_per_s, baseline=res.crypto_per_s, higher_is_better=True),
           Figure("key_lookups_per_s", f"key lookups/s in the read model ({sizes.agents:,} keys)", "lookups/s",
                  res.lookups_per_s),
           Figure("registry_disk_bytes_per_agent", "registry on disk per agent (read model + log)", "B",
                  res.disk_bytes_per_agent),
           Figure("registry_rss_bytes_per_agent", "process RSS growth per enrolled agent", "B",
                  res.rss_bytes_per_agent),
           Figure("nonce_bytes_per_agent", "nonce cache per agent (1 nonce each)", "B", res.nonce_bytes_per_agent),
           Figure("nonce_bytes_per_nonce", "nonce cache per further nonce", "B", res.nonce_bytes_per_nonce),
           Figure("e2e_ops_per_s", f"HTTP store/recall ops/s, {sizes.pool} agents signed (base: unsigned)",
                  "ops/s", signed_run.per_sec, baseline=unsigned.per_sec, higher_is_better=True)]
    for op in OPS:
        out.append(Figure(f"{op}_p95_ms", f"{op} p95, signed (base: unsigned)", "ms",
                          signed_run.summary(op).p95_ms, baseline=unsigned.summary(op).p95_ms))
    return out


def _raw(run: Run) -> dict[str, Any]:
    return {"ops": run.ops, "errors": run.errors, "wall_s": run.wall_s,
            "per_op": {op: vars(run.summary(op)) for op in OPS}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_hive_agents", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (the smoke test)")
    parser.add_argument("--agents", type=int, default=None, help="agents enrolled (default 100,000; quick 1,000)")
    parser.add_argument("--pool", type=int, default=None, help="concurrent agents (default 1,000; quick 100)")
    parser.add_argument("--seconds", type=float, default=None, help="HTTP seconds per mode (default 10; quick 2)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(agents=args.agents or base.agents, pool=min(args.pool or base.pool, args.agents or base.agents),
                  verifies=base.verifies, nonces=base.nonces,
                  seconds=args.seconds if args.seconds is not None else base.seconds)
    pool = random.Random(16).sample(range(sizes.agents), sizes.pool)
    started = time.perf_counter()
    with environment(NODE_ENV), tempfile.TemporaryDirectory(prefix="bench-hive-agents-") as tmp:
        data_dir = Path(tmp) / "node"
        res = asyncio.run(in_process(sizes, data_dir, pool))
        with running_server(data_dir) as url:
            e2e = asyncio.run(end_to_end(url, pool, sizes.seconds))
    figs = figures(res, sizes, e2e)
    meta = {"quick": args.quick, **vars(sizes), "batch": BATCH, "connections": CONNECTIONS,
            "seconds_total": time.perf_counter() - started, "load_avg_1m": os.getloadavg()[0], "cpus": os.cpu_count()}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "bench_hive_agents.json",
               to_json(figs, meta, {"in_process": vars(res), "signed": _raw(e2e["signed"]),
                                    "unsigned": _raw(e2e["unsigned"])}))
    print(f"\nai-memory-es hive scale: {sizes.agents:,} enrolled agents, a pool of {sizes.pool:,} at once, "
          f"{meta['seconds_total']:.0f}s total\n")
    print(render_table(figs))
    errors = e2e["signed"].errors + e2e["unsigned"].errors
    if errors:
        print(f"errors: {e2e['signed'].errors} signed, {e2e['unsigned'].errors} unsigned")
    print(f"\nwrote {args.out / 'bench_hive_agents.json'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
