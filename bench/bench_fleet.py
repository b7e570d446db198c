"""Fleet write throughput: does the fleet write more when more nodes write?

    python -m bench.bench_fleet [--quick] [--seconds S] [--writers C] [--out bench/results]

One 3-server NATS cluster on loopback (stream replicas = 3). For each configuration, fresh ``ai-memory serve``
processes (1, 2 or 3 of them, quorum W = 1 or 2, embedder off, each with its read model or sharing one SQLite
file) join a fresh stream, and C concurrent HTTP
writers per node (one load process per node, so clients do not share the servers' GIL) store unique titles for
S seconds. Reported per configuration: acknowledged writes/s over all nodes, p50/p95 latency, and refused
writes (any answer but 201: a unique title must never be refused). In the same run: the embedded single node
(its own log, the T1 baseline) with the same client, and the stream's raw append rate (one appender, and 16
pipelined), so every figure has its baseline from the same machine and moment. The N-node / 1-node ratios are
printed; ``bench_fleet.json`` is written to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.cputime import cpu_snapshot, ms_per_op
from bench.server import wait_ready
from bench.stats import percentile
from infra.cluster import NatsCluster
from infra.cluster.local import _executable, prepare_nodes, serve_commands, shared_read_model
from infra.cluster.process import free_port
from infra.log.jetstream import JetStreamLog
from projectors import ProjectionRunner, SQLiteReadModel
from schemas import Envelope, Keyring, NodeKey, encode_payload, load_or_create_node_key, now_ts, sign
from schemas.events import MemoryTouched, TouchRules

__all__ = ["Config", "main", "plan", "render"]

_REPO = Path(__file__).resolve().parents[1]
_READY_TIMEOUT = 60.0
_STORES_PER_AGENT = 500


@dataclass(frozen=True)
class Config:
    label: str
    nodes: int
    quorum: int
    writers: int
    embedded: bool = False
    #: How many of the nodes take the load (0: all of them).
    loaded: int = 0
    #: The nodes share one SQLite read model (the nodes of one host): each event is applied once, not per node.
    shared: bool = False


def plan(writers: int) -> list[Config]:
    """The embedded baseline, 1-3 NATS nodes at W = 1, 2-3 at W = 2, W = 2 with one writer per node and with
    one writer in all (latency: the issue's target), and 2-3 nodes at W = 1 sharing one read model."""
    return [Config("embedded", 1, 1, writers, embedded=True),
            *(Config(f"nats_n{n}_w1", n, 1, writers) for n in (1, 2, 3)),
            *(Config(f"nats_n{n}_w2", n, 2, writers) for n in (2, 3)),
            Config("nats_n3_w2_c1", 3, 2, 1),
            Config("nats_n3_w2_one", 3, 2, 1, loaded=1),
            *(Config(f"nats_n{n}_w1_shared", n, 1, writers, shared=True) for n in (2, 3))]


# ---- the load: one process per node -------------------------------------------------------------------------


#: One POST of a JSON body with headers: the answer's status and text.
Post = Callable[[dict[str, Any], dict[str, str]], Awaitable[tuple[int, str]]]


@asynccontextmanager
async def _client(kind: str, url: str, connections: int) -> AsyncIterator[Post]:
    """A keep-alive HTTP/1.1 client with ``connections`` pooled connections, as ``POST /api/v1/memories``.

    aiohttp by default: it spends about half httpx's CPU per request (its parser and connection pool are in C),
    so on a machine shared with the servers the load takes less from what it measures. httpx stays selectable
    (``--client httpx``) to compare with earlier runs."""
    path = "/api/v1/memories"
    if kind == "httpx":
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as hx:
            async def post_httpx(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
                r = await hx.post(path, json=body, headers=headers)
                return r.status_code, r.text
            yield post_httpx
        return
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=30.0)) as ah:
        async def post_aiohttp(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
            async with ah.post(path, json=body, headers=headers) as r:
                return r.status, await r.text()  # the whole answer is read, as any client would
        yield post_aiohttp


async def _load(url: str, writers: int, seconds: float, prefix: str, client: str = "aiohttp") -> dict[str, Any]:
    """``writers`` concurrent clients storing unique titles on ``url`` for ``seconds``: latencies of the
    acknowledged writes, and every refused one (status and body)."""
    latencies: list[float] = []
    refused: list[str] = []
    tag = "".join(ch for ch in prefix if ch.isalnum())
    async with _client(client, url, writers) as post:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds

        async def writer(w: int) -> None:
            n = 0
            while loop.time() < deadline:
                n += 1
                # One token per title: unique, and not a word every other title shares (the store's
                # contradiction lookup ranks titles sharing words, a cost this benchmark is not about).
                body = {"title": f"{tag}w{w}n{n}", "content": f"fleet write {n} of writer {w}",
                        "namespace": f"fleet/{w % 4}", "on_conflict": "error"}
                started = time.perf_counter()
                # A new agent every 500 stores: one fast writer would otherwise reach the default daily quota
                # (1,000 memories an agent) and be refused, correctly, with 429: not what this measures.
                status, text = await post(body, {"X-Agent-Id": f"{prefix}-w{w}-{n // _STORES_PER_AGENT}"})
                if status == 201:
                    latencies.append(time.perf_counter() - started)
                else:
                    refused.append(f"{status} {text[:200]}")

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"latencies": latencies, "refused": refused, "wall_s": wall, "cpu_s": cpu}


