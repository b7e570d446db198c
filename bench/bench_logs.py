"""Log backends side by side: the embedded log, NATS JetStream and Kafka (tansu), in one run on one machine.

    python -m bench.bench_logs [--quick] [--out bench/results]

For each backend, on a fresh stream/topic and the same signed ``memory.stored`` events (8 namespaces):

- append one event per call, back to back: latency p50/p95 and events/s;
- append batches of 100: events/s;
- projector catch-up: a fresh SQLite read model + ``ProjectionRunner.catch_up()`` over the whole log: events/s
  (read, verify the signature, apply with FTS5, track the offset).

Prints a table with ratios to the embedded log and Kafka/NATS, and writes ``bench_logs.json`` to ``--out``.
Servers are real processes on loopback (``nats-server`` with file storage; ``tansu`` keeps memory only, so the
Kafka figures carry no disk cost at all, unlike the other two).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.cluster import KafkaBroker, NatsServer
from infra.log import EventLog, LogConfig, open_log
from projectors import ProjectionRunner, SQLiteReadModel
from schemas import (
    SCHEMA_VERSION,
    Envelope,
    Keyring,
    Memory,
    NodeKey,
    SignedEvent,
    encode_payload,
    load_or_create_node_key,
    now_ts,
    sign,
)
from schemas.events import MemoryStored

__all__ = ["Sizes", "main", "run"]

BACKENDS = ("embedded", "nats", "kafka")
BATCH = 100
_WORDS = ("deploy", "database", "migration", "kafka", "partition", "offset", "replica", "broker", "stream",
          "consumer", "projector", "signature", "namespace", "memory", "recall", "budget", "token", "vector",
          "index", "cluster", "leader", "follower", "snapshot")


@dataclass(frozen=True)
class Sizes:
    singles: int
    batched: int


QUICK = Sizes(singles=150, batched=300)
FULL = Sizes(singles=2_000, batched=8_000)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def make_events(key: NodeKey, n: int) -> list[SignedEvent]:
    """``n`` signed memory.stored events over 8 namespaces, deterministic apart from ids and times."""
    events = []
    for i in range(n):
        now = now_ts()
        words = [_WORDS[(i * 7 + j * 3) % len(_WORDS)] for j in range(40)]
        memory = Memory(id=str(uuid.uuid4()), tier="long", namespace=f"team/{i % 8}", title=f"fact {i}",
                        content=" ".join(words), tags=[_WORDS[i % len(_WORDS)]], priority=5, confidence=1.0,
                        source="bench", access_count=0, created_at=now, updated_at=now)
        envelope = Envelope(event_id=str(uuid.uuid4()), type=MemoryStored.TYPE, schema_version=SCHEMA_VERSION,
                            namespace=memory.namespace, actor="bench", origin=key.key_id, ts=now,
                            payload=encode_payload(MemoryStored(memory)), key_id=key.key_id)
        events.append(sign(envelope, key))
    return events


@asynccontextmanager
async def servers(root: Path) -> AsyncIterator[dict[str, str]]:
    """Log URLs for each backend, with nats-server and tansu running for the block."""
    nats = NatsServer(store_dir=root / "nats" / "js")
    kafka = KafkaBroker(log_path=root / "tansu.log")
    await asyncio.to_thread(nats.start)
    try:
        await asyncio.to_thread(kafka.start)
        try:
            yield {"embedded": f"sqlite://{root / 'embedded' / 'log.db'}", "nats": f"{nats.url}/bench",
                   "kafka": f"{kafka.url}/bench"}
        finally:
            await asyncio.to_thread(kafka.stop)
    finally:
        await asyncio.to_thread(nats.stop)


async def measure(log: EventLog, events: list[SignedEvent], sizes: Sizes, keyring: Keyring,
                  model_path: Path) -> dict[str, float]:
    singles, batched = events[: sizes.singles], events[sizes.singles:]
    latencies = []
    started = time.perf_counter()
    for event in singles:
        one = time.perf_counter()
        await log.append([event])
        latencies.append(time.perf_counter() - one)
    single_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(0, len(batched), BATCH):
        await log.append(batched[i:i + BATCH])
    batch_s = time.perf_counter() - started
    model = SQLiteReadModel(model_path)
    model.partitioned = log.partitioned  # as a node runs it
    runner = ProjectionRunner(log, model, keyring, batch_size=500)
    started = time.perf_counter()
    await runner.catch_up()
    catch_up_s = time.perf_counter() - started
    applied = model.applied_count()
    model.close()
    if applied != len(events):
        msg = f"{log.url}: the projector applied {applied} of {len(events)} events"
        raise RuntimeError(msg)
    return {"append_p50_ms": percentile(latencies, 50) * 1000, "append_p95_ms": percentile(latencies, 95) * 1000,
            "append_per_s": len(singles) / single_s, "append_batch_per_s": len(batched) / batch_s,
            "catch_up_per_s": len(events) / catch_up_s}


async def run(sizes: Sizes, root: Path) -> dict[str, dict[str, float]]:
    key = load_or_create_node_key(root / "keys", "bench-node")
    keyring = Keyring.from_dirs(root / "keys")
    events = make_events(key, sizes.singles + sizes.batched)
    results: dict[str, dict[str, float]] = {}
    async with servers(root) as urls:
        for backend in BACKENDS:
            log = await open_log(LogConfig(url=urls[backend], data_dir=root))
            try:
                results[backend] = await measure(log, events, sizes, keyring, root / f"{backend}-model.db")
            finally:
                await log.close()
    return results


ROWS = (("append p50 (ms)", "append_p50_ms", False), ("append p95 (ms)", "append_p95_ms", False),
        ("append 1 by 1 (events/s)", "append_per_s", True),
        (f"append batches of {BATCH} (events/s)", "append_batch_per_s", True),
        ("projector catch-up (events/s)", "catch_up_per_s", True))


def render(results: dict[str, dict[str, float]]) -> str:
    """The table: each figure per backend, then nats/embedded, kafka/embedded and kafka/nats (value ratios)."""
    head = f"{'figure':<34}{'embedded':>10}{'nats':>10}{'kafka':>10}{'nats/emb':>10}{'kafka/emb':>10}{'kafka/nats':>11}"
    lines = [head, "-" * len(head)]
    for label, name, _higher_is_better in ROWS:
        emb, nats, kafka = (results[b][name] for b in BACKENDS)
        lines.append(f"{label:<34}{emb:>10.1f}{nats:>10.1f}{kafka:>10.1f}{nats / emb:>9.2f}x{kafka / emb:>9.2f}x"
                     f"{kafka / nats:>10.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_logs", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (the smoke test)")
    parser.add_argument("--out", default="bench/results", help="where bench_logs.json goes")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        results = asyncio.run(run(sizes, Path(tmp)))
    print(render(results))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"quick": args.quick, "singles": sizes.singles, "batched": sizes.batched, "batch": BATCH,
            "machine": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    (out / "bench_logs.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