def _load_main(argv: list[str]) -> int:
    url, writers, seconds, prefix, client = argv[0], int(argv[1]), float(argv[2]), argv[3], argv[4]
    print(json.dumps(asyncio.run(_load(url, writers, seconds, prefix, client))))
    return 0


# ---- servers --------------------------------------------------------------------------------------------------


@contextmanager
def _serving(commands: list[list[str]], root: Path) -> Iterator[list[tuple[str, int]]]:
    """Run the serve commands (embedder off), yield their base URLs and pids once all answer, stop them after."""
    env = {**os.environ, "AI_MEMORY_EMBEDDER": "off"}
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for i, argv in enumerate(commands):
            log = root / f"serve{i + 1}.log"
            with log.open("ab") as out:
                procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=_REPO))
            urls.append(f"http://127.0.0.1:{argv[argv.index('--port') + 1]}")
        for i, (proc, url) in enumerate(zip(procs, urls, strict=True)):
            wait_ready(proc, url, timeout=_READY_TIMEOUT, what=f"ai-memory serve (log {root}/serve{i + 1}.log)")
        yield [(url, proc.pid) for url, proc in zip(urls, procs, strict=True)]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _commands(config: Config, cluster: NatsCluster, root: Path, stream: str) -> list[list[str]]:
    if config.embedded:
        script = _executable("ai-memory serve")
        return [[*script, "--data-dir", str(root / "embedded"), "--port", str(free_port())]]
    prepare_nodes(root, config.nodes)
    lines = serve_commands(cluster, root, nodes=config.nodes, quorum=config.quorum, port=free_port(), stream=stream,
                           extra=shared_read_model(root) if config.shared else ())
    argvs = [_executable(line) for line in lines]
    for argv in argvs:  # serve_commands numbers ports from one base: give each node a port known to be free
        argv[argv.index("--port") + 1] = str(free_port())
    return argvs


def run_config(config: Config, cluster: NatsCluster, root: Path, seconds: float,
               client: str = "aiohttp") -> dict[str, Any]:
    """One configuration: its servers up, the load on every node at once, the servers down."""
    root.mkdir(parents=True)
    stream = f"fleet-{uuid.uuid4().hex[:8]}"
    with _serving(_commands(config, cluster, root, stream), root) as served:
        urls = [url for url, _ in served][:config.loaded or len(served)]
        groups = {"serve": [pid for _, pid in served],
                  "nats-server": [] if config.embedded else [p.pid for n in cluster.nodes if (p := n.process)]}
        before = cpu_snapshot(groups)
        loads = [subprocess.Popen([sys.executable, "-m", "bench.bench_fleet", "--load", url, str(config.writers),
                                   str(seconds), f"{config.label}-{i}", client], stdout=subprocess.PIPE, cwd=_REPO)
                 for i, url in enumerate(urls)]
        outputs = [json.loads(proc.communicate(timeout=seconds + 120)[0]) for proc in loads]
        after = {**cpu_snapshot(groups), "client": sum(out["cpu_s"] for out in outputs)}
    latencies = sorted(ms * 1000 for out in outputs for ms in out["latencies"])
    refused = [line for out in outputs for line in out["refused"]]
    wall = max(out["wall_s"] for out in outputs)
    return {**asdict(config), "stream": None if config.embedded else stream, "acked": len(latencies),
            "refused": len(refused), "refused_sample": refused[:5],
            "cpu_ms_per_write": ms_per_op(before, after, len(latencies)),
            "per_s": len(latencies) / wall if wall else 0.0, "wall_s": wall,
            "p50_ms": percentile(latencies, 50) if latencies else 0.0,
            "p95_ms": percentile(latencies, 95) if latencies else 0.0}


# ---- the stream's raw append rate ----------------------------------------------------------------------------


def _events(key: NodeKey, n: int) -> list[Any]:
    touch = encode_payload(MemoryTouched(["x"], now_ts(), TouchRules()))
    return [sign(Envelope(event_id=str(uuid.uuid4()), type=MemoryTouched.TYPE, schema_version=1, namespace="raw",
                          actor="bench", origin="bench", ts=now_ts(), payload=touch, key_id=key.key_id), key)
            for _ in range(n)]


async def raw_append_rate(url: str, root: Path, n: int) -> dict[str, float]:
    """Single appends to a replicas=3 stream: one after another, and 16 in flight at once (as a node's
    pipelined writers do)."""
    key = load_or_create_node_key(root / "raw-keys", "raw")
    log = await JetStreamLog.connect(f"{url}/raw-{uuid.uuid4().hex[:6]}", replicas=3)
    try:
        events = _events(key, 2 * n)
        started = time.perf_counter()
        for event in events[:n]:
            await log.append([event])
        serial = n / (time.perf_counter() - started)
        pending = iter(events[n:])

        async def appender() -> None:
            for event in pending:
                await log.append([event])

        started = time.perf_counter()
        await asyncio.gather(*(appender() for _ in range(16)))
        pipelined = n / (time.perf_counter() - started)
    finally:
        await log.close()
    return {"serial_per_s": serial, "pipelined16_per_s": pipelined}


async def projection_rate(url: str, stream: str, keys: Path, model_path: Path) -> dict[str, float]:
    """What one node's projector costs per event: a fresh SQLite read model applies a whole stream (the live
    path: verify, apply, commit per batch; not the bulk rebuild). Every node applies every event, so this is
    the fleet's write ceiling per node."""
    log = await JetStreamLog.connect(f"{url}/{stream}", replicas=3)
    model = SQLiteReadModel(model_path)
    model.partitioned = log.partitioned  # as a node runs it: one partition, no merge history kept
    try:
        runner = ProjectionRunner(log, model, Keyring.from_dirs(keys), batch_size=500)
        started = time.perf_counter()
        await runner.catch_up()
        seconds = time.perf_counter() - started
        applied = model.applied_count()
    finally:
        model.close()
        await log.close()
    return {"events": applied, "per_s": applied / seconds if seconds else 0.0,
            "us_per_event": seconds / applied * 1e6 if applied else 0.0}


# ---- the report ---------------------------------------------------------------------------------------------


_CPU_PARTS = ("serve", "client", "nats-server")


def _cpu_lines(results: dict[str, dict[str, Any]], cores: int) -> list[str]:
    """CPU per write by component, and what the machine's cores allow at that cost: on a small host every
    process shares them, so a configuration spending T ms of CPU per write cannot exceed cores / T writes/s.
    Then the break-even of several nodes against one: the CPU per write at which they would match it."""
    lines = [f"CPU ms per acknowledged write (serve processes / load clients / nats-servers = in all; "
             f"the writes/s {cores} cores allow at that cost):"]
    for label, r in results.items():
        if "cpu_ms_per_write" not in r:
            continue
        parts = [r["cpu_ms_per_write"].get(k, 0.0) for k in _CPU_PARTS]
        total = sum(parts)
        cap = cores * 1000 / total if total else 0.0
        allowed = f"{cap:.0f}/s at most ({r['per_s'] / cap:.0%} used)" if cap else ""
        lines.append(f"  {label:<18} " + " / ".join(f"{x:.2f}" for x in parts) + f" = {total:.2f}   {allowed}")
    one = results.get("nats_n1_w1")
    if one and one["per_s"] and any(r["nodes"] > 1 and "cpu_ms_per_write" in r for r in results.values()):
        lines.append(f"several nodes match one node's {one['per_s']:.0f} writes/s on {cores} cores only at "
                     f"{cores * 1000 / one['per_s']:.2f} ms of CPU per write in all, or less (one node is bound "
                     "by its one event-loop thread, not by the cores)")
    return lines


def render(results: dict[str, dict[str, Any]], raw: dict[str, float],
           projection: dict[str, float] | None = None, *, cores: int | None = None) -> str:
    lines = [f"{'configuration':<18} {'nodes':>5} {'W':>2} {'writers':>7} {'writes/s':>9} {'p50 ms':>8} "
             f"{'p95 ms':>8} {'refused':>7} {'vs 1 node':>9}"]
    for label, r in results.items():
        base = results.get(f"nats_n1_w{r['quorum']}") or results.get("nats_n1_w1")
        ratio = f"{r['per_s'] / base['per_s']:.2f}x" if base and base["per_s"] and not r["embedded"] else ""
        writers = r["writers"] * (r.get("loaded") or r["nodes"])  # in all, over the nodes that took the load
        lines.append(f"{label:<18} {r['nodes']:>5} {r['quorum']:>2} {writers:>7} {r['per_s']:>9.0f} "
                     f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['refused']:>7} {ratio:>9}")
    lines.extend(_cpu_lines(results, cores or os.cpu_count() or 1))
    embedded = results.get("embedded")
    one = results.get("nats_n1_w1")
    if embedded and one and embedded["per_s"]:
        lines.append(f"1 NATS node / embedded node: {one['per_s'] / embedded['per_s']:.2f}x")
    lines.append(f"stream raw appends (replicas 3): {raw['serial_per_s']:.0f}/s one at a time, "
                 f"{raw['pipelined16_per_s']:.0f}/s with 16 in flight")
    if projection:
        lines.append(f"one node's projector: {projection['per_s']:.0f} events/s ({projection['us_per_event']:.0f} "
                     f"us per event, {projection['events']:.0f} events replayed)")
    total = sum(r["acked"] for r in results.values())
    refused = sum(r["refused"] for r in results.values())
    lines.append(f"acknowledged writes in all: {total}, refused: {refused}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--load":
        return _load_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.bench_fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1.5 s per configuration, 4 writers per node")
    parser.add_argument("--seconds", type=float, default=None, help="load per configuration (default 10)")
    parser.add_argument("--writers", type=int, default=None, help="concurrent HTTP writers per node (default 16)")
    parser.add_argument("--raw", type=int, default=None, help="events per raw append measurement (default 2000)")
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp",
                        help="the load's HTTP client (default aiohttp; httpx as in runs before it)")
    parser.add_argument("--only", default=None, help="comma-separated configuration labels to run")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    seconds = args.seconds or (1.5 if args.quick else 10.0)
    writers = args.writers or (4 if args.quick else 16)
    configs = plan(writers)
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in configs if c.label in wanted]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        root = Path(tmp)
        with NatsCluster(store_dir=root / "nats") as cluster:
            raw = asyncio.run(raw_append_rate(cluster.url, root, args.raw or (200 if args.quick else 2000)))
            for config in configs:
                results[config.label] = run_config(config, cluster, root / config.label, seconds, args.client)
                print(f"{config.label}: {results[config.label]['per_s']:.0f} writes/s", file=sys.stderr, flush=True)
            biggest = max((r for r in results.values() if r["stream"]), key=lambda r: r["acked"], default=None)
            projection = None if biggest is None else asyncio.run(projection_rate(
                cluster.url, biggest["stream"], root / biggest["label"] / "node1" / "keys", root / "replay.db"))
    table = render(results, raw, projection)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "seconds": seconds, "writers": writers, "client": args.client, "raw": raw, "projection": projection,
              "results": results}
    (args.out / "bench_fleet.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
